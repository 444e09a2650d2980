import type { UncacheableReason } from '../reasons.js';
import { absPath, bool, int, pathStr, strArray } from './fields.js';

// compile: "have we built exactly this before?" sent by a shim for every compiler call.
// Each key's long name and meaning, of every message: legend.ts.
//   exe  : absolute path of the compiler the shim will run (resolved on PATH, shim skipped)
//   argv : the call as the build gave it; argv[0] is the compiler as named
//   env  : the shim's whole environment as "K=V" (the front-end picks what matters)
//   tty  : whether the shim's stderr is a terminal
//   wf   : the shim writes a hit's output files itself (they come back in `files`)
//   sp   : ... and takes spare files for them (see HitReply)
//   ow   : the shim can report a compile one-way, sending the files `col` names (done.ts)
//   pid  : the shim's process id (optional): once it has exited, its one-way report is on its
//          way, and `vrift stats` waits for it (handlers/stats.ts)
//   sx   : the shim can run a split (SplitReply): a command with several sources
export interface CompileRequest {
  t: 'compile';
  v: number;
  build: string;
  cwd: string;
  exe: string;
  argv: string[];
  env: string[];
  tty: boolean;
  /** writes_files */ wf: boolean;
  /** takes_spares */ sp: boolean;
  /** one_way */ ow: boolean;
  /** splits */ sx: boolean;
  /** shim_pid */ pid?: number;
}

// Replies:
//   hit  : outputs are already in place; write out/err, exit with code
//   run  : run argv (argv[0] is the executable path) with env additions, then send `done` with id
//   pass : not cacheable (reason counted); exec the original call unchanged
//   split: (only when sx) run each of `cmds` (the compiler's arguments, argv[0] left out) as a
//          call of its own through the shim, in order, their stdout/stderr printed in that
//          order; when all succeeded and `link` is there, run it the same way. An argument
//          that starts with \u0001 names a file in a private directory the shim makes (that
//          character stands for the directory and a slash) and removes afterwards; the shim
//          names that directory to its calls in VRIFT_SPLIT_DIR. Exit code: the link's, or 1
//          when a compile failed (daemon/frontends/gcc/split.ts, native/split.c).
//   error: something failed; fail open exactly like pass
// files: [absolute path, bytes] to write (unlink, create) before replaying out/err; only when wf.
//   With sp, an entry may have a third element: an empty file of the daemon's (same filesystem)
//   to write the bytes into and rename onto the path instead of creating one; the shim
//   removes it if it cannot use it (frontends/materialize.ts OutputSpares).
// col (run, only when ow): absolute paths of the files to read once the compiler exited and
//   send with a one-way done (messages/done.ts); without it, done waits for `ok`.
// mmd (run, only with col): [full depfile (one of col), depfile to write, phony, targets,
//   search dirs]: before a one-way done, the shim writes -MMD's depfile from the full one
//   (native/depfile.h); if it cannot, its done is two-way and the daemon writes it.
export interface HitReply {
  t: 'hit';
  out: Buffer;
  err: Buffer;
  code: number;
  files?: ([string, Buffer] | [string, Buffer, string])[];
}
/** [full depfile the compiler writes (one of col), -MMD's depfile to write, phony, targets as gcc writes them, search dirs ('1' system / '0' user + dir)]. */
export type MmdWrite = [string, string, boolean, string[], string[]];
export interface RunReply {
  t: 'run';
  id: string;
  argv: string[];
  env: string[] /** collect */;
  col?: string[] /** mmd_depfile */;
  mmd?: MmdWrite;
}
export interface PassReply {
  t: 'pass';
  reason: UncacheableReason;
}
export interface SplitReply {
  t: 'split';
  cmds: string[][];
  link?: string[];
}
export type CompileReply = HitReply | RunReply | PassReply | SplitReply;

export function parseCompile(m: Record<string, unknown>): CompileRequest {
  return {
    t: 'compile',
    v: m.v as number,
    build: m.build as string,
    cwd: absPath(m, 'cwd'),
    exe: pathStr(m, 'exe'),
    argv: strArray(m, 'argv'),
    env: strArray(m, 'env'),
    tty: bool(m, 'tty'),
    wf: bool(m, 'wf'),
    sp: bool(m, 'sp'),
    ow: bool(m, 'ow'),
    sx: bool(m, 'sx'),
    ...(m.pid === undefined || m.pid === null ? {} : { pid: int(m, 'pid') }),
  };
}
