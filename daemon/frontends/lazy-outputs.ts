import net from 'node:net';
import path from 'node:path';
import { lazySocketFile, type LazyEntry } from '../../ipc/lazy-map.js';
import { mountedOverlays, readMountRecord } from '../../ipc/mounts.js';
import type { ChannelLogger } from '../log.js';

// A hit's output inside a DIR this instance's overlay has mounted: registered with the overlay
// server as lazy (docs/overlay.md, "Lazy hits") instead of written. Only a blob already in the
// local store, intact, goes lazy (the store pins it while the map names it); anything else, and any
// failure to register, is answered false and the output is written as without the overlay.

// Only blobs below this size go lazy: each is read and verified first (as the eager write
// would), and a larger one's read would cost what laziness saves.
const VERIFY_MAX = 8 * 2 ** 20;

export interface LazyOutputsOptions {
  runDir: string;
  /** The local store: whether it holds the blob now (read and verified), and its root (the server reads it there). */
  store: { root: string; hasBlob(digest: string): Promise<boolean>; getBlob(digest: string): Promise<Buffer | undefined> };
  now: () => number;
  log: ChannelLogger;
  /** How long a registration may take before the output is written instead. */
  timeoutMs?: number;
  /** The kernel's table, re-read at most this often. */
  mountsTtlMs?: number;
  /** For tests: the mount table's text. */
  mountsText?: () => string | undefined;
}

export class LazyOutputs {
  private dirs: { at: number; list: string[] } = { at: -Infinity, list: [] };

  constructor(private readonly o: LazyOutputsOptions) {}

  /** The mounted DIR (of this instance) `abs` lies inside, if any. */
  mountOf(abs: string): string | undefined {
    const now = this.o.now();
    if (now - this.dirs.at > (this.o.mountsTtlMs ?? 1000)) {
      const live = mountedOverlays(this.o.mountsText?.());
      // Another instance's mount has another socket and store: left alone.
      this.dirs = { at: now, list: [...live].filter((d) => readMountRecord(this.o.runDir, d) !== undefined) };
    }
    return this.dirs.list.find((d) => abs.startsWith(`${d}/`));
  }

  /** True when `abs` is now a lazy file of its mount; false: the caller writes it. */
  async register(abs: string, obj: { digest: string; size: number }, mode = 0o644): Promise<boolean> {
    const dir = this.mountOf(abs);
    if (!dir) return false;
    if (obj.size >= VERIFY_MAX) return false;
    // Read and verified now as the eager write would: a corrupt blob is a miss, not a lazy file
    // that fails its first open.
    const intact = this.o.store.getBlob(obj.digest).then((b) => b?.length === obj.size);
    if (!(await intact.catch(() => false))) return false;
    const entry: LazyEntry = { digest: obj.digest, size: obj.size, mode, mtime: this.o.now(), store: this.o.store.root };
    const socket = lazySocketFile(this.o.runDir, dir);
    const rel = path.relative(dir, abs);
    try {
      await request(socket, { op: 'register', path: rel, entry }, this.o.timeoutMs ?? 2000);
    } catch (err) {
      this.o.log.debug('lazy registration failed: written instead', { err, output: abs });
      return false;
    }
    // Evicted between the check and the registration: unregistered (an open of the path would
    // fetch it, and the eager write or the compiler's own may open it without O_TRUNC).
    if (await this.o.store.hasBlob(obj.digest).catch(() => false)) return true;
    await request(socket, { op: 'unregister', path: rel }, this.o.timeoutMs ?? 2000).catch((err) =>
      this.o.log.warn('lazy unregistration failed: the output reads as an I/O error until rebuilt', { err, output: abs }),
    );
    return false;
  }
}

/** One request on its own connection; rejects on anything but {"ok":true}. */
function request(socket: string, msg: unknown, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = net.createConnection(socket);
    let buf = '';
    const timer = setTimeout(() => done(new Error(`no answer in ${timeoutMs} ms`)), timeoutMs);
    const done = (err?: Error) => {
      clearTimeout(timer);
      s.destroy();
      if (err) reject(err);
      else resolve();
    };
    s.on('error', (e) => done(e));
    s.on('connect', () => s.write(`${JSON.stringify(msg)}\n`));
    s.on('data', (d) => {
      buf += d.toString();
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      try {
        const r = JSON.parse(buf.slice(0, nl)) as { ok?: boolean; error?: string };
        done(r.ok === true ? undefined : new Error(r.error ?? 'refused'));
      } catch (e) {
        done(e as Error);
      }
    });
    s.on('end', () => done(new Error('closed without an answer')));
  });
}
