import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import { mountedOverlays, readMountRecord } from '../../ipc/mounts.js';
import type { Instance } from './instance.js';
import { processes } from './procs.js';

/** Whether the kernel lists a vrift overlay on `dir` now. */
export const isMounted = (dir: string) => mountedOverlays().has(dir);

/**
 * `vrift mount dir` for a test, with a teardown that never leaves the mount or its process
 * behind, even when the test failed: `vrift unmount`, then `fusermount -uz` and SIGKILL.
 * Registered after the instance's, so it runs before it (ava runs teardowns last-first).
 */
export async function mountFor(t: ExecutionContext, inst: Instance, dir: string): Promise<number> {
  t.teardown(async () => {
    const pid = readMountRecord(path.join(inst.home, 'run'), dir)?.pid;
    if (isMounted(dir)) await inst.vrift(['unmount', dir]);
    // The keeper first (it would mount again), then any server of this dir, then the mount
    // they leave: a failed test may stop while a server is still starting.
    const servers = processes((p) => p.cmdline.includes(`${dir}\0--serve`)).map((p) => p.pid);
    for (const p of [...(pid ? [pid] : []), ...servers])
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // exited
      }
    if (isMounted(dir)) execFileSync('fusermount', ['-uz', dir]);
  });
  const r = await inst.vrift(['mount', dir]);
  if (r.code !== 0 || !isMounted(dir)) throw new Error(`vrift mount ${dir} exited ${r.code}: ${r.err}`);
  const pid = readMountRecord(path.join(inst.home, 'run'), dir)?.pid;
  if (!pid) throw new Error(`no mount record for ${dir}`);
  return pid;
}

/** Every regular file and symlink under `dir` (relative path → bytes or link text). */
export function tree(dir: string): Map<string, Buffer | string> {
  const out = new Map<string, Buffer | string>();
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isSymbolicLink()) out.set(path.relative(dir, p), fs.readlinkSync(p));
      else out.set(path.relative(dir, p), fs.readFileSync(p));
    }
  };
  walk(dir);
  return out;
}

/** The paths whose content differs between two trees (or that only one has). */
export function treeDiff(a: Map<string, Buffer | string>, b: Map<string, Buffer | string>): string[] {
  const out: string[] = [];
  for (const [k, v] of a) {
    const w = b.get(k);
    if (w === undefined) out.push(`only in the first: ${k}`);
    else if (typeof v === 'string' ? v !== w : !(Buffer.isBuffer(w) && v.equals(w))) out.push(`differs: ${k}`);
  }
  for (const k of b.keys()) if (!a.has(k)) out.push(`only in the second: ${k}`);
  return out;
}
