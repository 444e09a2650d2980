import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { LRUCache } from 'lru-cache';
import type { ChannelLogger } from '../log.js';
import type { Backend } from './backend.js';

// Objects up to this size are read in one call instead of streamed.
const SMALL = 256 * 1024;
// A served object's mtime is moved to now when it is older than this: the order of the LRU
// survives a restart (rebuilt from mtimes), at one utimes per object per period.
const TOUCH_EVERY_MS = 60 * 60 * 1000;
// Objects up to this size are also kept in memory, HOT_BYTES of them in all.
const HOT_MAX = 64 * 1024;
const HOT_BYTES = 64 * 1024 * 1024;

// A directory: `ac/<h2>/<hash>`, `cas/<h2>/<hash>`, `kv/<path>`, plus `tmp/` for uploads.
// Size-bounded by an in-memory LRU built from the files' mtimes at start (a hit moves an
// object's mtime forward, at most once an hour); an evicted key's file is moved into `tmp/`
// at once (an upload of the same key right after is not deleted with it) and unlinked from
// there. One server process owns a directory (several share a bucket instead).
export class FsBackend implements Backend {
  readonly description: string;
  readonly tmpDir: string;
  private readonly lru: LRUCache<string, { size: number; touched: number }>;
  // The bytes of recently served small CAS objects: a GET of one is then answered
  // without touching the disk (four thread-pool round trips: open, stat, read, close).
  private readonly hot = new LRUCache<string, Buffer>({ maxSize: HOT_BYTES, sizeCalculation: (b) => Math.max(1, b.length) });
  private evictedItems = 0;
  private readonly dirs = new Set<string>();
  private evictedBytes = 0;
  private evictSeq = 0;

  private constructor(
    private readonly root: string,
    private readonly maxSize: number,
    private readonly log: ChannelLogger,
  ) {
    this.description = root;
    this.tmpDir = path.join(root, 'tmp');
    this.lru = new LRUCache<string, { size: number; touched: number }>({
      maxSize: maxSize > 0 ? maxSize : Number.MAX_SAFE_INTEGER,
      sizeCalculation: (v) => Math.max(1, v.size),
      dispose: ({ size }, key, reason) => {
        this.hot.delete(key);
        if (reason !== 'evict') return;
        this.evictedItems++;
        this.evictedBytes += size;
        const gone = path.join(this.tmpDir, `evicted-${this.evictSeq++}`);
        try {
          fs.renameSync(this.file(key), gone);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.log.warn('eviction failed', { key, err });
          return;
        }
        fs.unlink(gone, (err) => {
          if (err && err.code !== 'ENOENT') this.log.warn('eviction unlink failed', { key, err });
        });
      },
    });
  }

  static async open(root: string, maxSize: number, log: ChannelLogger): Promise<FsBackend> {
    const b = new FsBackend(path.resolve(root), maxSize, log);
    await fsp.rm(b.tmpDir, { recursive: true, force: true });
    await fsp.mkdir(b.tmpDir, { recursive: true });
    await b.scan();
    return b;
  }

  private file(key: string): string {
    const slash = key.indexOf('/');
    const kind = key.slice(0, slash);
    const rest = key.slice(slash + 1);
    return kind === 'kv' ? path.join(this.root, 'kv', rest) : path.join(this.root, kind, rest.slice(0, 2), rest);
  }

  private async scan(): Promise<void> {
    const found: [string, number, number][] = [];
    const walk = async (dir: string, keyPrefix: string, flatten: boolean): Promise<void> => {
      let ents: fs.Dirent[];
      try {
        ents = await fsp.readdir(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of ents) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) await walk(p, flatten ? keyPrefix : `${keyPrefix}${e.name}/`, flatten);
        else if (e.isFile()) {
          const st = await fsp.stat(p).catch(() => undefined);
          if (st) found.push([`${keyPrefix}${e.name}`, st.size, st.mtimeMs]);
        }
      }
    };
    await walk(path.join(this.root, 'ac'), 'ac/', true);
    await walk(path.join(this.root, 'cas'), 'cas/', true);
    await walk(path.join(this.root, 'kv'), 'kv/', false);
    found.sort((a, b) => a[2] - b[2]);
    for (const [k, size, mtime] of found) this.lru.set(k, { size, touched: mtime });
  }

  async stat(key: string): Promise<number | undefined> {
    return this.lru.get(key)?.size;
  }

  private touch(key: string, v: { touched: number }): void {
    const now = Date.now();
    if (now - v.touched < TOUCH_EVERY_MS) return;
    v.touched = now;
    const t = new Date(now);
    fs.utimes(this.file(key), t, t, () => {});
  }

  async open(key: string): Promise<{ size: number; body: fs.ReadStream } | { size: number; data: Buffer } | undefined> {
    const v = this.lru.get(key);
    if (v === undefined) return undefined;
    this.touch(key, v);
    const hot = this.hot.get(key);
    if (hot) return { size: hot.length, data: hot };
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(this.file(key), 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
        this.lru.delete(key);
        return undefined;
      }
      throw e;
    }
    // The open descriptor keeps the bytes readable even if eviction unlinks the file meanwhile.
    const st = await fh.stat();
    if (st.size <= SMALL) {
      try {
        const data = await fh.readFile();
        // Only content-addressed objects: their bytes can never change under a key, so a
        // read that races with a PUT of the same key cannot put stale bytes in memory.
        if (data.length <= HOT_MAX && key.startsWith('cas/')) this.hot.set(key, data);
        return { size: data.length, data };
      } finally {
        await fh.close();
      }
    }
    return { size: st.size, body: fh.createReadStream({ highWaterMark: 1 << 20 }) };
  }

  async commit(key: string, tmpFile: string, size: number): Promise<void> {
    const dest = this.file(key);
    const parent = path.dirname(dest);
    if (!this.dirs.has(parent)) {
      await fsp.mkdir(parent, { recursive: true });
      this.dirs.add(parent);
    }
    this.hot.delete(key); // an /ac/ value being replaced: never serve the old bytes
    await fsp.rename(tmpFile, dest);
    this.lru.set(key, { size, touched: Date.now() });
  }

  usage() {
    return { items: this.lru.size, bytes: this.lru.calculatedSize, maxSize: this.maxSize, evictedItems: this.evictedItems, evictedBytes: this.evictedBytes };
  }

  async close(): Promise<void> {
    await fsp.rm(this.tmpDir, { recursive: true, force: true }).catch(() => {});
  }
}
