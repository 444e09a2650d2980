import type { StoreLike } from '../frontends/cc.js';
import { VriftError } from '../../ipc/errors.js';
import type { ChannelLogger } from '../log.js';
import { IdleWriter } from '../store/idle-writer.js';
import type { LocalStore } from '../store/local.js';
import { blobDigest, type RemoteCounters } from './counters.js';
import type { RemoteTier } from './types.js';
import { BUNDLE_BLOB_MAX, decodeBundle, encodeBundle, isBundle, type Attach, type Bundle } from './bundle.js';

export interface TieredOptions {
  local: LocalStore;
  remote: RemoteTier;
  /** Never upload (CI consumers, untrusted machines). */
  readOnly?: boolean;
  /** Uploads waiting or running; more are dropped (and counted), never waited for. */
  queueLimit?: number;
  /** Payload bytes held by waiting uploads. */
  queueBytes?: number;
  concurrency?: number;
  /** How long close() lets queued uploads finish. */
  drainMs?: number;
  log: ChannelLogger;
  /** Where remote answers wait for a pause in lookups (the daemon shares one with its WriteBehind). */
  later?: IdleWriter;
  /**
   * How long a lookup waits for the remote before it answers "miss" (the request goes on, and
   * its answer is kept for next time); while one is overdue, lookups do not wait at all.
   * 0: wait for the operation's own timeout.
   */
  waitMs?: number;
}

// `data` undefined: a large blob, streamed from the local store when its turn comes.
interface Upload { kind: 'blob' | 'entry'; key: string; data?: Buffer; size: number; after: Promise<unknown>[]; attach?: Attach; settle?: () => void }

export interface RemoteStats extends RemoteCounters {
  url: string;
  read_only: boolean;
  queued: number;
  queued_bytes: number;
  cooling_down: boolean;
  /** Entries and blobs that came attached to a remote answer (a hit without their own request). */
  attached: number;
  /** Lookups that stopped waiting for the remote after `waitMs` and compiled locally. */
  late: number;
}

// Local first, then the remote. Whatever the remote returns enters the local store through
// its normal verified put, and local puts are uploaded in the background: a bounded queue
// the build never waits for. The local store stays owned (and closed) by whoever made it.
export class TieredStore implements StoreLike {
  private readonly local: LocalStore;
  readonly remote: RemoteTier;
  private readonly o: Required<Omit<TieredOptions, 'local' | 'remote' | 'log' | 'later'>>;
  private readonly log: ChannelLogger;
  private readonly fetching = new Map<string, Promise<Buffer | undefined>>();
  private readonly streaming = new Map<string, Promise<boolean>>();
  private readonly waiting: Upload[] = [];
  private readonly queuedKeys = new Set<string>();
  // Blob uploads not finished yet: an entry is uploaded only after the blobs put before it,
  // so a remote reader never sees an entry whose object is still on its way.
  private readonly blobsInFlight = new Set<Promise<unknown>>();
  private running = 0;
  private bytesQueued = 0;
  private idle: (() => void)[] = [];
  private closing: Promise<void> | undefined;
  private dropped = 0;
  private skippedUploads = 0;
  // Bundles: attachments kept from remote answers.
  private attachedKept = 0;
  private overdue = 0;       // lookups that stopped waiting, their request still running
  private late = 0;          // lookups that stopped waiting (counted once each)
  private notWaited = 0;     // lookups that did not ask while another was overdue
  // Remote answers waiting to enter the local store, readable meanwhile.
  private readonly later: IdleWriter;
  // The check at start while lookups still wait for it (see checkRemote).
  private checking: { p: Promise<void> } | undefined;

  constructor(opts: TieredOptions) {
    this.local = opts.local;
    this.remote = opts.remote;
    this.log = opts.log;
    this.later = opts.later ?? new IdleWriter(opts.log);
    this.o = { readOnly: false, queueLimit: 4096, queueBytes: 256 * 2 ** 20, concurrency: 4, drainMs: 10_000, waitMs: 0, ...stripUndefined(opts) };
  }

  /**
   * Asks the remote once, in the background: one that hangs is cooling down before the
   * build's lookups reach it, and lookups meanwhile wait for it no longer than `waitMs`
   * (after that they don't wait at all, as behind any overdue request).
   */
  checkRemote(): Promise<void> {
    const p = this.remote.check().catch(() => {});
    if (this.o.waitMs > 0) {
      const checking = { p: this.waitAtMost(p.then(() => undefined)).then(() => {}) };
      this.checking = checking;
      void checking.p.then(() => {
        if (this.checking === checking) this.checking = undefined;
      });
    }
    return p;
  }

  getBlob(digest: string): Promise<Buffer | undefined> {
    const k = 'b' + digest;
    return this.read(k, async () => this.later.get(k) ?? this.local.getBlob(digest), () => this.remote.getBlob(digest), (d) => this.local.putBlob(d, digest));
  }

  getEntry(key: string): Promise<Buffer | undefined> {
    const k = 'e' + key;
    return this.read(k, async () => this.later.get(k) ?? this.local.getEntry(key), async () => {
      const d = await this.remote.getEntry(key);
      return d && isBundle(d) ? this.unbundle(key, d) : d;
    }, (d) => this.local.putEntry(key, d));
  }

  async hasBlob(digest: string): Promise<boolean> {
    return (await this.local.hasBlob(digest)) || (await this.remote.hasBlob(digest));
  }

  async putBlob(data: Buffer, digest?: string): Promise<string> {
    const d = await this.local.putBlob(data, digest);
    this.enqueue({ kind: 'blob', key: d, data, size: data.length, after: [] });
    return d;
  }

  async putBlobFile(file: string, o: { onChunk?: (c: Buffer) => void } = {}): Promise<{ digest: string; size: number }> {
    const r = await this.local.putBlobFile(file, o);
    this.enqueue({ kind: 'blob', key: r.digest, size: r.size, after: [] });
    return r;
  }

  // Large blobs: remote → local store → dest, one chunk at a time.
  async copyBlobTo(digest: string, dest: string, mode?: number): Promise<number | undefined> {
    const n = await this.local.copyBlobTo(digest, dest, mode);
    if (n !== undefined || this.closing) return n;
    let p = this.streaming.get(digest);
    if (!p) {
      p = (async () => {
        const src = await this.remote.getBlobStream(digest);
        if (!src) return false;
        try {
          await this.local.putBlobStream(src, { digest });
          return true;
        } catch (e) {
          this.log.warn('remote object not kept locally', { key: digest, err: e });
          return false;
        }
      })().finally(() => this.streaming.delete(digest));
      this.streaming.set(digest, p);
    }
    return (await p) ? this.local.copyBlobTo(digest, dest, mode) : undefined;
  }

  async putEntry(key: string, value: Buffer, attach?: Attach): Promise<void> {
    await this.local.putEntry(key, value);
    this.enqueue({ kind: 'entry', key, data: value, size: value.length, after: [...this.blobsInFlight], attach });
  }

  stats(): RemoteStats {
    const c = this.remote.counters();
    return {
      url: this.remote.url, read_only: this.o.readOnly, ...c,
      skipped: c.skipped + this.notWaited, late: this.late,
      upload_dropped: this.dropped, upload_skipped: this.skippedUploads, attached: this.attachedKept,
      queued: this.waiting.length + this.running, queued_bytes: this.bytesQueued, cooling_down: this.remote.coolingDown(),
    };
  }

  /** Writes the remote answers still waiting for a pause in lookups into the local store now. */
  settle(): Promise<void> {
    return this.later.settle();
  }

  /** Resolves when no upload is waiting or running. */
  flush(): Promise<void> {
    if (this.waiting.length === 0 && this.running === 0) return Promise.resolve();
    return new Promise((r) => this.idle.push(r));
  }

  /** Lets queued uploads finish (up to drainMs), then closes the remote tier. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        this.flush().then(() => false),
        new Promise<boolean>((r) => (timer = setTimeout(() => r(true), this.o.drainMs))),
      ]);
      clearTimeout(timer);
      if (timedOut) this.log.warn('uploads still queued at close, dropped', { queued: this.waiting.length + this.running });
      this.waiting.length = 0;
      await this.later.settle();
      await this.remote.close();
    })();
    return this.closing;
  }

  // ---- internals ----

  // Concurrent lookups of one key share one remote request.
  private async read(k: string, local: () => Promise<Buffer | undefined>, remote: () => Promise<Buffer | undefined>, keep: (d: Buffer) => Promise<unknown>): Promise<Buffer | undefined> {
    const hit = await local();
    if (hit || this.closing) return hit;
    if (this.checking) await this.checking.p; // the check at start, waitMs at most
    let p = this.fetching.get(k);
    if (!p) {
      if (this.overdue > 0) {
        this.notWaited++; // a remote that is slow right now: don't queue more behind it
        return undefined;
      }
      p = (async () => {
        const data = await remote(); // verified by the tier (blobs) or opaque (entries)
        if (data) this.keepLater(k, data, keep);
        return data;
      })().finally(() => this.fetching.delete(k));
      this.fetching.set(k, p);
    }
    return this.o.waitMs > 0 ? this.waitAtMost(p) : p;
  }

  // The answer, or undefined after waitMs (the request goes on; what it brings is kept).
  private waitAtMost(p: Promise<Buffer | undefined>): Promise<Buffer | undefined> {
    let timer: NodeJS.Timeout | undefined;
    const giveUp = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => {
        this.late++;
        this.overdue++;
        void p.catch(() => {}).finally(() => this.overdue--);
        resolve(undefined);
      }, this.o.waitMs);
    });
    return Promise.race([p.finally(() => clearTimeout(timer)), giveUp]);
  }

  // Remote answers enter the local store through its normal puts (which verify blobs
  // again) when lookups pause: see IdleWriter.
  private keepLater(k: string, data: Buffer, put: (data: Buffer) => Promise<unknown>): void {
    if (!this.later.has(k)) this.later.add(k, data, put);
  }

  private enqueue(u: Upload): void {
    if (this.o.readOnly || this.closing) return;
    const id = u.kind[0] + u.key;
    if (this.queuedKeys.has(id)) return;
    if (this.remote.coolingDown()) {
      this.dropped++;
      return;
    }
    if (this.waiting.length + this.running >= this.o.queueLimit || this.bytesQueued + (u.data?.length ?? 0) > this.o.queueBytes) {
      this.dropped++;
      return;
    }
    this.queuedKeys.add(id);
    this.bytesQueued += u.data?.length ?? 0;
    if (u.kind === 'blob') {
      const p = new Promise<void>((r) => (u.settle = r));
      this.blobsInFlight.add(p);
      void p.then(() => this.blobsInFlight.delete(p));
    }
    this.waiting.push(u);
    this.pump();
  }

  private pump(): void {
    while (this.running < this.o.concurrency && this.waiting.length > 0) {
      const u = this.waiting.shift()!;
      this.running++;
      void this.upload(u).finally(() => {
        this.running--;
        this.bytesQueued -= u.data?.length ?? 0;
        this.queuedKeys.delete(u.kind[0] + u.key);
        u.settle?.();
        if (this.waiting.length === 0 && this.running === 0) for (const r of this.idle.splice(0)) r();
        this.pump();
      });
    }
  }

  private async upload(u: Upload): Promise<void> {
    try {
      if (u.kind === 'blob') {
        if (await this.remote.hasBlob(u.key)) {
          this.skippedUploads++; // HEAD said it is there already
          return;
        }
        if (this.remote.coolingDown()) return;
        if (u.data) await this.remote.putBlob(u.data, u.key);
        else {
          await this.remote.putBlobStream(u.key, u.size, async () => {
            const r = await this.local.openBlob(u.key);
            if (!r) throw new VriftError('ESTORE', 'blob left the local store before its upload', { fields: { digest: u.key } });
            return r.stream;
          });
        }
      } else {
        await Promise.allSettled(u.after);
        if (this.remote.coolingDown()) return;
        await this.remote.putEntry(u.key, u.attach ? await this.bundle(u.data!, u.attach) : u.data!);
      }
    } catch (e) {
      this.log.debug('upload failed', { kind: u.kind, key: u.key, err: e });
    }
  }

  // ---- bundles (see bundle.ts) ----

  // The attachments are read from the local store when the upload's turn comes; one gone
  // meanwhile (evicted) is left out, and with nothing left the plain value goes.
  private async bundle(value: Buffer, attach: Attach): Promise<Buffer> {
    const b: Bundle = { value, entries: [], blobs: [] };
    for (const k of attach.entries ?? []) {
      const e = await this.local.getEntry(k);
      if (e) b.entries.push([k, e]);
    }
    for (const d of attach.blobs ?? []) {
      const data = await this.local.getBlob(d);
      if (data && data.length <= BUNDLE_BLOB_MAX) b.blobs.push([d, data]);
    }
    return b.entries.length + b.blobs.length > 0 ? encodeBundle(b) : value;
  }

  // A bundle from the remote: every blob must match its digest, or the whole answer is
  // refused (a miss, counted as an integrity error). The attachments enter the local store
  // like any remote answer (keepLater): the reads that follow (the result, the object) are
  // answered from memory until they are written.
  private unbundle(key: string, data: Buffer): Buffer | undefined {
    let b: Bundle;
    try {
      b = decodeBundle(data);
      for (const [d, blob] of b.blobs) blobDigest(blob, d);
    } catch (e) {
      this.remote.rejected(key, e as Error);
      return undefined;
    }
    for (const [d, blob] of b.blobs) this.keepLater('b' + d, blob, () => this.local.putBlob(blob, d));
    for (const [k, e] of b.entries) this.keepLater('e' + k, e, async () => (await this.local.hasEntry(k)) || this.local.putEntry(k, e));
    this.attachedKept += b.entries.length + b.blobs.length;
    return b.value;
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([k, v]) => v !== undefined && k !== 'local' && k !== 'remote' && k !== 'log' && k !== 'later')) as Partial<T>;
}
