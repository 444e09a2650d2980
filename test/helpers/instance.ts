import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';
import { noneLeft } from './procs.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const SHIM = path.join(ROOT, 'native', 'build', 'vrift-shim');
export const CLI = path.join(ROOT, 'dist', 'shim', 'cli.js');
export const JS_SHIM = path.join(ROOT, 'dist', 'shim', 'shim.js');

export interface RunResult {
  code: number;
  stdout: Buffer;
  stderr: Buffer;
  out: string;
  err: string;
}

export function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d) => out.push(d));
    child.stderr.on('data', (d) => err.push(d));
    child.on('error', reject);
    child.stdin.on('error', () => {}); // the child may exit before reading stdin
    child.stdin.end(opts.input ?? '');
    child.on('close', (code, sig) => {
      const stdout = Buffer.concat(out);
      const stderr = Buffer.concat(err);
      resolve({ code: code ?? (sig ? 128 : 1), stdout, stderr, out: stdout.toString(), err: stderr.toString() });
    });
  });
}

export interface Instance {
  home: string;
  dir: string; // a scratch project dir
  env: NodeJS.ProcessEnv;
  cc(args: string[], opts?: { cwd?: string; env?: NodeJS.ProcessEnv; compiler?: string }): Promise<RunResult>;
  vrift(args: string[], opts?: { cwd?: string }): Promise<RunResult>;
  stats(): Promise<Stats>;
  /** Waits until the daemon has stored `n` results: the store write of a miss lands after the shim has its answer. */
  stored(n: number): Promise<Stats>;
  /** Stats once `pred` holds (remote answers enter the local store when lookups pause); throws,
   * naming what it waited for and the last stats, when it does not hold within 30 s. */
  until(pred: (s: Stats) => boolean, what?: string): Promise<Stats>;
  write(rel: string, text: string): string;
  /** Writes each file (relative path → text) and ages them all: sources that predate any compile. */
  files(texts: Record<string, string>): void;
  stop(): Promise<void>;
}

export interface Stats {
  requests: number;
  hits: number;
  misses: number;
  one_way_reports: number;
  compile_failed: number;
  stored: number;
  uncacheable: Record<string, number>;
  not_stored: Record<string, number>;
  errors: Record<string, number>;
  shim_fallbacks: Record<string, number>;
  local: { blobs: number; entries: number; bytes: number; corrupt: number; evicted_files: number };
  daemon: { pid: number; pending: number; spares: number };
}

// A private vrift instance (own VRIFT_HOME, own daemon started on demand by the shim)
// and a scratch directory; everything is stopped and removed when the test ends.
export function instance(t: ExecutionContext, extraEnv: NodeJS.ProcessEnv = {}): Instance {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'vrift-t-'));
  const home = path.join(base, 'home');
  const dir = path.join(base, 'proj');
  fs.mkdirSync(dir, { recursive: true });
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    VRIFT_HOME: home,
    VRIFT_IDLE_TIMEOUT: '300',
    LC_ALL: 'C',
    VRIFT_SPARE_FILES: '32',
    VRIFT_START_TIMEOUT_MS: '30000',
    ...extraEnv,
  };
  delete env.VRIFT_SESSION;
  const inst: Instance = {
    home,
    dir,
    env,
    cc: (args, o = {}) => run(SHIM, [o.compiler ?? 'gcc', ...args], { cwd: o.cwd ?? dir, env: { ...env, ...o.env } }),
    vrift: (args, o = {}) => run(process.execPath, [CLI, ...args], { cwd: o.cwd ?? dir, env }),
    stats: async () => {
      const r = await run(process.execPath, [CLI, 'stats', '--json'], { env });
      if (r.code !== 0) throw new Error(`vrift stats failed: ${r.err}`);
      return JSON.parse(r.out) as Stats;
    },
    stored: (n) => inst.until((s) => s.stored >= n, `${n} stored`),
    until: async (pred, what = pred.toString()) => {
      const deadline = Date.now() + 30_000;
      for (;;) {
        const s = await inst.stats();
        if (pred(s)) return s;
        if (Date.now() > deadline) throw new Error(`waited 30 s for ${what}; last stats: ${JSON.stringify(s)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    write: (rel, text) => {
      const f = path.join(dir, rel);
      fs.mkdirSync(path.dirname(f), { recursive: true });
      fs.writeFileSync(f, text);
      return f;
    },
    files: (texts) => age(...Object.entries(texts).map(([rel, text]) => inst.write(rel, text))),
    stop: async () => {
      const r = await run(process.execPath, [CLI, 'daemon', 'stop'], { env });
      if (r.code !== 0) throw new Error(`vrift daemon stop exited ${r.code}: ${r.err}`);
    },
  };
  t.teardown(async () => {
    try {
      await inst.stop();
      // Nothing this instance started (daemon, FUSE server, compiles, warming) outlives the test.
      await noneLeft(`the instance in ${base}`, (p) => p.environ.includes(`VRIFT_HOME=${home}\0`));
    } finally {
      fs.rmSync(base, { recursive: true, force: true });
    }
  });
  return inst;
}

// Sets a file's mtime into the past and lets its ctime fall behind, so the "modified during
// or right before the compile" guard does not refuse to store a file the test just wrote.
export function age(...files: string[]) {
  const past = new Date(Date.now() - 60_000);
  for (const f of files) fs.utimesSync(f, past, past);
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60);
}
