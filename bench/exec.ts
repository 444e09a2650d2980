import { spawn, spawnSync } from 'node:child_process';
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
  constructor(readonly argv: string[], readonly cwd: string, readonly result: RunResult, readonly tail: string) {
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

export function loadavg(): string {
  try {
    return fs.readFileSync('/proc/loadavg', 'utf8').trim();
  } catch {
    return 'n/a';
  }
}
