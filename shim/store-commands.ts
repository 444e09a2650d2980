import { spawn } from 'node:child_process';
import bytes from 'bytes';
import cliProgress from 'cli-progress';
import { loadConfig } from '../config/config.js';
import { ipcCall } from '../ipc/client.js';
import { instancePaths } from '../ipc/paths.js';
import { fromToolError, type StoreToolMessage, type StoreToolRequest, type ToolError } from '../ipc/store-tool.js';
import { checkHome, userMessage } from '../ipc/user-errors.js';
import { DAEMON_MAIN, ping } from './daemon-control.js';

// clean and verify work on the store the daemon uses (the store is safe for concurrent
// processes) in the daemon's program, `vriftd store` (ipc/store-tool.ts), run as a child of
// this one; what the user reads, the progress bar included, is said here. The daemon then
// rescans its accounting. A running daemon first writes what it still holds (results of a
// build that just ended, reports still in its socket): otherwise clean would miss them and
// they would land after it. Its store is the one it started with, whatever config.toml says now.
const SETTLE_TIMEOUT_MS = 120_000;

export async function runStoreCommand(op: 'clean' | 'verify', o: Record<string, unknown>, env: NodeJS.ProcessEnv): Promise<void> {
  const fail = (msg: string): never => {
    process.stderr.write(`vrift ${op}: ${msg}\n`);
    process.exit(2);
  };
  const paths = instancePaths(env);
  const badHome = checkHome(paths);
  if (badHome) fail(badHome);
  let storePath: string;
  try {
    storePath = loadConfig({ env, project: false }).config.local_path;
  } catch (e) {
    return fail((e as Error).message);
  }
  if (await ping(paths, 5000)) {
    const running = await ipcCall(paths.endpoint, { t: 'config' }, 5000).catch(() => undefined);
    if (typeof running?.config === 'object' && running.config && typeof (running.config as Record<string, unknown>).local_path === 'string') {
      storePath = (running.config as Record<string, string>).local_path;
    }
    await ipcCall(paths.endpoint, { t: 'store-op', op: 'settle' }, SETTLE_TIMEOUT_MS).catch((e) => {
      process.stderr.write(`vrift ${op}: the daemon did not write what it holds (${(e as Error).message}); results still coming may land after this\n`);
    });
  }
  let req: StoreToolRequest;
  if (op === 'clean') {
    // Already read by the strict parsers (config/arg-parsers.ts): bytes and milliseconds.
    const maxSize = o.maxSize as number | undefined;
    const olderThan = o.olderThan as number | undefined;
    const all = o.all === true || (maxSize === undefined && olderThan === undefined);
    req = { op, root: storePath, maxSize, olderThan, all, runDir: paths.runDir };
  } else {
    req = { op, root: storePath };
  }
  const bar =
    op === 'verify' && process.stderr.isTTY && !o.json
      ? new cliProgress.SingleBar({ format: 'verify [{bar}] {value}/{total} files', hideCursor: true }, cliProgress.Presets.shades_classic)
      : undefined;
  let started = false;
  let lastLine = 0;
  const r = await runStoreTool(req, env, (done, total) => {
    if (bar) {
      if (!started) bar.start(total, 0);
      started = true;
      bar.update(done);
    } else if (!o.json && (done === total || Date.now() - lastLine > 1000)) {
      lastLine = Date.now();
      process.stderr.write(`verify: ${done}/${total} files\n`);
    }
  });
  bar?.stop();
  if (r.t === 'failed') fail(userMessage(fromToolError(r.error), paths));
  else if (r.t === 'cleaned') {
    process.stdout.write(`removed ${r.removedFiles} files, ${bytes(r.removedBytes) ?? '0B'}; ${storePath} now holds ${bytes(r.usageBytes) ?? '0B'}\n`);
  } else if (r.t === 'verified') {
    const v = r.result;
    if (o.json) process.stdout.write(JSON.stringify(v) + '\n');
    else process.stdout.write(`checked ${v.checked} files (${bytes(v.bytes) ?? '0B'}): ${v.corrupt} corrupt, ${v.removed} removed\n`);
    if (v.corrupt > 0) process.exitCode = 1;
  }
  if (await ping(paths)) await ipcCall(paths.endpoint, { t: 'store-op', op: 'rescan' }).catch(() => {});
}

type Outcome = Exclude<StoreToolMessage, { t: 'progress' }>;

/** Runs `vriftd store` and gives its last word once it has exited (its store closed). */
function runStoreTool(req: StoreToolRequest, env: NodeJS.ProcessEnv, onProgress: (done: number, total: number) => void): Promise<Outcome> {
  return new Promise((resolve) => {
    let outcome: Outcome | undefined;
    const failed = (error: ToolError): Outcome => ({ t: 'failed', error });
    const child = spawn(process.execPath, [DAEMON_MAIN, 'store', JSON.stringify(req)], { env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    child.on('message', (m: StoreToolMessage) => {
      if (m.t === 'progress') onProgress(m.done, m.total);
      else outcome = m;
    });
    child.on('error', (e) => resolve(failed({ message: `cannot run ${DAEMON_MAIN}: ${e.message}` })));
    child.on('exit', (code, sig) => resolve(outcome ?? failed({ message: `vriftd store ended (${sig ?? `exit code ${code}`}) before it said how it went` })));
  });
}
