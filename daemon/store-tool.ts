import { lazyDigests } from '../ipc/lazy-map.js';
import { parseStoreToolRequest, toolError, type StoreToolMessage } from '../ipc/store-tool.js';
import { LocalStore } from './store/local.js';

// `vriftd store '<request>'`: the store work of `vrift clean` and `vrift verify`, run by the
// CLI as a child process with a node IPC channel (ipc/store-tool.ts). It works on the store
// directly (the store is safe for concurrent processes); the CLI has already had a running
// daemon write what it holds, and has it rescan afterwards.

// A progress report at most this often (and the first and the last): verify reports per file,
// and the CLI's bar and lines show no finer.
const PROGRESS_EVERY_MS = 50;

export async function storeTool(argv: string[], now: () => number = Date.now): Promise<void> {
  const send = process.send?.bind(process);
  if (!send) {
    process.stderr.write('vriftd store: run by vrift clean and vrift verify, not by hand\n');
    process.exit(2);
  }
  // The CLI gone (killed): so is the reason to go on, as when this ran in its process.
  const orphaned = () => process.exit(1);
  process.once('disconnect', orphaned);
  const report = (m: StoreToolMessage) => new Promise<void>((resolve) => void send(m, undefined, {}, () => resolve()));
  let store: LocalStore | undefined;
  try {
    const req = parseStoreToolRequest(argv[0]);
    const runDir = req.runDir;
    // Blobs the instance's overlays' lazy files name are kept (pins), as the daemon keeps them.
    store = new LocalStore({ root: req.root, ...(runDir ? { pinned: () => lazyDigests(runDir) } : {}) });
    await store.open();
    if (req.op === 'clean') {
      const r = await store.clean({ maxSize: req.maxSize, olderThan: req.olderThan, all: req.all === true });
      await report({ t: 'cleaned', removedFiles: r.removedFiles, removedBytes: r.removedBytes, usageBytes: store.usage().bytes });
    } else {
      let last = -Infinity;
      const r = await store.verify((done, total) => {
        if (done !== 1 && done !== total && now() - last < PROGRESS_EVERY_MS) return;
        last = now();
        send({ t: 'progress', done, total } satisfies StoreToolMessage);
      });
      await report({ t: 'verified', result: { ...r } });
    }
  } catch (e) {
    await report({ t: 'failed', error: toolError(e) });
  } finally {
    await store?.close().catch(() => {});
  }
  process.off('disconnect', orphaned);
  process.disconnect();
}
