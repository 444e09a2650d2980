import { lazyMapFile, lazySummary } from '../ipc/lazy-map.js';
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { VriftError } from '../ipc/errors.js';
import { fuseUnavailable, listMountRecords, mountedOverlays, readMountRecord, realDir, removeMountRecord } from '../ipc/mounts.js';
import { prepareRunDir, type InstancePaths } from '../ipc/paths.js';
import { PACKAGE_ROOT } from './daemon-control.js';
import { mountUsers, processIds, type MountUser } from './mount-users.js';

// Starting and stopping overlay processes (daemon/overlay/main.ts) for `vrift mount`,
// `vrift unmount`, `vrift mounts` and `vrift run --lazy`. The overlay runs detached, in its
// own process: neither this CLI nor the daemon stopping takes a mounted DIR away.
export const OVERLAY_MAIN = path.join(PACKAGE_ROOT, 'dist', 'daemon', 'overlay', 'main.js');
const OVERLAY_MATERIALIZE = path.join(PACKAGE_ROOT, 'dist', 'daemon', 'overlay', 'materialize-main.js');
const run = promisify(execFile);

export interface OverlayTimeouts {
  /** For the overlay process to say it mounted (a loaded machine starts node slowly). */
  mountMs: number;
  /** For it to unmount and exit after SIGTERM (it waits up to 5 s for a busy DIR itself). */
  unmountMs: number;
}
export const OVERLAY_TIMEOUTS: Readonly<OverlayTimeouts> = Object.freeze({ mountMs: 30_000, unmountMs: 20_000 });

export type MountResult = { state: 'mounted'; pid: number } | { state: 'already'; pid?: number } | { state: 'unavailable'; reason: string };

/** Mounts the overlay over `dir` (made if missing); FUSE missing here is a result, not a throw. */
export async function mountDir(paths: InstancePaths, given: string, env: NodeJS.ProcessEnv, t: OverlayTimeouts = OVERLAY_TIMEOUTS): Promise<MountResult> {
  // The kernel's table names the real path: compared by it, a DIR given through a symlink is one DIR.
  let dir = realDir(given);
  if (mountedOverlays().has(dir)) {
    const rec = readMountRecord(paths.runDir, dir);
    if (rec && isOverlayOf(rec.pid, dir)) return { state: 'already', pid: rec.pid };
    // Another home's overlay (no record here) is left alone while it serves.
    if (!rec && !deadMount(dir)) return { state: 'already' };
    // Its keeper is gone (killed): nobody mounts it again, reads say ENOTCONN. A server it left
    // goes first (stopping, it would unmount the new mount), then the mount, then mount afresh.
    for (const pid of overlayProcesses(dir)) killQuietly(pid, 'SIGKILL');
    await run('fusermount', ['-uz', dir]).catch(() => {});
    removeMountRecord(paths.runDir, dir);
  }
  // Said without starting a process; the overlay process checks the rest (libfuse, the mount itself).
  const why = fuseUnavailable();
  if (why) return { state: 'unavailable', reason: why };
  fs.mkdirSync(dir, { recursive: true });
  // Made just now: a symlink in the part that was missing is resolved only now.
  dir = realDir(dir);
  prepareRunDir(paths);
  fs.mkdirSync(path.dirname(paths.logFile), { recursive: true });
  const log = fs.openSync(path.join(path.dirname(paths.logFile), 'overlay.log'), 'a');
  const child = spawn(process.execPath, [OVERLAY_MAIN, dir], { detached: true, stdio: ['ignore', 'pipe', log], env, cwd: '/' });
  fs.closeSync(log);
  const line = await new Promise<string>((resolve) => {
    let buf = '';
    const timer = setTimeout(() => resolve(''), t.mountMs);
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      if (buf.includes('\n')) {
        clearTimeout(timer);
        resolve(buf.slice(0, buf.indexOf('\n')));
      }
    });
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve(JSON.stringify({ error: e.message }));
    });
    child.on('exit', () => {
      clearTimeout(timer);
      resolve(buf);
    });
  });
  child.stdout!.destroy();
  child.unref();
  let msg: { ok?: boolean; pid?: number; error?: string; code?: string } = {};
  try {
    msg = JSON.parse(line) as typeof msg;
  } catch {
    // no line: below
  }
  if (msg.ok) return { state: 'mounted', pid: msg.pid ?? child.pid! };
  if (msg.code === 'EFUSE') return { state: 'unavailable', reason: msg.error ?? 'FUSE cannot be used here' };
  // The keeper and the server it started (one process group: spawned detached), so no server
  // mounts after this says it did not start; then any mount one left.
  if (child.exitCode === null) killQuietly(-child.pid!, 'SIGKILL');
  if (mountedOverlays().has(dir)) await run('fusermount', ['-uz', dir]).catch(() => {});
  throw new VriftError(
    'EFUSE',
    `the overlay over ${dir} did not start: ${msg.error ?? (line || `no answer in ${t.mountMs / 1000} s`)} (see ${path.join(path.dirname(paths.logFile), 'overlay.log')})`,
  );
}

/** The processes using the mounted `dir` now, less its own overlay processes ([] when not mounted). */
export function usersOf(given: string): MountUser[] {
  const dir = realDir(given);
  if (!mountedOverlays().has(dir)) return [];
  return mountUsers(dir, (pid) => isOverlayOf(pid, dir, '/proc', true));
}

/** Stops the overlay over `dir`: false when none was mounted there. */
export async function unmountDir(paths: InstancePaths, given: string, t: OverlayTimeouts = OVERLAY_TIMEOUTS): Promise<boolean> {
  const dir = realDir(given);
  const rec = readMountRecord(paths.runDir, dir);
  const mounted = mountedOverlays().has(dir);
  if (!mounted && !rec) return false;
  // A pid reused by another process since is not ours to signal.
  if (rec && isOverlayOf(rec.pid, dir)) {
    process.kill(rec.pid, 'SIGTERM');
    const until = Date.now() + t.unmountMs;
    while (isOverlayOf(rec.pid, dir) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    if (isOverlayOf(rec.pid, dir)) {
      // Its record first: a mount left behind is then nobody's to serve again.
      removeMountRecord(paths.runDir, dir);
      process.kill(rec.pid, 'SIGKILL');
    }
  }
  // A killed overlay left its mount behind (reads would say ENOTCONN): detach it.
  if (mountedOverlays().has(dir)) await run('fusermount', ['-uz', dir]).catch(() => {});
  // Lazy files its server could not materialize (killed): DIR is a plain directory now, written here.
  const lazyFile = lazyMapFile(paths.runDir, dir);
  if (fs.existsSync(lazyFile) && overlayProcesses(dir).length === 0 && !mountedOverlays().has(dir)) {
    await run(process.execPath, [OVERLAY_MATERIALIZE, dir, lazyFile]).catch(() => {});
  }
  removeMountRecord(paths.runDir, dir);
  return mounted;
}

/** The overlay processes (keeper and servers) of `dir` now, by their command lines. */
function overlayProcesses(dir: string, procDir = '/proc'): number[] {
  return processIds(procDir).filter((pid) => isOverlayOf(pid, dir, procDir, true));
}

/** Whether `pid` is the overlay keeper of `dir` (or, `orServer`, one of its servers): not a reused pid. */
function isOverlayOf(pid: number, dir: string, procDir = '/proc', orServer = false): boolean {
  let args: string[];
  try {
    args = fs.readFileSync(path.join(procDir, String(pid), 'cmdline'), 'utf8').split('\0');
  } catch {
    return false;
  }
  const isMain = (args[1] ?? '').endsWith(path.join('overlay', 'main.js'));
  return isMain && args[2] === dir && (args[3] === '' || args[3] === undefined || (orServer && args[3] === '--serve'));
}

/** Whether the mount on `dir` has no server left (the kernel answers ENOTCONN). */
function deadMount(dir: string): boolean {
  try {
    fs.statSync(dir);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOTCONN';
  }
}

function killQuietly(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // gone meanwhile
  }
}

export interface MountLine {
  dir: string;
  pid: number;
  since: number;
  /** mounted and served; `stale`: its process is gone (the DIR then needs `vrift unmount`). */
  state: 'mounted' | 'stale';
  /** Files a hit put there whose bytes are not written yet, and their size. */
  lazy: { files: number; bytes: number };
}

export function listMounts(paths: InstancePaths): MountLine[] {
  const live = mountedOverlays();
  return listMountRecords(paths.runDir)
    .filter((r) => live.has(r.dir) || isOverlayOf(r.pid, r.dir))
    .map((r) => ({
      dir: r.dir,
      pid: r.pid,
      since: r.since,
      state: live.has(r.dir) && isOverlayOf(r.pid, r.dir) ? 'mounted' : 'stale',
      lazy: lazySummary(paths.runDir, r.dir),
    }));
}
