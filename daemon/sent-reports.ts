import fs from 'node:fs';
import type { DaemonContext, Pending } from './context.js';

// A shim that reports one-way has exited before its report is read. When the shim said its
// pid and that process is gone, its report was written to the socket before it exited:
// whoever needs every finished compile counted or stored (`vrift stats`, clean, verify)
// waits for it to be read (this long at most: a shim that crashed mid-send never reports).
// A shim still running is compiling; its report comes later. Shims that gave no pid get a
// short grace.
const ONE_WAY_SENT_WAIT_MS = 2000;
const ONE_WAY_GRACE_MS = 100;

export async function awaitSentReports(ctx: DaemonContext): Promise<void> {
  const start = Date.now();
  const awaited = (p: Pending) => p.oneWay === true && !p.lost && (p.pid === undefined ? Date.now() - start < ONE_WAY_GRACE_MS : !processAlive(p.pid));
  while ([...ctx.pending.values()].some(awaited) && Date.now() - start < ONE_WAY_SENT_WAIT_MS) await new Promise((r) => setTimeout(r, 2));
  // Reports that never came (a shim killed before it sent) are not waited for again.
  for (const p of ctx.pending.values()) if (p.pid !== undefined && awaited(p)) p.lost = true;
}

// Whether a process still runs: a zombie (exited, not yet reaped by the build tool) has sent
// everything it will send.
export function processAlive(pid: number): boolean {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return false;
  }
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state !== 'Z' && state !== 'X';
}
