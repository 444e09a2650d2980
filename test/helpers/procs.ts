import fs from 'node:fs';

/** Live processes (pid and command line) for which `match` holds over their cmdline and environment. */
export function processes(match: (p: { cmdline: string; environ: string }) => boolean): { pid: number; cmdline: string }[] {
  const out: { pid: number; cmdline: string }[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      const cmdline = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8');
      if (!cmdline) continue; // a zombie or a kernel thread
      const environ = fs.readFileSync(`/proc/${d}/environ`, 'utf8');
      if (match({ cmdline, environ })) out.push({ pid: Number(d), cmdline: cmdline.split('\0').join(' ').trim() });
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return out;
}

/**
 * For a test's teardown: throws when processes matching `match` are still alive after
 * `graceMs` (what a test started must have ended with it), after killing them so they do not
 * outlive the test run.
 */
export async function noneLeft(what: string, match: Parameters<typeof processes>[0], graceMs = 10_000): Promise<void> {
  const deadline = Date.now() + graceMs;
  let left = processes(match);
  while (left.length && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    left = processes(match);
  }
  if (!left.length) return;
  for (const p of left) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // exited meanwhile
    }
  }
  throw new Error(`${what}: processes left behind: ${left.map((p) => `${p.pid} ${p.cmdline}`).join('; ')}`);
}

/** The TCP ports process `pid` listens on (read from /proc: for servers told to bind port 0 that do not say which port they got). */
export function listeningPorts(pid: number): number[] {
  const inodes = new Set<string>();
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {
      // closed meanwhile
    }
  }
  const ports: number[] = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of fs.readFileSync(table, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[3] === '0A' && inodes.has(f[9]!)) ports.push(parseInt(f[1]!.split(':')[1]!, 16));
    }
  }
  return ports;
}
