import { statSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { VriftError } from '../../ipc/errors.js';
import { digestHex } from '../hash.js';
import type { Readable } from 'node:stream';
import { BLOB_HEADER_SIZE, encodeBlob } from './blob-file.js';
import { blobToFile, readBlobStream, writeBlobTemp, type StreamedBlob } from './blob-stream.js';
import { encodeEntry } from './entry-file.js';
import { checkHex, ensureLayout, hexOf, kindOf, relPath, TMP_DIR } from './layout.js';
import { LruIndex, type Item } from './lru-index.js';
import { nonNegative, resolveOptions, type ResolvedOptions } from './options.js';
import { readVerified, removeCorrupt } from './read.js';
import { removeFiles, removeStaleTmp } from './remove.js';
import { isENOENT, mapLimit, scanStore } from './scan.js';
import { TouchBatcher } from './touches.js';
import { VerifiedReads } from './verified-reads.js';
import type { Attach, StoreLike } from './contract.js';
import type { CleanOptions, CleanResult, Counters, LocalStoreOptions, Usage, VerifyResult } from './types.js';
import { SpareFiles, writeAtomic } from './write.js';

const UNOPENABLE: ReadonlySet<string> = new Set(['EACCES', 'EPERM', 'ELOOP', 'ENXIO', 'ENOTDIR']);

function errCode(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}

// The local tier. Several processes (daemon, CLI) may use one store at once: every file
// operation tolerates files appearing and vanishing, and the in-memory accounting is
// only a cache of the disk that `rescan()` rebuilds.
// How stale a file's recorded last use may get before a hit writes it again.
const TOUCH_GRANULARITY_MS = 10 * 60_000;
// Verified content kept in memory: files up to this size (entries, most objects).
const VERIFIED_MAX_ITEM = 256 * 1024;

/** How a stream enters the store: the digest it must have, its expected size, a tap on every chunk. */
type StreamIn = { digest?: string; sizeHint?: number; onChunk?: (c: Buffer) => void };

// Files markUnused remembers before their write: more than warm runs store between two pauses.
const UNUSED_SOON_MAX = 10_000;
const UNUSED_STAMP_MS = 60_000;

export class LocalStore implements StoreLike {
  readonly name = 'local';
  readonly root: string;
  private readonly opts: Readonly<ResolvedOptions>;
  private readonly index = new LruIndex();
  private readonly inflightBlobs = new Map<string, Promise<void>>();
  private readonly ops = new Set<Promise<unknown>>();
  private readonly touches: TouchBatcher;
  private readonly verified: VerifiedReads | undefined;
  private limitsRun: Promise<void> | undefined;
  private scanRun: Promise<void> | undefined;
  // Changes made while a scan is listing the disk, replayed onto its result.
  private scanLog: { written: Map<string, Item>; deleted: Set<string> } | undefined;
  private opened: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  private readonly spares: SpareFiles;
  private otherSpares: ((file: string) => string | undefined) | undefined;
  // Files markUnused named before they were written (live mode marks a warm run's as it stores them).
  private readonly unusedSoon = new Set<string>();
  private unusedStamp = { at: -Infinity, ms: 0 }; // stampFor's answer, and when it was worked out
  private readonly c: Counters = { corrupt: 0, evictedFiles: 0, evictedBytes: 0, writes: 0, writeBytes: 0, reads: 0, readBytes: 0 };

  constructor(options: LocalStoreOptions) {
    this.opts = resolveOptions(options);
    this.root = this.opts.root;
    this.touches = new TouchBatcher(this.root, this.opts.touchDelayMs, this.opts.log);
    this.verified = this.opts.verifiedCacheBytes > 0 ? new VerifiedReads(this.opts.verifiedCacheBytes, VERIFIED_MAX_ITEM) : undefined;
    this.spares = new SpareFiles(path.join(this.root, TMP_DIR));
  }

  /**
   * Writes take their temp files from `take` first (the daemon's pool of spares made while
   * it idles, frontends/materialize.ts), then from the store's own small pool: a cold build
   * writes three files per compile, and creating each is the slow step (write.ts).
   */
  takeSparesFrom(take: (file: string) => string | undefined): void {
    this.otherSpares = take;
  }

  /** Creates the layout if needed, indexes what is on disk and applies the limits. */
  open(): Promise<void> {
    this.opened ??= (async () => {
      try {
        await ensureLayout(this.root);
      } catch (e) {
        throw new VriftError('ESTORE', `cannot create store at ${this.root}: ${(e as Error).message}`, { cause: e, fields: { root: this.root } });
      }
      await this.rescanShared();
      await removeStaleTmp(this.root, this.opts.now(), this.opts.log);
      await this.enforceLimits();
    })();
    return this.opened;
  }

  /**
   * What a warm run stored (live mode) and no build used yet: written stamped older than the
   * oldest use, so that it is evicted before everything else, here and by other processes'
   * scans (`vrift clean`), until a read uses it. Only files not in the store yet are marked:
   * one already there may be a build's. `used`: a build used it (from memory, before it was
   * written here): not marked after all.
   */
  markUnused(o: { entries?: string[]; blobs?: string[] }, used = false): void {
    const rels = [...(o.entries ?? []).map((k) => relPath('ac', checkHex('key', k))), ...(o.blobs ?? []).map((d) => relPath('cas', checkHex('digest', d)))];
    for (const rel of rels) {
      if (used) {
        this.unusedSoon.delete(rel);
        if (this.index.isUnused(rel)) this.noteUse(rel, this.index.get(rel)?.size ?? 0);
      } else if (this.index.get(rel) === undefined) {
        if (this.unusedSoon.size >= UNUSED_SOON_MAX) this.unusedSoon.delete(this.unusedSoon.values().next().value!);
        this.unusedSoon.add(rel);
      }
    }
  }

  // A new file's stamp: now, or, marked unused, older than every file's last use, in memory
  // and as stamped on disk (what other processes' scans go by; a use within minutes of the
  // stamp is not written there). Looked for again at most once a minute: files only get
  // newer meanwhile, so an older answer still comes first.
  private stampFor(rel: string): number {
    const now = this.opts.now();
    if (!this.unusedSoon.has(rel)) return now;
    if (now - this.unusedStamp.at > UNUSED_STAMP_MS) {
      let min = now;
      for (const [, it] of this.index.oldest()) min = Math.min(min, it.lastUse, it.recorded ?? it.lastUse);
      this.unusedStamp = { at: now, ms: min - 1 };
    }
    // Never so old that max_age takes it for unused that long: first for the size limit only.
    // (A minute's margin: the stamp is looked for again at most once a minute.)
    const { maxAge } = this.opts;
    return maxAge > 0 ? Math.min(now, Math.max(this.unusedStamp.ms, now - maxAge + 2 * UNUSED_STAMP_MS)) : this.unusedStamp.ms;
  }

  // ---- the cache contract (contract.ts) ----

  getBlob(digest: string): Promise<Buffer | undefined> {
    return this.op(async () => this.readRel(relPath('cas', checkHex('digest', digest))));
  }

  getEntry(key: string): Promise<Buffer | undefined> {
    return this.op(async () => this.readRel(relPath('ac', checkHex('key', key))));
  }

  /** Advisory: true if a blob file is present; only `getBlob` verifies it. */
  hasBlob(digest: string): Promise<boolean> {
    return this.op(async () => {
      const rel = relPath('cas', checkHex('digest', digest));
      return this.index.get(rel) !== undefined || (await this.adoptIfPresent(rel));
    });
  }

  /** Advisory, like hasBlob. */
  hasEntry(key: string): Promise<boolean> {
    return this.op(async () => {
      const rel = relPath('ac', checkHex('key', key));
      return this.index.get(rel) !== undefined || (await this.adoptIfPresent(rel));
    });
  }

  putBlob(data: Buffer, digest?: string): Promise<string> {
    return this.op(async () => {
      if (digest !== undefined) checkHex('digest', digest);
      const actual = digestHex(data);
      // Whatever a peer or remote sends is checked here, before it can enter the store.
      if (digest !== undefined && digest !== actual) {
        throw new VriftError('EINTEGRITY', 'blob content does not match its digest', { fields: { expected: digest, actual } });
      }
      const rel = relPath('cas', actual);
      let p = this.inflightBlobs.get(rel);
      if (!p) {
        p = this.writeBlobOnce(rel, data).finally(() => this.inflightBlobs.delete(rel));
        this.inflightBlobs.set(rel, p);
      }
      await p;
      return actual;
    });
  }

  /**
   * Streams `src` into the store, hashed and compressed chunk by chunk (large objects never
   * sit in memory whole). A given `digest` must match (EINTEGRITY otherwise, nothing stored).
   * The contract's form, (digest, size, open), reads what `open()` gives once.
   */
  putBlobStream(digest: string, size: number, open: () => Promise<Readable>): Promise<void>;
  putBlobStream(src: Readable, o?: StreamIn): Promise<{ digest: string; size: number }>;
  putBlobStream(a: string | Readable, b?: number | StreamIn, open?: () => Promise<Readable>): Promise<unknown> {
    if (typeof a === 'string') return (async () => void (await this.putStream(await open!(), { digest: a, sizeHint: b as number })))();
    return this.putStream(a, (b ?? {}) as StreamIn);
  }

  private putStream(src: Readable, o: StreamIn): Promise<{ digest: string; size: number }> {
    return this.op(async () => {
      if (o.digest !== undefined) checkHex('digest', o.digest);
      let w: StreamedBlob;
      try {
        w = await writeBlobTemp(this.root, src, { level: this.opts.compressionLevel, sizeHint: o.sizeHint, expected: o.digest, onChunk: o.onChunk });
      } catch (e) {
        src.destroy();
        if (e instanceof VriftError) throw e;
        this.opts.log.warn('store write failed', { err: e });
        throw new VriftError('ESTORE', `store write failed: ${(e as Error).message}`, { cause: e, fields: { errno: errCode(e) } });
      }
      const rel = relPath('cas', w.digest);
      if (this.index.get(rel) !== undefined || (await this.adoptIfPresent(rel))) {
        await fs.rm(w.tmp, { force: true });
        this.noteUse(rel, this.index.get(rel)?.size ?? 0);
        return { digest: w.digest, size: w.size };
      }
      const t = this.stampFor(rel);
      try {
        await fs.utimes(w.tmp, t / 1000, t / 1000);
        await fs.mkdir(path.dirname(path.join(this.root, rel)), { recursive: true });
        this.opts.io.rename(w.tmp, path.join(this.root, rel));
      } catch (e) {
        await fs.rm(w.tmp, { force: true }).catch(() => {});
        this.opts.log.warn('store write failed', { path: rel, err: e });
        throw new VriftError('ESTORE', `store write failed: ${(e as Error).message}`, { cause: e, fields: { path: rel, errno: errCode(e) } });
      }
      this.touches.drop(rel);
      this.remember(rel, { size: w.fileBytes, lastUse: t, recorded: t });
      this.c.writes++;
      this.c.writeBytes += w.size;
      await this.enforceLimits();
      return { digest: w.digest, size: w.size };
    });
  }

  /** Streams a file into the store (see putBlobStream). */
  async putBlobFile(file: string, o: { digest?: string; onChunk?: (c: Buffer) => void } = {}): Promise<{ digest: string; size: number }> {
    const fh = await fs.open(file, 'r');
    let src: Readable | undefined;
    try {
      const size = (await fh.stat()).size;
      src = fh.createReadStream({ highWaterMark: 1 << 20 });
      return await this.putBlobStream(src, { ...o, sizeHint: size });
    } finally {
      if (!src) await fh.close();
      else src.destroy(); // closes the file (a no-op once it was read to the end)
    }
  }

  /**
   * Writes a blob's verified content to `dest` (a temp file renamed over it), streamed.
   * Its size, or undefined on a miss; a corrupt blob is removed and `dest` left alone.
   */
  copyBlobTo(digest: string, dest: string, mode = 0o644): Promise<number | undefined> {
    return this.op(async () => {
      const rel = relPath('cas', checkHex('digest', digest));
      const file = path.join(this.root, rel);
      try {
        const n = await blobToFile(file, digest, dest, mode);
        if (n === undefined) {
          this.forget(rel);
          return undefined;
        }
        this.noteUse(rel, this.index.get(rel)?.size ?? 0);
        this.c.reads++;
        this.c.readBytes += n;
        return n;
      } catch (e) {
        if (e instanceof VriftError && e.code === 'EINTEGRITY') {
          const size = await fs.stat(file).then(
            (st) => st.size,
            () => 0,
          );
          await this.dropCorrupt(rel, size, e.message);
          return undefined;
        }
        throw e; // the destination could not be written: the caller decides
      }
    });
  }

  /** The contract's streamed read: openBlob's stream. */
  async getBlobStream(digest: string): Promise<Readable | undefined> {
    return (await this.openBlob(digest))?.stream;
  }

  /** A blob's content as a stream that fails at its end if the file is corrupt; undefined on a miss. */
  openBlob(digest: string): Promise<{ size: number; stream: Readable } | undefined> {
    return this.op(async () => {
      const rel = relPath('cas', checkHex('digest', digest));
      try {
        return await readBlobStream(path.join(this.root, rel), digest);
      } catch (e) {
        this.opts.log.warn('store read failed, treating as a miss', { path: rel, err: e });
        return undefined;
      }
    });
  }

  /**
   * A blob to send on: whole (read and verified as getBlob reads it) when its file is at
   * most `wholeMax` bytes, else openBlob's stream. Undefined on a miss.
   */
  async readBlob(
    digest: string,
    wholeMax: number,
  ): Promise<{ size: number; data: Buffer; stream?: undefined } | { size: number; stream: Readable; data?: undefined } | undefined> {
    const rel = relPath('cas', checkHex('digest', digest));
    let size = Number.POSITIVE_INFINITY; // a stat that fails: openBlob says why
    try {
      const st = statSync(path.join(this.root, rel), { throwIfNoEntry: false });
      if (st === undefined) return undefined;
      size = st.size;
    } catch {}
    if (size <= wholeMax) {
      const data = await this.getBlob(digest);
      return data && { size: data.length, data };
    }
    const o = await this.openBlob(digest);
    return o && { size: o.size, stream: o.stream };
  }

  /** `attach` is for tiers that upload; the local store has every object already. */
  putEntry(key: string, value: Buffer, _attach?: Attach): Promise<void> {
    return this.op(async () => {
      const rel = relPath('ac', checkHex('key', key));
      await this.write(rel, encodeEntry(key, value), value.length);
    });
  }

  /** Waits for running operations, writes back pending last-use times, stops timers. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.touches.stop();
      await this.opened?.catch(() => {});
      while (this.ops.size > 0) await Promise.allSettled([...this.ops]);
      await this.spares.close();
      await this.touches.close();
      this.verified?.clear();
    })();
    return this.closing;
  }

  // ---- maintenance (CLI: stats, clean, verify) ----

  usage(): Usage {
    return { blobs: this.index.blobs, entries: this.index.entries, bytes: this.index.bytes, files: this.index.files };
  }

  counters(): Counters {
    return { ...this.c };
  }

  /** Rebuilds the accounting from disk; sees other processes' writes and deletions. */
  rescan(): Promise<void> {
    return this.op(() => this.rescanShared());
  }

  /** No options: apply the configured limits. Otherwise remove what the options select. */
  clean(o: CleanOptions = {}): Promise<CleanResult> {
    return this.op(async () => {
      const maxSize = o.maxSize === undefined ? undefined : nonNegative('maxSize', o.maxSize);
      const olderThan = o.olderThan === undefined ? undefined : nonNegative('olderThan', o.olderThan);
      await this.touches.flush();
      await this.rescanShared();
      await removeStaleTmp(this.root, this.opts.now(), this.opts.log);
      if (o.all) return this.evict({ all: true }, 'clean');
      if (maxSize === undefined && olderThan === undefined) return this.evictToLimits();
      return this.evict({ target: maxSize, cutoff: olderThan === undefined ? undefined : this.opts.now() - olderThan }, 'clean');
    });
  }

  /** Re-reads every blob and entry; corrupt ones are removed. Does not count as use. */
  verify(onProgress?: (done: number, total: number) => void): Promise<VerifyResult> {
    return this.op(async () => {
      await this.touches.flush();
      await this.rescanShared();
      const rels = [...this.index.oldest()].map(([rel]) => rel);
      const r: VerifyResult = { checked: 0, corrupt: 0, removed: 0, bytes: 0, removedBytes: 0 };
      let done = 0;
      await mapLimit(rels, 4, async (rel) => {
        const res = await readVerified(this.root, rel);
        if (res.status === 'hit' || res.status === 'corrupt') {
          r.checked++;
          r.bytes += res.size;
        }
        if (res.status === 'corrupt') {
          r.corrupt++;
          if (await this.dropCorrupt(rel, res.size, res.reason)) {
            r.removed++;
            r.removedBytes += res.size;
          }
        } else if (res.status === 'miss') {
          this.forget(rel);
        } else if (res.status === 'error') {
          this.opts.log.warn('verify could not read a file', { path: rel, err: res.error });
        }
        done++;
        try {
          onProgress?.(done, rels.length);
        } catch (e) {
          this.opts.log.warn('verify progress callback threw', { err: e });
        }
      });
      return r;
    });
  }

  // ---- internals ----

  private op<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closing) return Promise.reject(new VriftError('ESTORE', 'store is closed', { fields: { root: this.root } }));
    if (!this.opened) return Promise.reject(new VriftError('ESTORE', 'store used before open()', { fields: { root: this.root } }));
    const p = this.opened.then(fn);
    this.ops.add(p);
    const done = (): void => void this.ops.delete(p);
    p.then(done, done);
    return p;
  }

  private async readRel(rel: string): Promise<Buffer | undefined> {
    const r = await readVerified(this.root, rel, this.verified);
    switch (r.status) {
      case 'hit':
        this.noteUse(rel, r.size);
        this.c.reads++;
        this.c.readBytes += r.data.length;
        return r.data;
      case 'miss':
        this.forget(rel);
        return undefined;
      case 'corrupt':
        await this.dropCorrupt(rel, r.size, r.reason);
        return undefined;
      case 'error': {
        this.opts.log.warn('store read failed, treating as a miss', { path: rel, err: r.error });
        // A file of its own store this user cannot open (its mode, a symlink loop, a device)
        // never will be: dropped like a corrupt one, so the next put writes a copy it can read
        // (a put skips a file that is there). Anything else (out of descriptors) may pass.
        const code = errCode(r.error);
        if (code !== undefined && UNOPENABLE.has(code)) {
          const size = await fs.lstat(path.join(this.root, rel)).then(
            (st) => st.size,
            () => 0,
          );
          await this.dropCorrupt(rel, size, `cannot be opened (${code})`);
        }
        return undefined;
      }
    }
  }

  private async dropCorrupt(rel: string, sizeRead: number, reason: string): Promise<boolean> {
    this.c.corrupt++;
    this.opts.log.error('corrupt store file removed', {
      path: rel,
      reason,
      err: new VriftError('EINTEGRITY', `corrupt store file ${rel}: ${reason}`),
    });
    try {
      const removed = await removeCorrupt(this.root, rel, sizeRead);
      if (removed) this.forget(rel);
      return removed;
    } catch (e) {
      this.opts.log.warn('could not remove corrupt store file', { path: rel, err: e });
      return false;
    }
  }

  /** Indexes a file another process wrote; true if one is there. */
  private async adoptIfPresent(rel: string): Promise<boolean> {
    try {
      const st = await fs.stat(path.join(this.root, rel));
      if (!st.isFile() || st.size < BLOB_HEADER_SIZE) return false;
      this.remember(rel, { size: st.size, lastUse: Math.max(st.mtimeMs, this.index.get(rel)?.lastUse ?? 0), recorded: st.mtimeMs });
      return true;
    } catch (e) {
      if (!isENOENT(e)) this.opts.log.warn('store stat failed', { path: rel, err: e });
      return false;
    }
  }

  private async writeBlobOnce(rel: string, data: Buffer): Promise<void> {
    // Content-addressed: an existing file already holds these bytes (a bad one is
    // caught and removed by the next read), so only its last use changes.
    if (this.index.get(rel) !== undefined || (await this.adoptIfPresent(rel))) {
      this.noteUse(rel, this.index.get(rel)?.size ?? 0);
      return;
    }
    await this.write(rel, encodeBlob(data, this.opts.compressionLevel), data.length);
  }

  private async write(rel: string, file: Buffer, payloadBytes: number): Promise<void> {
    const t = this.stampFor(rel);
    try {
      writeAtomic(this.root, rel, file, t, this.opts.io, this.otherSpares?.(path.join(this.root, rel)) ?? this.spares.take());
    } catch (e) {
      this.opts.log.warn('store write failed', { path: rel, err: e });
      throw new VriftError('ESTORE', `store write failed: ${(e as Error).message}`, { cause: e, fields: { path: rel, errno: errCode(e) } });
    }
    this.touches.drop(rel);
    this.remember(rel, { size: file.length, lastUse: t, recorded: t });
    this.c.writes++;
    this.c.writeBytes += payloadBytes;
    await this.enforceLimits();
  }

  private remember(rel: string, item: Item): void {
    this.verified?.delete(rel);
    if (this.unusedSoon.delete(rel)) this.index.setUnused(rel, item);
    else this.index.set(rel, item);
    this.scanLog?.written.set(rel, item);
    this.scanLog?.deleted.delete(rel);
  }

  private forget(rel: string): Item | undefined {
    this.verified?.delete(rel);
    this.touches.drop(rel);
    this.scanLog?.written.delete(rel);
    this.scanLog?.deleted.add(rel);
    return this.index.delete(rel);
  }

  private noteUse(rel: string, size: number): void {
    const t = this.opts.now();
    const wasUnused = this.index.isUnused(rel);
    const it = this.index.touch(rel, t);
    if (!it) this.remember(rel, { size, lastUse: t });
    // The file's mtime ranks it for other processes' eviction scans; a use within minutes
    // of the last one written there changes nothing that matters, but the first use of one
    // stamped unused does (it is no longer to go first).
    if (!it || wasUnused || t - (it.recorded ?? 0) >= TOUCH_GRANULARITY_MS) {
      if (it) it.recorded = t;
      this.touches.add(rel, t);
    }
  }

  // Internal callers skip op(): they already run inside one, and close() waits for them.
  private rescanShared(): Promise<void> {
    return (this.scanRun ??= this.doRescan().finally(() => (this.scanRun = undefined)));
  }

  private async doRescan(): Promise<void> {
    const log = (this.scanLog = { written: new Map<string, Item>(), deleted: new Set<string>() });
    this.unusedStamp = { at: -Infinity, ms: 0 }; // files another process wrote may be older
    try {
      const found = await scanStore(this.root);
      for (const [rel, it] of found) {
        // Our own unflushed uses are newer than the mtime on disk.
        it.lastUse = Math.max(it.lastUse, this.index.get(rel)?.lastUse ?? 0);
      }
      this.index.reset(found.filter(([rel]) => !log.deleted.has(rel)));
      for (const [rel, it] of log.written) this.index.set(rel, it);
    } catch (e) {
      throw new VriftError('ESTORE', `store scan failed: ${(e as Error).message}`, { cause: e, fields: { root: this.root } });
    } finally {
      this.scanLog = undefined;
    }
  }

  private overLimits(): boolean {
    const { maxSize, maxAge, now } = this.opts;
    if (maxSize > 0 && this.index.bytes > maxSize) return true;
    if (maxAge > 0) {
      const earliest = this.index.earliestUse();
      if (earliest !== undefined && earliest < now() - maxAge) return true;
    }
    return false;
  }

  // One eviction at a time; a put that lands during one re-checks afterwards.
  private async enforceLimits(): Promise<void> {
    while (this.overLimits()) {
      if (this.limitsRun) {
        await this.limitsRun;
        continue;
      }
      this.limitsRun = this.evictToLimits()
        .then(
          () => undefined,
          (e) => this.opts.log.warn('eviction failed', { err: e }),
        )
        .finally(() => (this.limitsRun = undefined));
      await this.limitsRun;
      return;
    }
  }

  // Like ccache, trim well below the limit so the next few puts do not each evict.
  private evictToLimits(): Promise<CleanResult> {
    const { maxSize, maxAge, now } = this.opts;
    const target = maxSize > 0 && this.index.bytes > maxSize ? Math.floor(maxSize * 0.9) : undefined;
    return this.evict({ target, cutoff: maxAge > 0 ? now() - maxAge : undefined }, 'limits');
  }

  private async evict(sel: { target?: number; cutoff?: number; all?: boolean }, trigger: string): Promise<CleanResult> {
    const pins = this.opts.pinned();
    const victims = this.index.victims(sel, pins.size === 0 ? undefined : (rel) => kindOf(rel) === 'cas' && pins.has(hexOf(rel)));
    for (const [rel] of victims) this.forget(rel);
    const r = await removeFiles(this.root, victims, this.opts.log);
    this.c.evictedFiles += r.removedFiles;
    this.c.evictedBytes += r.removedBytes;
    if (r.removedFiles > 0) this.opts.log.info('evicted', { files: r.removedFiles, bytes: r.removedBytes, trigger });
    return r;
  }
}
