import { Readable } from 'node:stream';
import type { Attach, StoreLike } from '../store/contract.js';
import { IdleWriter } from '../store/idle-writer.js';
import type { LocalStore } from '../store/local.js';
import type { ChannelLogger } from '../log.js';
import type { RemoteCounters } from './counters.js';
import { RemoteReads } from './remote-reads.js';
import type { EntryGate } from './entry-gate.js';
import type { RemoteTier } from './types.js';
import { UploadQueue } from './upload-queue.js';

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
  /** How often an upload waiting for a remote that switched off looks whether it is back. */
  uploadRecheckMs?: number;
  /** An upload still waiting for the remote this long after it was offered is dropped (`upload_expired`). */
  uploadMaxHeldMs?: number;
  /** Told each time uploads held for a remote that switched off have looked whether it is back (tests wait for it). */
  uploadsLooked?: () => void;
  /** The clock uploadMaxHeldMs is measured by. */
  now?: () => number;
  log: ChannelLogger;
  /** Where remote answers wait for a pause in lookups (the daemon shares one with its WriteBehind). */
  later?: IdleWriter;
  /**
   * How long a lookup waits for the remote before it answers "miss" (the request goes on, and
   * its answer is kept for next time); while one is overdue, lookups do not wait at all.
   * 0: wait for the operation's own timeout.
   */
  waitMs?: number;
  /** Group uploaded bundles into packs, and fetch the pack a remote bundle names (bundle.ts); on by default. */
  packs?: boolean;
  /** A pack is sealed after this long without a new member (and at flush or close)... */
  packQuietMs?: number;
  /** ... or once its first member has waited this long. */
  packMaxAgeMs?: number;
  /** True while compiles run (the daemon's pending misses): their results join the open pack (up to packMaxAgeMs). */
  busy?: () => boolean;
  /**
   * Pack members not asked for yet are held up to this many bytes (the oldest dropped first),
   * and all dropped this long after the last pack arrived (a build that asks for them does so
   * right away).
   */
  prefetchMaxBytes?: number;
  prefetchKeepMs?: number;
  /**
   * Checks every entry from the remote (answers, attachments, pack members) before it is used
   * or kept: one refused is a miss (`remote_require_signatures`, trust/entry-signature.ts).
   */
  gate?: EntryGate;
}

const lastError = (h: Record<string, unknown>) =>
  typeof h.last_error === 'string' ? { last_error: h.last_error, last_error_at: String(h.last_error_at) } : {};

export interface RemoteStats extends RemoteCounters {
  /** The last failed request and why (`PUT cas/…: remote answered PUT with HTTP 401`), kept after the remote recovers. */
  last_error?: string;
  last_error_at?: string;
  url: string;
  read_only: boolean;
  queued: number;
  queued_bytes: number;
  cooling_down: boolean;
  /** Entries and blobs that came attached to a remote answer (a hit without their own request). */
  attached: number;
  /** Entries not uploaded because an object they name did not go up (it would be a miss). */
  upload_orphans: number;
  /** Of upload_dropped: held for a remote that was off longer than uploadMaxHeldMs. */
  upload_expired: number;
  /** Lookups that stopped waiting for the remote after `waitMs` and compiled locally. */
  late: number;
  /** Packs fetched (one request each), and entries they answered without a request of their own. */
  packs: number;
  from_packs: number;
  packs_uploaded: number;
  /** Entries refused by the gate (not signed by a trusted key): misses, and not kept. */
  untrusted: number;
}

// Local first, then the remote (remote-reads.ts: one request per key, bounded waits, bundles and
// pack members); local puts are uploaded in the background (upload-queue.ts: a bounded queue the
// build never waits for, entries after their objects, packs in pack-writer.ts). Whatever the
// remote returns enters the local store through its normal verified put. The local store stays
// owned (and closed) by whoever made it; the remote tier is closed with this.
export class TieredStore implements StoreLike {
  readonly name = 'tiered';
  readonly remote: RemoteTier;
  private readonly local: LocalStore;
  private readonly readOnly: boolean;
  // Remote answers waiting to enter the local store, readable meanwhile.
  private readonly later: IdleWriter;
  // Aborted when close() starts: lookups stop asking the remote, nothing more is queued.
  private readonly stop = new AbortController();
  private readonly gate: EntryGate | undefined;
  private readonly reads: RemoteReads;
  private readonly uploads: UploadQueue;
  private closing: Promise<void> | undefined;

  constructor(opts: TieredOptions) {
    this.local = opts.local;
    this.remote = opts.remote;
    this.later = opts.later ?? new IdleWriter(opts.log);
    const o = {
      readOnly: false,
      queueLimit: 4096,
      queueBytes: 256 * 2 ** 20,
      concurrency: 4,
      drainMs: 10_000,
      uploadRecheckMs: 1000,
      uploadMaxHeldMs: 15 * 60_000,
      now: Date.now,
      waitMs: 0,
      packs: true,
      packQuietMs: 500,
      packMaxAgeMs: 2500,
      prefetchMaxBytes: 96 << 20,
      prefetchKeepMs: 30_000,
      ...stripUndefined(opts),
    };
    this.readOnly = o.readOnly;
    this.gate = opts.gate;
    const shared = { local: this.local, remote: this.remote, later: this.later, log: opts.log, signal: this.stop.signal };
    this.reads = new RemoteReads({
      ...shared,
      gate: opts.gate,
      waitMs: o.waitMs,
      packs: o.packs,
      prefetchMaxBytes: o.prefetchMaxBytes,
      prefetchKeepMs: o.prefetchKeepMs,
    });
    this.uploads = new UploadQueue({
      ...shared,
      readOnly: o.readOnly,
      queueLimit: o.queueLimit,
      queueBytes: o.queueBytes,
      concurrency: o.concurrency,
      drainMs: o.drainMs,
      recheckMs: o.uploadRecheckMs,
      maxHeldMs: o.uploadMaxHeldMs,
      now: o.now,
      looked: opts.uploadsLooked,
      packs: o.packs,
      packQuietMs: o.packQuietMs,
      packMaxAgeMs: o.packMaxAgeMs,
      busy: opts.busy ?? (() => false),
    });
  }

  /** Asks the remote once, in the background (RemoteReads.check). */
  checkRemote(): Promise<void> {
    return this.reads.check();
  }

  getBlob(digest: string): Promise<Buffer | undefined> {
    return this.reads.blob(digest);
  }

  getEntry(key: string): Promise<Buffer | undefined> {
    return this.reads.entry(key);
  }

  getSharedEntry(key: string): Promise<Buffer | undefined> {
    return this.reads.sharedEntry(key);
  }

  async hasBlob(digest: string): Promise<boolean> {
    return (await this.local.hasBlob(digest)) || (await this.remote.hasBlob(digest));
  }

  async putBlob(data: Buffer, digest?: string): Promise<string> {
    const d = await this.local.putBlob(data, digest);
    this.offerBlob(d, data.length, data);
    return d;
  }

  async putBlobFile(file: string, o: { onChunk?: (c: Buffer) => void } = {}): Promise<{ digest: string; size: number }> {
    const r = await this.local.putBlobFile(file, o);
    this.offerBlob(r.digest, r.size);
    return r;
  }

  // Large blobs: remote → local store → dest, one chunk at a time.
  copyBlobTo(digest: string, dest: string, mode?: number, size?: number): Promise<number | undefined> {
    return this.reads.copyTo(digest, dest, mode, size);
  }

  async putEntry(key: string, value: Buffer, attach?: Attach): Promise<void> {
    await this.local.putEntry(key, value);
    this.offerEntry(key, value, attach);
  }

  /** Streamed from what waits for its local write, the local store, or else the remote (not kept locally: see copyBlobTo for that). */
  async getBlobStream(digest: string, size?: number): Promise<Readable | undefined> {
    const waiting = this.later.get('b' + digest);
    if (waiting) return Readable.from([waiting]);
    const local = await this.local.getBlobStream(digest);
    return local ?? (this.stop.signal.aborted ? undefined : this.remote.getBlobStream(digest, size));
  }

  /** Into the local store, then uploaded in the background like putBlobFile's. */
  async putBlobStream(digest: string, size: number, open: () => Promise<Readable>): Promise<void> {
    await this.local.putBlobStream(digest, size, open);
    this.offerBlob(digest, size);
  }

  /**
   * Uploads a blob whose local write is still waiting (store/write-behind.ts): from `data`, or
   * without it (a kept file's descriptor) from what waits in `later` or the local store when its
   * turn comes. The build's results go up as they are made, not when the build pauses.
   */
  offerBlob(digest: string, size: number, data?: Buffer): void {
    this.uploads.offerBlob(digest, size, data);
  }

  /** Uploads an entry whose local write may still be waiting; after the blobs offered before it. */
  offerEntry(key: string, value: Buffer, attach?: Attach): void {
    this.uploads.offerEntry(key, value, attach);
  }

  stats(): RemoteStats {
    const c = this.remote.counters();
    const r = this.reads.counts();
    const u = this.uploads.counts();
    return {
      url: this.remote.url,
      read_only: this.readOnly,
      ...c,
      hits: c.hits - r.untrustedAnswers,
      misses: c.misses + r.untrustedAnswers,
      untrusted: this.gate?.untrusted() ?? 0,
      errors: c.errors + r.badMembers,
      integrity: c.integrity + r.badMembers,
      skipped: c.skipped + r.notWaited,
      late: r.late,
      upload_dropped: u.dropped,
      upload_expired: u.expired,
      upload_skipped: u.skipped,
      upload_orphans: u.orphans,
      attached: r.attached,
      packs: r.packs,
      from_packs: r.fromPacks,
      packs_uploaded: u.packsUploaded,
      queued: u.items,
      queued_bytes: u.bytes,
      cooling_down: this.remote.coolingDown(),
      ...lastError(this.remote.health()),
    };
  }

  /** Writes the remote answers still waiting for a pause in lookups into the local store now. */
  settle(): Promise<void> {
    return this.later.settle();
  }

  /** Seals the open pack; resolves when no upload is waiting or running. */
  flush(): Promise<void> {
    return this.uploads.flush();
  }

  /** Lets queued uploads finish (up to drainMs), then closes the remote tier. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.stop.abort();
      await this.uploads.close();
      await this.reads.close();
      await this.later.settle();
      await this.remote.close();
    })();
    return this.closing;
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(
    Object.entries(o).filter(
      ([k, v]) => v !== undefined && k !== 'local' && k !== 'remote' && k !== 'log' && k !== 'later' && k !== 'busy' && k !== 'gate' && k !== 'uploadsLooked',
    ),
  ) as Partial<T>;
}
