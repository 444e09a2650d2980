import type { Attach, StoreLike } from '../store/contract.js';
import { Readable } from 'node:stream';
import { VriftError } from '../../ipc/errors.js';
import type { ChannelLogger } from '../log.js';
import { IdleWriter } from '../store/idle-writer.js';
import type { LocalStore } from '../store/local.js';
import { blobDigest } from '../store/blob-digest.js';
import type { RemoteCounters } from './counters.js';
import type { RemoteTier } from './types.js';
import type { EntryGate } from './entry-gate.js';
import { BUNDLE_BLOB_MAX, PACK_BYTES_MAX, PACK_MEMBERS_MAX, decodeBundle, decodePack, encodeBundle, encodePack, isBundle, type Bundle } from './bundle.js';

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

// How long a lookup waits for packs on their way before it asks the remote for its own key.
const PACK_WAIT_MS = 250;

// `data` undefined: a large blob, streamed from the local store when its turn comes.
// A 'pack' upload carries the entries sealed into it (`members`), each still counted as queued.
// `started`: its data is being read for the upload; a newer value of the same entry then waits
// in `next` and goes up after it.
interface Upload { kind: 'blob' | 'entry' | 'pack'; key: string; data?: Buffer; size: number; after: Promise<unknown>[]; attach?: Attach; settle?: () => void; members?: Upload[]; started?: boolean; next?: Upload }

const lastError = (h: Record<string, unknown>) => (typeof h.last_error === 'string' ? { last_error: h.last_error, last_error_at: String(h.last_error_at) } : {});

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
  /** Lookups that stopped waiting for the remote after `waitMs` and compiled locally. */
  late: number;
  /** Packs fetched (one request each), and entries they answered without a request of their own. */
  packs: number;
  from_packs: number;
  packs_uploaded: number;
  /** Entries refused by the gate (not signed by a trusted key): misses, and not kept. */
  untrusted: number;
}

// Local first, then the remote. Whatever the remote returns enters the local store through
// its normal verified put, and local puts are uploaded in the background: a bounded queue
// the build never waits for. The local store stays owned (and closed) by whoever made it.
export class TieredStore implements StoreLike {
  readonly name = 'tiered';
  private readonly local: LocalStore;
  readonly remote: RemoteTier;
  private readonly o: Required<Omit<TieredOptions, 'local' | 'remote' | 'log' | 'later' | 'busy' | 'gate'>>;
  private readonly gate: EntryGate | undefined;
  private untrustedAnswers = 0; // answers the remote counted as hits
  private readonly busy: () => boolean;
  private readonly log: ChannelLogger;
  private readonly fetching = new Map<string, Promise<Buffer | undefined>>();
  private readonly streaming = new Map<string, Promise<boolean>>();
  private readonly waiting: Upload[] = [];
  private readonly queuedKeys = new Map<string, Upload>();
  // Blob uploads not finished yet: an entry is uploaded only after the blobs put before it,
  // so a remote reader never sees an entry whose object is still on its way.
  private readonly blobsInFlight = new Set<Promise<unknown>>();
  private running = 0;
  private items = 0;         // uploads accepted and not finished (a pack's members each count)
  private bytesQueued = 0;
  private idle: (() => void)[] = [];
  private closing: Promise<void> | undefined;
  private dropped = 0;
  // Blobs whose upload failed or was dropped: an entry that names one and does not carry it
  // inline is not uploaded either (a reader would get the entry, then a miss for its object).
  private readonly notUp = new Set<string>();
  private orphans = 0;
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
  // Packs: the one being filled by uploads, and on the reading side the members of fetched
  // packs that no lookup has asked for yet.
  private openPack: Upload[] = [];
  private packOpenedAt = 0;
  private packTimer: NodeJS.Timeout | undefined;
  private packsUploaded = 0;
  private readonly prefetched = new Map<string, Buffer>();
  private prefetchedBytes = 0;
  private prefetchTimer: NodeJS.Timeout | undefined;
  private readonly packsSeen = new Set<string>();
  private readonly packsInFlight = new Map<string, Promise<void>>();
  private packsFetched = 0;
  private fromPacks = 0;
  private badMembers = 0;

  constructor(opts: TieredOptions) {
    this.local = opts.local;
    this.remote = opts.remote;
    this.log = opts.log;
    this.later = opts.later ?? new IdleWriter(opts.log);
    this.busy = opts.busy ?? (() => false);
    this.gate = opts.gate;
    this.o = { readOnly: false, queueLimit: 4096, queueBytes: 256 * 2 ** 20, concurrency: 4, drainMs: 10_000, waitMs: 0, packs: true, packQuietMs: 500, packMaxAgeMs: 2500, prefetchMaxBytes: 96 << 20, prefetchKeepMs: 30_000, ...stripUndefined(opts) };
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
    return this.read(k, async () => this.later.get(k) ?? (await this.local.getEntry(key)) ?? this.fromPack(key), async () => {
      const d = await this.remote.getEntry(key);
      if (!d || !isBundle(d)) return d && this.admit(key, d);
      const b = this.unbundle(key, d, (e) => this.remote.rejected(key, e));
      if (b?.pack && this.o.packs && b.entries.length + b.blobs.length === 0) {
        // A pack member's own value carries no attachments: they are in its pack (this wait
        // is part of the lookup's, `waitMs` at most).
        await this.packsInFlight.get(b.pack);
        const member = this.prefetched.get(key);
        this.dropPrefetched(key);
        if (member && isBundle(member)) this.unbundle(key, member, (e) => this.refusedMember(key, e));
      }
      return b && this.admit(key, b.value);
    }, (d) => this.local.putEntry(key, d));
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
  async copyBlobTo(digest: string, dest: string, mode?: number, size?: number): Promise<number | undefined> {
    const n = await this.local.copyBlobTo(digest, dest, mode);
    if (n !== undefined || this.closing) return n;
    let p = this.streaming.get(digest);
    if (!p) {
      p = (async () => {
        const src = await this.remote.getBlobStream(digest, size);
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
    this.offerEntry(key, value, attach);
  }

  /** Streamed from what waits for its local write, the local store, or else the remote (not kept locally: see copyBlobTo for that). */
  async getBlobStream(digest: string, size?: number): Promise<Readable | undefined> {
    const waiting = this.later.get('b' + digest);
    if (waiting) return Readable.from([waiting]);
    const local = await this.local.getBlobStream(digest);
    return local ?? (this.closing ? undefined : this.remote.getBlobStream(digest, size));
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
    this.enqueue({ kind: 'blob', key: digest, data, size, after: [] });
  }

  /** Uploads an entry whose local write may still be waiting; after the blobs offered before it. */
  offerEntry(key: string, value: Buffer, attach?: Attach): void {
    this.enqueue({ kind: 'entry', key, data: value, size: value.length, after: [...this.blobsInFlight], attach });
  }

  stats(): RemoteStats {
    const c = this.remote.counters();
    return {
      url: this.remote.url, read_only: this.o.readOnly, ...c,
      hits: c.hits - this.untrustedAnswers, misses: c.misses + this.untrustedAnswers, untrusted: this.gate?.untrusted() ?? 0,
      errors: c.errors + this.badMembers, integrity: c.integrity + this.badMembers,
      skipped: c.skipped + this.notWaited, late: this.late,
      upload_dropped: this.dropped, upload_skipped: this.skippedUploads, upload_orphans: this.orphans, attached: this.attachedKept,
      packs: this.packsFetched, from_packs: this.fromPacks, packs_uploaded: this.packsUploaded,
      queued: this.items, queued_bytes: this.bytesQueued, cooling_down: this.remote.coolingDown(),
      ...lastError(this.remote.health()),
    };
  }

  /** Writes the remote answers still waiting for a pause in lookups into the local store now. */
  settle(): Promise<void> {
    return this.later.settle();
  }

  /** Seals the open pack; resolves when no upload is waiting or running. */
  flush(): Promise<void> {
    this.sealPack();
    if (this.items === 0) return Promise.resolve();
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
      if (timedOut) this.log.warn('uploads still queued at close, dropped', { queued: this.items });
      this.waiting.length = 0;
      clearTimeout(this.packTimer);
      clearTimeout(this.prefetchTimer);
      this.dropAllPrefetched();
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
    const queued = this.queuedKeys.get(id);
    if (queued) {
      // A blob is its digest: the same bytes. An entry's newer value (a manifest that gained a
      // variant) replaces one still waiting, or follows one already going up.
      if (u.kind !== 'entry' || !u.data || (queued.data && queued.data.equals(u.data))) return;
      if (queued.started) queued.next = u;
      else {
        this.bytesQueued += u.data.length - (queued.data?.length ?? 0);
        queued.data = u.data;
        queued.attach = u.attach;
        queued.after = u.after;
      }
      return;
    }
    if (this.remote.coolingDown() || this.items >= this.o.queueLimit || this.bytesQueued + (u.data?.length ?? 0) > this.o.queueBytes) {
      this.dropped++;
      if (u.kind === 'blob') this.blobNotUp(u.key);
      return;
    }
    if (u.kind === 'blob') this.notUp.delete(u.key);
    this.queuedKeys.set(id, u);
    this.items++;
    this.bytesQueued += u.data?.length ?? 0;
    if (u.kind === 'blob') {
      const p = new Promise<void>((r) => (u.settle = r));
      this.blobsInFlight.add(p);
      void p.then(() => this.blobsInFlight.delete(p));
    }
    if (u.kind === 'entry' && u.attach && this.o.packs) {
      if (this.openPack.length === 0) this.packOpenedAt = Date.now();
      this.openPack.push(u);
      if (this.openPack.length >= PACK_MEMBERS_MAX) this.sealPack();
      else this.armPack();
      return;
    }
    this.waiting.push(u);
    this.pump();
  }

  // Sealed once quiet for packQuietMs with no compile running, or packMaxAgeMs after it opened:
  // a build's results close together share a pack, and a long build's still go up within seconds.
  private armPack(): void {
    clearTimeout(this.packTimer);
    const left = this.packOpenedAt + this.o.packMaxAgeMs - Date.now();
    this.packTimer = setTimeout(() => {
      if (this.busy() && this.packOpenedAt + this.o.packMaxAgeMs > Date.now()) this.armPack();
      else this.sealPack();
    }, Math.max(0, Math.min(this.o.packQuietMs, left)));
    this.packTimer.unref();
  }

  // The entries waiting in the open pack go up together, as one upload job.
  private sealPack(): void {
    clearTimeout(this.packTimer);
    this.packTimer = undefined;
    if (this.openPack.length === 0) return;
    const members = this.openPack.splice(0);
    this.waiting.push({ kind: 'pack', key: members[0].key, size: 0, after: [], members });
    this.pump();
  }

  private pump(): void {
    while (this.running < this.o.concurrency && this.waiting.length > 0) {
      const u = this.waiting.shift()!;
      this.running++;
      void this.upload(u).finally(() => {
        this.running--;
        const again: Upload[] = [];
        for (const m of u.members ?? [u]) {
          this.items--;
          this.bytesQueued -= m.data?.length ?? 0;
          this.queuedKeys.delete(m.kind[0] + m.key);
          m.settle?.();
          if (m.next) again.push(m.next);
        }
        for (const n of again) this.enqueue(n);
        if (this.items === 0) for (const r of this.idle.splice(0)) r();
        this.pump();
      });
    }
  }

  private async upload(u: Upload): Promise<void> {
    for (const m of u.members ?? [u]) m.started = true;
    try {
      // A member's value (and what it waits for) may be replaced until the pack starts.
      if (u.kind === 'pack') await this.uploadPack(u.members!, u.members!.flatMap((m) => m.after));
      else if (u.kind === 'blob') {
        // Not up until the server has it (an entry waiting for this upload reads the outcome).
        this.blobNotUp(u.key);
        const data = u.data ?? this.later.peek('b' + u.key); // still waiting for its local write?
        if (await this.remote.hasBlob(u.key)) this.skippedUploads++; // HEAD said it is there already
        else if (this.remote.coolingDown()) return;
        else if (data) await this.remote.putBlob(data, u.key);
        else {
          await this.remote.putBlobStream(u.key, u.size, async () => {
            const r = await this.local.openBlob(u.key);
            if (!r) throw new VriftError('ESTORE', 'blob left the local store before its upload', { fields: { digest: u.key } });
            return r.stream;
          });
        }
        this.notUp.delete(u.key);
      } else {
        await Promise.allSettled(u.after);
        if (this.remote.coolingDown()) return;
        const b = u.attach ? await this.bundle(u.data!, u.attach) : undefined;
        if (this.orphaned(u.attach, b)) return;
        await this.remote.putEntry(u.key, b ? valueOf(b) : u.data!);
      }
    } catch (e) {
      this.log.debug('upload failed', { kind: u.kind, key: u.key, err: e });
    }
  }

  private blobNotUp(digest: string): void {
    if (this.notUp.size >= 10_000) this.notUp.clear();
    this.notUp.add(digest);
  }

  /** True (and counted) when an attachment is neither on the server nor in the bundle. */
  private orphaned(attach: Attach | undefined, b: Bundle | undefined): boolean {
    const missing = attach?.blobs?.find((d) => this.notUp.has(d) && !b?.blobs.some(([x]) => x === d));
    if (missing === undefined) return false;
    this.orphans++;
    this.log.debug('entry not uploaded: its object did not go up', { blob: missing });
    return true;
  }

  // ---- bundles (see bundle.ts) ----

  // The attachments are read when the upload's turn comes, from what waits for its local write
  // or from the local store; one gone meanwhile (evicted) is left out (see valueOf for what goes up).
  private async bundle(value: Buffer, attach: Attach): Promise<Bundle> {
    const b: Bundle = { value, entries: [], blobs: [] };
    for (const k of attach.entries ?? []) {
      const e = this.later.peek('e' + k) ?? (await this.local.getEntry(k));
      if (e) b.entries.push([k, e]);
    }
    for (const d of attach.blobs ?? []) {
      const data = this.later.peek('b' + d) ?? (await this.local.getBlob(d));
      if (data && data.length <= BUNDLE_BLOB_MAX) b.blobs.push([d, data]);
    }
    return b;
  }

  // A sealed pack's members: their bundles go up as one pack blob (or several, PACK_BYTES_MAX
  // each) first, then each member's own value: thin (the value and its pack's name; the
  // attachments are in the pack, and every attachment is also on the server on its own). A
  // pack that fails to go up leaves its members uploaded as whole bundles; a member that
  // fails is dropped (logged).
  private async uploadPack(members: Upload[], after: Promise<unknown>[]): Promise<void> {
    await Promise.allSettled(after);
    if (this.remote.coolingDown()) return;
    let group: [Upload, Bundle, Buffer][] = [];
    let bytes = 0;
    const send = async () => {
      const g = group;
      group = [];
      bytes = 0;
      let pack: string | undefined;
      if (g.length > 1) {
        try {
          pack = await this.remote.putBlob(encodePack(g.map(([m, , plain]) => [m.key, plain])));
          this.packsUploaded++;
        } catch (e) {
          this.log.debug('pack upload failed', { members: g.length, err: e });
        }
      }
      let next = 0;
      const worker = async () => {
        while (next < g.length && !this.remote.coolingDown()) {
          const [m, b, plain] = g[next++];
          try {
            // Named in its pack, a member goes up thin: its attachments are in the pack.
            await this.remote.putEntry(m.key, pack ? encodeBundle({ value: b.value, entries: [], blobs: [], pack }) : plain);
          } catch (e) {
            this.log.debug('upload failed', { kind: 'entry', key: m.key, err: e });
          }
        }
      };
      await Promise.all([worker(), worker(), worker(), worker()]);
    };
    for (const m of members) {
      const b = await this.bundle(m.data!, m.attach!);
      if (this.orphaned(m.attach, b)) continue;
      const plain = valueOf(b);
      if (group.length > 0 && bytes + plain.length > PACK_BYTES_MAX) await send();
      group.push([m, b, plain]);
      bytes += plain.length;
    }
    if (group.length > 0) await send();
  }

  // Reading: a bundle naming a pack fetches the pack (once) in the background. Its members
  // wait here, unverified and out of the local store, until a lookup asks for one.
  private fetchPack(digest: string): void {
    if (this.packsSeen.has(digest) || this.closing || this.prefetchedBytes >= this.o.prefetchMaxBytes) return;
    if (this.packsSeen.size >= 100_000) this.packsSeen.clear();
    this.packsSeen.add(digest);
    const p: Promise<void> = (async () => {
      const data = await this.remote.getBlob(digest); // verified against the digest, or a miss
      if (!data || this.closing) return;
      let members: [string, Buffer][];
      try {
        members = decodePack(data);
      } catch (e) {
        this.badMembers++;
        this.log.warn('remote pack is malformed, not used', { digest, err: e });
        return;
      }
      this.packsFetched++;
      for (const [k, d] of members) {
        if (this.prefetched.has(k) || this.later.has('e' + k)) continue;
        this.prefetched.set(k, d);
        this.prefetchedBytes += d.length;
      }
      for (const k of this.prefetched.keys()) {
        if (this.prefetchedBytes <= this.o.prefetchMaxBytes) break;
        this.dropPrefetched(k);
      }
      clearTimeout(this.prefetchTimer);
      this.prefetchTimer = setTimeout(() => this.dropAllPrefetched(), this.o.prefetchKeepMs);
      this.prefetchTimer.unref();
    })().catch((e) => this.log.debug('pack fetch failed', { digest, err: e })).finally(() => this.packsInFlight.delete(digest));
    this.packsInFlight.set(digest, p);
  }

  // A lookup's entry from a fetched pack (waiting up to PACK_WAIT_MS for packs on their way):
  // checked like a remote answer, then kept for the local store like one.
  private async fromPack(key: string): Promise<Buffer | undefined> {
    if (!this.prefetched.has(key) && this.packsInFlight.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.allSettled([...this.packsInFlight.values()]), new Promise((r) => (timer = setTimeout(r, PACK_WAIT_MS)))]);
      clearTimeout(timer);
    }
    const d = this.prefetched.get(key);
    if (!d) return undefined;
    this.dropPrefetched(key);
    const value = isBundle(d) ? this.unbundle(key, d, (e) => this.refusedMember(key, e))?.value : d;
    if (!value || (this.gate && !this.gate.accept(key, value))) return undefined;
    this.fromPacks++;
    this.keepLater('e' + key, value, (v) => this.local.putEntry(key, v));
    return value;
  }

  // A remote's own answer for `key` through the gate: refused, it is a miss, not a hit.
  private admit(key: string, value: Buffer): Buffer | undefined {
    if (!this.gate || this.gate.accept(key, value)) return value;
    this.untrustedAnswers++;
    return undefined;
  }

  private refusedMember(key: string, e: Error): void {
    this.badMembers++;
    this.log.warn('pack member refused', { key, err: e });
  }

  private dropPrefetched(k: string): void {
    const d = this.prefetched.get(k);
    if (!d) return;
    this.prefetched.delete(k);
    this.prefetchedBytes -= d.length;
  }

  private dropAllPrefetched(): void {
    this.prefetched.clear();
    this.prefetchedBytes = 0;
  }

  // A bundle from the remote: every blob must match its digest, or the whole answer is
  // refused (a miss, counted as an integrity error). The attachments enter the local store
  // like any remote answer (keepLater): the reads that follow (the result, the object) are
  // answered from memory until they are written.
  private unbundle(key: string, data: Buffer, refuse: (e: Error) => void): Bundle | undefined {
    let b: Bundle;
    try {
      b = decodeBundle(data);
      for (const [d, blob] of b.blobs) blobDigest(blob, d);
    } catch (e) {
      refuse(e as Error);
      return undefined;
    }
    if (b.pack && this.o.packs) this.fetchPack(b.pack);
    for (const [d, blob] of b.blobs) this.keepLater('b' + d, blob, () => this.local.putBlob(blob, d));
    let kept = b.blobs.length;
    for (const [k, e] of b.entries) {
      if (this.gate && !this.gate.accept(k, e)) continue;
      this.keepLater('e' + k, e, async () => (await this.local.hasEntry(k)) || this.local.putEntry(k, e));
      kept++;
    }
    this.attachedKept += kept;
    return b;
  }
}

/** What goes up for an entry: its bundle, or the plain value when nothing is attached. */
function valueOf(b: Bundle): Buffer {
  return b.entries.length + b.blobs.length > 0 || b.pack ? encodeBundle(b) : b.value;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([k, v]) => v !== undefined && k !== 'local' && k !== 'remote' && k !== 'log' && k !== 'later' && k !== 'busy' && k !== 'gate')) as Partial<T>;
}
