import { spawn } from 'node:child_process';

// Runs a warming compile at idle priority, in a process group of its own (so that cancelling
// it ends cc1 and as too), and says how much CPU it took. The compile runs under a shell whose
// `times` builtin prints its children's user and system time when it exits: Node cannot get a
// child's rusage, and the daemon's own children's total mixes in its other children.

export interface IdleRun {
  code: number;
  out: Buffer;
  err: Buffer;
  /** stdout/stderr went past the cap: not all of it was kept. */
  truncated: boolean;
  cpuMs: number;
  /** Ended by the signal (cancelled) or the timeout. */
  killed: boolean;
}

export interface IdleRunOptions {
  cwd: string;
  env: Record<string, string>;
  /** Prepended to the command: `chrt -i 0`, `nice -n 19`, or nothing (idlePrefix). */
  prefix: readonly string[];
  signal: AbortSignal;
  timeoutMs: number;
  maxOutput?: number;
}

const SCRIPT = '"$@"; s=$?; times >&3; exit $s';
const MAX_OUTPUT = 16 * 2 ** 20;
// How long output may still arrive after the compiler exited (its pipes drain in well under this).
const EXIT_GRACE_MS = 1000;

/** "0m0.010000s 0m0.002000s\n0m1.230000s 0m0.120000s": the second line is the children's. */
export function childCpuMs(times: string): number {
  const lines = times.trim().split('\n');
  const m = /(\d+)m([\d.]+)s\s+(\d+)m([\d.]+)s/.exec(lines[lines.length - 1] ?? '');
  if (!m) return 0;
  return Math.round((Number(m[1]) * 60 + Number(m[2]) + Number(m[3]) * 60 + Number(m[4])) * 1000);
}

export function runIdle(argv: readonly string[], o: IdleRunOptions): Promise<IdleRun> {
  return new Promise((resolve) => {
    const max = o.maxOutput ?? MAX_OUTPUT;
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const times: Buffer[] = [];
    let size = 0;
    let truncated = false;
    let killed = false;
    let exitGrace: NodeJS.Timeout | undefined;
    const child = spawn('/bin/sh', ['-c', SCRIPT, 'sh', ...o.prefix, ...argv], {
      cwd: o.cwd,
      env: o.env,
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
      detached: true,
    });
    const kill = () => {
      killed = true;
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    const keep = (into: Buffer[]) => (d: Buffer) => {
      if (size + d.length > max) truncated = true;
      else into.push(d);
      size += d.length;
    };
    child.stdout!.on('data', keep(out));
    child.stderr!.on('data', keep(err));
    (child.stdio[3] as NodeJS.ReadableStream).on('data', (d: Buffer) => times.push(d));
    const timer = setTimeout(kill, o.timeoutMs);
    timer.unref();
    if (o.signal.aborted) kill();
    o.signal.addEventListener('abort', kill, { once: true });
    let ended = false;
    const end = (code: number) => {
      if (ended) return;
      ended = true;
      clearTimeout(timer);
      clearTimeout(exitGrace);
      o.signal.removeEventListener('abort', kill);
      resolve({ code, out: Buffer.concat(out), err: Buffer.concat(err), truncated, cpuMs: childCpuMs(Buffer.concat(times).toString()), killed });
    };
    child.on('error', () => end(127));
    child.on('close', (code, sig) => end(code ?? (sig ? 128 + 9 : 1)));
    // A descendant left behind (a compiler server) may hold the pipes open after the compiler
    // exited: the run ends a moment after the exit all the same, its pipes let go.
    child.on('exit', (code, sig) => {
      exitGrace = setTimeout(() => {
        for (const s of child.stdio) s?.destroy();
        end(code ?? (sig ? 128 + 9 : 1));
      }, EXIT_GRACE_MS);
      exitGrace.unref();
    });
  });
}

/**
 * What to prepend for idle priority: SCHED_IDLE (`chrt -i 0`, util-linux) runs the compile only
 * on a core nothing else wants; else `nice -n 19`; else nothing. Each is tried once.
 */
export async function idlePrefix(): Promise<{ prefix: string[]; name: string }> {
  const works = (cmd: string, args: string[]) =>
    new Promise<boolean>((resolve) => {
      const c = spawn(cmd, [...args, 'true'], { stdio: 'ignore' });
      c.on('error', () => resolve(false));
      c.on('close', (code) => resolve(code === 0));
    });
  if (await works('chrt', ['-i', '0'])) return { prefix: ['chrt', '-i', '0'], name: 'SCHED_IDLE' };
  if (await works('nice', ['-n', '19'])) return { prefix: ['nice', '-n', '19'], name: 'nice 19' };
  return { prefix: [], name: 'normal' };
}
