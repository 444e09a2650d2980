import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';

// Child processes for the harness. Build output goes to a log file, never to the
// terminal (it would tear the progress bar); failures quote the log's tail.

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  seconds: number;
}

export class CommandError extends Error {
  readonly code = 'EBENCHCMD';
  constructor(
    readonly argv: string[],
    readonly cwd: string,
    readonly result: RunResult,
    readonly tail: string,
  ) {
    super(`${argv.join(' ')} (in ${cwd}) exited ${result.code ?? result.signal}\n${tail}`);
  }
}

function tailOf(file: string, bytes = 3000): string {
  try {
    const buf = fs.readFileSync(file);
    return buf.subarray(Math.max(0, buf.length - bytes)).toString('utf8');
  } catch {
    return '';
  }
}

/** Runs argv with stdout+stderr appended to logFile; resolves with wall time, rejects on failure. */
export function run(argv: string[], opts: { cwd: string; env: NodeJS.ProcessEnv; logFile: string }): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    fs.appendFileSync(opts.logFile, `\n$ (cd ${opts.cwd} && ${argv.join(' ')})\n`);
    const fd = fs.openSync(opts.logFile, 'a');
    const t0 = process.hrtime.bigint();
    const child = spawn(argv[0], argv.slice(1), { cwd: opts.cwd, env: opts.env, stdio: ['ignore', fd, fd] });
    fs.closeSync(fd);
    child.on('error', (e) => reject(e));
    child.on('close', (code, signal) => {
      const result = { code, signal, seconds: Number(process.hrtime.bigint() - t0) / 1e9 };
      if (code === 0) resolve(result);
      else reject(new CommandError(argv, opts.cwd, result, tailOf(opts.logFile)));
    });
  });
}

/** Short helper commands (stats, server control): captured output, never throws. */
export function capture(argv: string[], opts: { cwd?: string; env: NodeJS.ProcessEnv; timeoutMs?: number }): { ok: boolean; stdout: string; stderr: string } {
  const r = spawnSync(argv[0], argv.slice(1), {
    cwd: opts.cwd,
    env: opts.env,
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 30_000,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return { ok: r.status === 0, stdout: r.stdout ?? '', stderr: (r.stderr ?? '') + (r.error ? String(r.error) : '') };
}

/** Core-seconds the whole machine spent busy and idle so far (/proc/stat, iowait counted idle). */
export function machineCpu(): { busy: number; idle: number } | undefined {
  try {
    const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const hz = 100;
    return { busy: (f[0] + f[1] + f[2] + f[5] + f[6]) / hz, idle: (f[3] + f[4]) / hz };
  } catch {
    return undefined;
  }
}

/** CPU seconds a process has used so far, all its threads (/proc/<pid>/stat utime + stime). */
/** CPU seconds of a process; with `children`, plus its living children's (`vrift serve` runs the server as `vriftd serve`, its child). */
export function processCpu(pid: number | undefined, children = false): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
    let kids = 0;
    if (children)
      for (const c of fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(' ').filter(Boolean)) kids += processCpu(Number(c), true) ?? 0;
    return (Number(rest[11]) + Number(rest[12])) / 100 + kids;
  } catch {
    return undefined;
  }
}

export function loadavg(): string {
  try {
    return fs.readFileSync('/proc/loadavg', 'utf8').trim();
  } catch {
    return 'n/a';
  }
}

/** Runs a command to completion, its output appended to `log`; throws naming the log when it fails. */
export function timedSync(log: string, argv: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): { secs: number; stdout: string; stderr: string } {
  fs.appendFileSync(log, `\n$ (cd ${cwd} && ${argv.join(' ')})\n`);
  const t0 = process.hrtime.bigint();
  const r = spawnSync(argv[0], argv.slice(1), { cwd, env, encoding: 'utf8', maxBuffer: 256 << 20 });
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  fs.appendFileSync(log, (r.stdout ?? '') + (r.stderr ?? ''));
  if (r.status !== 0) throw new Error(`${argv.join(' ')} in ${cwd} exited ${r.status} (see ${log})`);
  return { secs, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/**
 * timedSync without blocking the event loop: a harness's SIGINT/SIGTERM handler runs while
 * the command does (and may stop it: the command leads a process group of its own, which
 * `running` holds until it ends, so the handler can end it and everything it started).
 */
export function timed(
  log: string,
  argv: string[],
  cwd: string,
  env: NodeJS.ProcessEnv = process.env,
  running?: Set<ChildProcess>,
): Promise<{ secs: number; stdout: string; stderr: string }> {
  fs.appendFileSync(log, `\n$ (cd ${cwd} && ${argv.join(' ')})\n`);
  const t0 = process.hrtime.bigint();
  const child = spawn(argv[0], argv.slice(1), { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  running?.add(child);
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (d: Buffer) => out.push(d));
  child.stderr.on('data', (d: Buffer) => err.push(d));
  return new Promise((resolve, reject) => {
    child.on('error', (e) => {
      running?.delete(child);
      reject(e);
    });
    child.on('close', (code, signal) => {
      running?.delete(child);
      const secs = Number(process.hrtime.bigint() - t0) / 1e9;
      const [stdout, stderr] = [Buffer.concat(out).toString('utf8'), Buffer.concat(err).toString('utf8')];
      fs.appendFileSync(log, stdout + stderr);
      if (code !== 0) reject(new Error(`${argv.join(' ')} in ${cwd} exited ${code ?? signal} (see ${log})`));
      else resolve({ secs, stdout, stderr });
    });
  });
}
