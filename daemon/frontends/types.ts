import type { CompileRequest, MmdWrite } from '../../ipc/messages/compile.js';
import type { DoneRequest } from '../../ipc/messages/done.js';
import type { NotStoredReason, UncacheableReason } from '../../ipc/reasons.js';

// What every compiler front-end (C/C++, Rust, ...) offers the compile/done handlers.
export type Outcome<P> =
  | { kind: 'pass'; reason: UncacheableReason }
  // `latency`: the name its lookup time is kept under, when not the outcome's ('link_hit').
  | { kind: 'hit'; out: Buffer; err: Buffer; code: number; bytes: number; files?: [string, Buffer][]; latency?: string }
  // `frontend`: who finishes it, when not the front-end asked (the C one hands links on).
  // `collect`: files the shim may read and send with a one-way report (done.ts), when all that
  // finish() needs from the disk before the build goes on is their bytes; with `mmd` the shim
  // also writes -MMD's depfile (RunReply.mmd).
  | { kind: 'miss'; argv: string[]; env?: string[]; pending: P; frontend?: Frontend; latency?: string; collect?: string[]; mmd?: MmdWrite }
  // A command with several sources: the shim runs each compile (then the link) as a call of its own.
  | { kind: 'split'; compiles: string[][]; link: string[] | null };

export type { MmdWrite };

export interface LookupOptions {
  /**
   * When the local manifest has no entry for these inputs, ask the shared tiers for theirs:
   * a teammate may have built them since (after a pull; live mode's prefetch step). One more
   * request on such a miss, against a compile.
   */
  shared?: boolean;
}

export type Finish =
  | { stored: false; reason: NotStoredReason }
  | { stored: true; bytes: number; write: Promise<void> }
  // The entry is built later (when the daemon is idle): `result` says how that went.
  | { stored: 'later'; result: Promise<Finish> };

export type Done = DoneRequest & { nocache?: boolean };

export interface Frontend<P = unknown> {
  readonly name: string;
  // Whether this front-end takes the call; argv0 is the compiler as the build named it, args
  // what follows it.
  handles(argv0: string, exe: string, args: string[]): boolean;
  lookup(req: CompileRequest, env: Record<string, string>, o?: LookupOptions): Promise<Outcome<P>>;
  // After the shim ran the compiler: read what the build could change next, then store in
  // the background (the `write` promise).
  finish(pending: P, done: Done): Promise<Finish>;
  // A compile whose report never came (the shim was killed): remove what the lookup made.
  abandon?(pending: P): void;
  // At the daemon's shutdown, after the store writes have drained: waits for what it still
  // writes and lets go of its caches. Idempotent.
  close(): Promise<void>;
}
