import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ipcCall } from '../ipc/client.js';
import { VriftError } from '../ipc/errors.js';
import { instancePaths, prepareRunDir, type InstancePaths } from '../ipc/paths.js';
import { readStartFailure } from '../ipc/start-failure.js';
import { loadConfig } from '../config/config.js';
import { BUILD_ID, PROTOCOL_VERSION } from '../ipc/version.js';

export const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const DAEMON_MAIN = path.join(PACKAGE_ROOT, 'dist', 'daemon', 'main.js');
/** Node flags of every daemon start (native/daemon.c says why); main.js's #! line has them too. */
export const DAEMON_NODE_FLAGS = ['--max-semi-space-size=4'];
export const NATIVE_SHIM = path.join(PACKAGE_ROOT, 'native', 'build', 'vrift-shim');

export interface DaemonInfo {
  pid: number;
  build: string;
  v: number;
  home: string;
  uptimeMs: number;
}

export async function ping(paths: InstancePaths, timeoutMs = 1000): Promise<DaemonInfo | undefined> {
  if (!fs.existsSync(paths.socket)) return undefined;
  try {
    const r = await ipcCall(paths.endpoint, { t: 'hello' }, timeoutMs);
    return r.t === 'hello' ? (r as unknown as DaemonInfo) : undefined;
  } catch {
    return undefined;
  }
}

/** Whether a daemon holds the instance lock (alive, perhaps too busy to answer yet). */
export function lockHeld(paths: InstancePaths): boolean {
  if (!fs.existsSync(paths.lock)) return false;
  return spawnSync('flock', ['-n', paths.lock, 'true'], { stdio: 'ignore' }).status === 1;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitGone(_paths: InstancePaths, pid: number, timeoutMs: number) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await sleep(20);
  }
  throw new VriftError('ETIMEOUT', `daemon ${pid} did not exit within ${timeoutMs} ms`);
}

// A stopping daemon reads the reports shims sent just before (up to 2 s), writes what waits
// and lets queued uploads finish (up to 10 s): stop waits longer than that, so a daemon that
// keeps its promise is never reported as hanging (nor left running by a restart).
const STOP_WAIT_MS = 30_000;

export async function stopDaemon(env: NodeJS.ProcessEnv = process.env, timeoutMs = STOP_WAIT_MS): Promise<DaemonInfo | undefined> {
  const paths = instancePaths(env);
  // Patient: a daemon busy with a build still answers, and "was not running" would be wrong.
  let info = await ping(paths, 5000);
  if (!info && lockHeld(paths)) info = await ping(paths, timeoutMs);
  if (!info) return undefined;
  await ipcCall(paths.endpoint, { t: 'shutdown' }, timeoutMs).catch(() => {});
  await waitGone(paths, info.pid, timeoutMs);
  return info;
}

// Start the daemon unless one of this build answers. The instance lock is taken with
// flock(1) around the daemon process, the same lock the native shim takes, so concurrent
// starters end with exactly one daemon. A daemon of another build is stopped first.
// A daemon that exits before answering has written why (ipc/start-failure.ts): that is the
// error, at once (for what the configuration check above cannot see). VRIFT_DAEMON names another daemon command, as for the native shim.
export async function ensureDaemon(env: NodeJS.ProcessEnv = process.env, timeoutMs = 10_000): Promise<DaemonInfo> {
  const paths = instancePaths(env);
  let info = await ping(paths);
  if (info && info.build === BUILD_ID && info.v === PROTOCOL_VERSION) return info;
  if (info) await stopDaemon(env, timeoutMs);
  prepareRunDir(paths);
  // What the daemon would read first, read here: a bad value is said without a node start
  // (the TypeScript shim calls this per compile while no daemon runs).
  try {
    loadConfig({ env, project: false });
  } catch (e) {
    throw new VriftError('ESTART', `the daemon cannot start: ${(e as Error).message}`, { cause: e });
  }
  const daemonCmd = env.VRIFT_DAEMON ? [env.VRIFT_DAEMON] : [process.execPath, ...DAEMON_NODE_FLAGS, DAEMON_MAIN];
  const startEnv: NodeJS.ProcessEnv = { ...env, VRIFT_HOME: paths.home };
  delete startEnv.VRIFT_START_KEY;
  const spawnedAt = Date.now();
  const child = spawn('flock', ['-n', '-E', String(LOCK_BUSY), paths.lock, ...daemonCmd], { detached: true, stdio: 'ignore', env: startEnv, cwd: paths.home });
  const exited = new Promise<number>((resolve) => {
    child.on('exit', (code, sig) => resolve(code ?? (sig ? 128 : 1)));
    child.on('error', () => resolve(127));
  });
  let exitCode: number | undefined;
  void exited.then((c) => (exitCode = c));
  child.unref();
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    info = await ping(paths, 500);
    if (info) return info;
    // Busy lock: another starter's daemon is coming up; wait for it to answer.
    if (exitCode !== undefined && exitCode !== LOCK_BUSY) {
      const f = readStartFailure(paths.home, env);
      const reason = f && f.mtimeMs >= spawnedAt - 1000 ? f.reason : `vriftd exited with code ${exitCode} before answering (see ${paths.logFile})`;
      throw new VriftError('ESTART', `the daemon cannot start: ${reason}`);
    }
    await sleep(20);
  }
  throw new VriftError('ETIMEOUT', `vriftd did not answer on ${paths.endpoint} within ${timeoutMs} ms (see ${paths.logFile})`);
}

const LOCK_BUSY = 75;
