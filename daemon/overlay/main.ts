#!/usr/bin/env node
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { mountedOverlays, realDir, removeMountRecord, writeMountRecord } from '../../ipc/mounts.js';
import { instancePaths } from '../../ipc/paths.js';
import { lazyMapFile, lazySocketFile } from '../../ipc/lazy-map.js';
import { LazyFiles } from './lazy.js';
import { createLazyHandlers } from './lazy-handlers.js';
import { serveLazySocket } from './lazy-socket.js';
import { Overlay } from './overlay.js';

// The overlay process: `node overlay/main.js DIR`, started by `vrift mount` (detached, in its
// own process, see docs/overlay.md). It keeps a server process (`DIR --serve`) that mounts over
// DIR and serves it; when that one dies (killed, crashed), the mount it leaves answers ENOTCONN,
// so this one detaches it and starts another, which mounts the same DIR again: every byte the
// build wrote is beneath, nothing is lost. It records itself under the instance's run dir,
// prints one JSON line on stdout ({"ok":true,"pid"} or {"error","code"}) for whoever started
// it, and stops on a signal (unmounting) or when DIR is unmounted from outside.
const OUTSIDE_CHECK_MS = 2000;
// More crashes than this within a minute: the server is not going to stay up; give up.
const MAX_RESTARTS_PER_MIN = 5;

// By its real path: the kernel's table (checked below) lists the mount through no symlink.
const dir = realDir(process.argv[2] ?? '');
const paths = instancePaths(process.env);
process.stdout.on('error', () => {});
const say = (msg: string) => process.stderr.write(`${new Date().toISOString()} overlay ${dir}: ${msg}\n`);

if (process.argv[3] === '--serve') await serve();
else supervise();

async function serve(): Promise<void> {
  // The kernel already applied the caller's umask to the modes it sends.
  process.umask(0);
  let overlay: Overlay;
  let lazy: LazyFiles | undefined;
  try {
    overlay = await Overlay.mount({
      dir,
      // The lazy map a server before this one left is served again.
      handlers: (root) => createLazyHandlers(root, (lazy = LazyFiles.load(root, lazyMapFile(paths.runDir, dir), say))),
    });
  } catch (e) {
    process.stdout.write(`${JSON.stringify({ error: (e as Error).message, code: (e as { code?: string }).code ?? 'EFUSE' })}\n`);
    process.exit(1);
  }
  const socket = serveLazySocket(lazySocketFile(paths.runDir, dir), lazy!, say);
  if (lazy!.count) say(`${lazy!.count} lazy files served again`);
  process.stdout.write(`${JSON.stringify({ ok: true })}\n`);
  let stopping = false;
  const stop = async (why: string) => {
    if (stopping) return;
    stopping = true;
    say(`${why}, unmounting`);
    socket.close();
    rmSync(lazySocketFile(paths.runDir, dir), { force: true });
    // Beneath, through the descriptor: DIR then holds every output it can, and no lazy path is left.
    const m = await lazy!.materializeAll().catch((e) => (say(`materializing: ${(e as Error).message}`), undefined));
    if (m && m.written + m.lost > 0) say(`materialized ${m.written} lazy files, removed ${m.lost} whose bytes are gone`);
    await overlay.close().catch((e) => say(`unmount: ${(e as Error).message}`));
    process.exit(0);
  };
  for (const s of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(s, () => void stop(s));
  // Unmounted by someone else (fusermount -u): nothing left to serve.
  setInterval(() => {
    if (!mountedOverlays().has(dir)) void stop('unmounted from outside');
  }, OUTSIDE_CHECK_MS);
}

function supervise(): void {
  let child: ChildProcess | undefined;
  let stopping = false;
  let started = false;
  const crashes: number[] = [];
  const finish = (code: number) => {
    removeMountRecord(paths.runDir, dir, process.pid);
    process.exit(code);
  };
  const start = () => {
    const c = spawn(process.execPath, [fileURLToPath(import.meta.url), dir, '--serve'], { stdio: ['ignore', 'pipe', 'inherit'], env: process.env });
    child = c;
    let buf = '';
    c.stdout!.on('data', (d: Buffer) => {
      if (buf.includes('\n')) return;
      buf += d.toString();
      if (!buf.includes('\n')) return;
      const line = buf.slice(0, buf.indexOf('\n'));
      const ok = (JSON.parse(line) as { ok?: boolean }).ok === true;
      if (started) return say(ok ? `server ${c.pid} mounted again` : `server ${c.pid} could not mount again: ${line}`);
      if (!ok) {
        process.stdout.write(`${line}\n`);
        return;
      }
      started = true;
      writeMountRecord(paths.runDir, { dir, pid: process.pid, since: Date.now() });
      process.stdout.write(`${JSON.stringify({ ok: true, pid: process.pid })}\n`);
    });
    c.on('exit', (code, signal) => {
      if (stopping || !started || code === 0) return finish(started && code === 0 ? 0 : 1);
      const now = Date.now();
      crashes.push(now);
      while (crashes.length && crashes[0]! < now - 60_000) crashes.shift();
      say(`server ${c.pid} ended (${signal ?? `exit ${code}`})${crashes.length > MAX_RESTARTS_PER_MIN ? ', too often: giving up' : ', mounting again'}`);
      // The dead mount answers ENOTCONN: detach it (what processes hold inside is theirs to finish).
      // Giving up, DIR is a plain directory again: its lazy files are written into it first.
      execFile('fusermount', ['-uz', dir], () => (crashes.length > MAX_RESTARTS_PER_MIN ? void materializeLeft(dir).finally(() => finish(1)) : start()));
    });
  };
  for (const s of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const)
    process.on(s, () => {
      stopping = true;
      if (child?.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      else finish(0);
    });
  start();
}

/** Materializes what a lazy map left for `dir`, no overlay serving it any more (it is a plain directory). */
async function materializeLeft(d: string): Promise<void> {
  try {
    await LazyFiles.load(d, lazyMapFile(paths.runDir, d), say).materializeAll();
  } catch (e) {
    say(`materializing: ${(e as Error).message}`);
  }
}
