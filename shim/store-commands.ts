import bytes from 'bytes';
import cliProgress from 'cli-progress';
import { ipcCall } from '../ipc/client.js';
import { instancePaths } from '../ipc/paths.js';
import { loadConfig } from '../config/config.js';
import { LocalStore } from '../daemon/store/local.js';
import { ping } from './daemon-control.js';
import { checkHome, userMessage } from './user-errors.js';

// clean and verify run in the CLI process, on the store the daemon uses (the store is safe
// for concurrent processes), with a progress bar; the daemon then rescans its accounting.
// A running daemon first writes what it still holds (results of a build that just ended,
// reports still in its socket): otherwise clean would miss them and they would land after it.
// Its store is the one it started with, whatever config.toml says now.
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
  const store = new LocalStore({ root: storePath });
  await store.open().catch((e) => fail(userMessage(e, paths)));
  try {
    if (op === 'clean') {
      // Already read by the strict parsers (arg-parsers.ts): bytes and milliseconds.
      const maxSize = o.maxSize as number | undefined;
      const olderThan = o.olderThan as number | undefined;
      const all = o.all === true || (maxSize === undefined && olderThan === undefined);
      const r = await store.clean({ maxSize, olderThan, all });
      process.stdout.write(`removed ${r.removedFiles} files, ${bytes(r.removedBytes) ?? '0B'}; ${storePath} now holds ${bytes(store.usage().bytes) ?? '0B'}\n`);
    } else {
      const bar = process.stderr.isTTY && !o.json ? new cliProgress.SingleBar({ format: 'verify [{bar}] {value}/{total} files', hideCursor: true }, cliProgress.Presets.shades_classic) : undefined;
      let started = false;
      let lastLine = 0;
      const r = await store.verify((done, total) => {
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
      if (o.json) process.stdout.write(JSON.stringify(r) + '\n');
      else process.stdout.write(`checked ${r.checked} files (${bytes(r.bytes) ?? '0B'}): ${r.corrupt} corrupt, ${r.removed} removed\n`);
      if (r.corrupt > 0) process.exitCode = 1;
    }
  } catch (e) {
    fail(userMessage(e, paths));
  } finally {
    await store.close();
  }
  if (await ping(paths)) await ipcCall(paths.endpoint, { t: 'store-op', op: 'rescan' }).catch(() => {});
}
