#!/usr/bin/env node
import path from 'node:path';
import { mountedOverlays, removeMountRecord, writeMountRecord } from '../../ipc/mounts.js';
import { instancePaths } from '../../ipc/paths.js';
import { Overlay } from './overlay.js';

// The overlay process: `node overlay/main.js DIR`, started by `vrift mount` (detached, in its
// own process, see docs/overlay.md). It mounts over DIR, records itself under the instance's
// run dir, prints one JSON line on stdout ({"ok":true} or {"error","code"}) for whoever
// started it, and serves until a signal (or until DIR is unmounted from outside).
const OUTSIDE_CHECK_MS = 2000;

const dir = path.resolve(process.argv[2] ?? '');
const paths = instancePaths(process.env);
// The kernel already applied the caller's umask to the modes it sends.
process.umask(0);
process.stdout.on('error', () => {});

let overlay: Overlay;
try {
  overlay = await Overlay.mount({ dir });
} catch (e) {
  process.stdout.write(`${JSON.stringify({ error: (e as Error).message, code: (e as { code?: string }).code ?? 'EFUSE' })}\n`);
  process.exit(1);
}
writeMountRecord(paths.runDir, { dir, pid: process.pid, since: Date.now() });
process.stdout.write(`${JSON.stringify({ ok: true, pid: process.pid })}\n`);

let stopping = false;
const stop = async (why: string) => {
  if (stopping) return;
  stopping = true;
  process.stderr.write(`${new Date().toISOString()} overlay ${dir}: ${why}, unmounting\n`);
  await overlay.close().catch((e) => process.stderr.write(`unmount: ${(e as Error).message}\n`));
  removeMountRecord(paths.runDir, dir, process.pid);
  process.exit(0);
};
for (const s of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(s, () => void stop(s));
// Unmounted by someone else (fusermount -u): nothing left to serve.
setInterval(() => {
  if (!mountedOverlays().has(dir)) void stop('unmounted from outside');
}, OUTSIDE_CHECK_MS);
