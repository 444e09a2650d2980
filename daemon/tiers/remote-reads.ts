import { blobDigest } from '../store/blob-digest.js';
import type { IdleWriter } from '../store/idle-writer.js';
import type { LocalStore } from '../store/local.js';
import type { ChannelLogger } from '../log.js';
import { decodeBundle, isBundle, type Bundle } from './bundle.js';
import type { EntryGate } from './entry-gate.js';
import { PackPrefetch } from './pack-prefetch.js';
import type { RemoteTier } from './types.js';

export interface RemoteReadsOptions {
  local: LocalStore;
  remote: RemoteTier;
  /** Where remote answers wait for a pause in lookups before they enter the local store. */
  later: IdleWriter;
  log: ChannelLogger;
  /** How long a lookup waits for the remote before it answers "miss"; 0: the operation's own timeout. */
  waitMs: number;
  /** Fetch the pack a remote bundle names (pack-prefetch.ts). */
  packs: boolean;
  prefetchMaxBytes: number;
  prefetchKeepMs: number;
  /** Checks every entry from the remote (answers, attachments, pack members): one refused is a miss, not kept. */
  gate?: EntryGate;
  /** Aborted when the TieredStore starts closing: lookups stop asking the remote. */
  signal: AbortSignal;
}

export interface ReadCounts {
  /** Lookups that stopped waiting after waitMs, and ones that did not ask while another was overdue. */
  late: number;
  notWaited: number;
  /** Entries and blobs that came attached to a remote answer. */
  attached: number;
  packs: number;
  fromPacks: number;
  /** Malformed packs and refused pack members (integrity errors the remote's counters do not see). */
  badMembers: number;
  /** The remote's own answers the gate refused (the remote counted them as hits). */
  untrustedAnswers: number;
}

// The TieredStore's read path: local first (including what waits for its local write), then the
// remote. Concurrent lookups of one key share one remote request; a lookup waits for it at
// most waitMs, and while one is overdue the others ask only the part of the tier that bounds
// its own wait (LAN peers: RemoteTier.nearby), or nothing. Whatever the remote returns enters
// the local store through its normal verified put when lookups pause (IdleWriter), and is
// answered from memory until then.
export class RemoteReads {
  private readonly fetching = new Map<string, Promise<Buffer | undefined>>();
  // Requests to the nearby part of the tier alone (while the remote is overdue), apart from the whole tier's.
  private readonly fetchingNearby = new Map<string, Promise<Buffer | undefined>>();
  private readonly streaming = new Map<string, Promise<boolean>>();
  private attachedKept = 0;
  private overdue = 0; // lookups that stopped waiting, their request still running
  private late = 0; // lookups that stopped waiting (counted once each)
  private notWaited = 0; // lookups that did not ask while another was overdue
  private fromPacks = 0;
  private untrustedAnswers = 0;
  // The check at start while lookups still wait for it (see check).
  private checking: { p: Promise<void> } | undefined;
  private readonly prefetch: PackPrefetch;

  constructor(private readonly o: RemoteReadsOptions) {
    this.prefetch = new PackPrefetch({
      remote: o.remote,
      later: o.later,
      log: o.log,
      maxBytes: o.prefetchMaxBytes,
      keepMs: o.prefetchKeepMs,
      signal: o.signal,
    });
  }

  /**
   * Asks the remote once, in the background: one that hangs is cooling down before the
   * build's lookups reach it, and lookups meanwhile wait for it no longer than `waitMs`
   * (after that they don't wait at all, as behind any overdue request).
   */
  check(): Promise<void> {
    const p = this.o.remote.check().catch(() => {});
    if (this.o.waitMs > 0) {
      const checking = { p: this.waitAtMost(p.then(() => undefined)).then(() => {}) };
      this.checking = checking;
      void checking.p.then(() => {
        if (this.checking === checking) this.checking = undefined;
      });
    }
    return p;
  }

  blob(digest: string): Promise<Buffer | undefined> {
    const { later, local } = this.o;
    const k = 'b' + digest;
    return this.read(
      k,
      async () => later.get(k) ?? local.getBlob(digest),
      (tier) => tier.getBlob(digest),
      (d) => local.putBlob(d, digest),
    );
  }

  entry(key: string): Promise<Buffer | undefined> {
    const { later, local } = this.o;
    const k = 'e' + key;
    return this.read(
      k,
      async () => later.get(k) ?? (await local.getEntry(key)) ?? this.fromPack(key),
      (tier) => this.remoteEntry(tier, key),
      (d) => local.putEntry(key, d),
    );
  }

  /**
   * The remote's value of an entry, whatever the local store holds (a manifest there may be
   * older than the team's): checked like any remote answer, its attachments kept, the value
   * itself not (the caller merges it with the local one).
   */
  sharedEntry(key: string): Promise<Buffer | undefined> {
    return this.read(
      's' + key,
      async () => undefined,
      (tier) => this.remoteEntry(tier, key),
      undefined,
    );
  }

  private async remoteEntry(tier: RemoteTier, key: string): Promise<Buffer | undefined> {
    const d = await tier.getEntry(key);
    if (!d || !isBundle(d)) return d && this.admit(key, d);
    const b = this.unbundle(key, d, (e) => tier.rejected(key, e));
    if (b?.pack && this.o.packs && b.entries.length + b.blobs.length === 0) {
      // A pack member's own value carries no attachments: they are in its pack (this wait
      // is part of the lookup's, `waitMs` at most).
      await this.prefetch.arriving(b.pack);
      const member = this.prefetch.take(key);
      if (member && isBundle(member)) this.unbundle(key, member, (e) => this.prefetch.refused(key, e));
    }
    return b && this.admit(key, b.value);
  }

  // Large blobs: remote → local store → dest, one chunk at a time.
  async copyTo(digest: string, dest: string, mode?: number, size?: number): Promise<number | undefined> {
    const { local, remote, log } = this.o;
    const n = await local.copyBlobTo(digest, dest, mode);
    if (n !== undefined || this.o.signal.aborted) return n;
    let p = this.streaming.get(digest);
    if (!p) {
      p = (async () => {
        const src = await remote.getBlobStream(digest, size);
        if (!src) return false;
        try {
          await local.putBlobStream(src, { digest });
          return true;
        } catch (e) {
          log.warn('remote object not kept locally', { key: digest, err: e });
          return false;
        }
      })().finally(() => this.streaming.delete(digest));
      this.streaming.set(digest, p);
    }
    return (await p) ? local.copyBlobTo(digest, dest, mode) : undefined;
  }

  counts(): ReadCounts {
    const pf = this.prefetch.counts();
    return {
      late: this.late,
      notWaited: this.notWaited,
      attached: this.attachedKept,
      packs: pf.packs,
      fromPacks: this.fromPacks,
      badMembers: pf.bad,
      untrustedAnswers: this.untrustedAnswers,
    };
  }

  /** Drops the pack members still held; requests on their way finish on their own (the signal keeps their answers out). */
  close(): Promise<void> {
    return this.prefetch.close();
  }

  // Concurrent lookups of one key share one remote request.
  private async read(
    k: string,
    local: () => Promise<Buffer | undefined>,
    remote: (tier: RemoteTier) => Promise<Buffer | undefined>,
    keep: ((d: Buffer) => Promise<unknown>) | undefined,
  ): Promise<Buffer | undefined> {
    const hit = await local();
    if (hit || this.o.signal.aborted) return hit;
    if (this.checking) await this.checking.p; // the check at start, waitMs at most
    const fetch = (tier: RemoteTier, into: Map<string, Promise<Buffer | undefined>>) => {
      let p = into.get(k);
      if (!p) {
        p = (async () => {
          const data = await remote(tier); // verified by the tier (blobs) or opaque (entries)
          if (data && keep) this.keepLater(k, data, keep);
          return data;
        })().finally(() => into.delete(k));
        into.set(k, p);
      }
      return p;
    };
    const whole = this.fetching.get(k);
    if (!whole && this.overdue > 0) {
      // A remote that is slow right now: don't queue more behind it. What of the tier bounds
      // its own wait (LAN peers) is still asked, apart (a lookup once the remote answers
      // again asks all of it, not this), and waited for no longer than the remote would be.
      this.notWaited++;
      const near = this.o.remote.nearby?.();
      return near && this.waitNearby(fetch(near, this.fetchingNearby));
    }
    const p = whole ?? fetch(this.o.remote, this.fetching);
    return this.o.waitMs > 0 ? this.waitAtMost(p) : p;
  }

  // A nearby-only request's answer, or undefined after waitMs; it goes on, and what it brings
  // is kept. Not the remote's lateness: `overdue` is left alone.
  private waitNearby(p: Promise<Buffer | undefined>): Promise<Buffer | undefined> {
    let timer: NodeJS.Timeout | undefined;
    const giveUp = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => {
        this.late++;
        resolve(undefined);
      }, this.o.waitMs);
    });
    return Promise.race([p.finally(() => clearTimeout(timer)), giveUp]);
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
    if (!this.o.later.has(k)) this.o.later.add(k, data, put);
  }

  // A lookup's entry from a fetched pack (waiting a little for packs on their way): checked
  // like a remote answer, then kept for the local store like one.
  private async fromPack(key: string): Promise<Buffer | undefined> {
    const d = await this.prefetch.takeSoon(key);
    if (!d) return undefined;
    const value = isBundle(d) ? this.unbundle(key, d, (e) => this.prefetch.refused(key, e))?.value : d;
    if (!value || (this.o.gate && !this.o.gate.accept(key, value))) return undefined;
    this.fromPacks++;
    this.keepLater('e' + key, value, (v) => this.o.local.putEntry(key, v));
    return value;
  }

  // A remote's own answer for `key` through the gate: refused, it is a miss, not a hit.
  private admit(key: string, value: Buffer): Buffer | undefined {
    if (!this.o.gate || this.o.gate.accept(key, value)) return value;
    this.untrustedAnswers++;
    return undefined;
  }

  // A bundle from the remote: every blob must match its digest, or the whole answer is
  // refused (a miss, counted as an integrity error). The attachments enter the local store
  // like any remote answer (keepLater): the reads that follow (the result, the object) are
  // answered from memory until they are written.
  private unbundle(_key: string, data: Buffer, refuse: (e: Error) => void): Bundle | undefined {
    const { local } = this.o;
    let b: Bundle;
    try {
      b = decodeBundle(data);
      for (const [d, blob] of b.blobs) blobDigest(blob, d);
    } catch (e) {
      refuse(e as Error);
      return undefined;
    }
    if (b.pack && this.o.packs) this.prefetch.fetch(b.pack);
    for (const [d, blob] of b.blobs) this.keepLater('b' + d, blob, () => local.putBlob(blob, d));
    let kept = b.blobs.length;
    for (const [k, e] of b.entries) {
      if (this.o.gate && !this.o.gate.accept(k, e)) continue;
      this.keepLater('e' + k, e, async () => (await local.hasEntry(k)) || local.putEntry(k, e));
      kept++;
    }
    this.attachedKept += kept;
    return b;
  }
}
