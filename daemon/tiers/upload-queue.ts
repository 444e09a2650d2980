import { VriftError } from '../../ipc/errors.js';
import type { Attach } from '../store/contract.js';
import type { IdleWriter } from '../store/idle-writer.js';
import type { LocalStore } from '../store/local.js';
import type { ChannelLogger } from '../log.js';
import type { Bundle } from './bundle.js';
import { PackWriter } from './pack-writer.js';
import type { RemoteTier } from './types.js';
import { readBundle, valueOf, type Upload } from './upload.js';

export interface UploadQueueOptions {
  remote: RemoteTier;
  local: LocalStore;
  later: IdleWriter;
  log: ChannelLogger;
  /** Never upload. */
  readOnly: boolean;
  /** Uploads waiting or running; more are dropped (and counted), never waited for. */
  queueLimit: number;
  /** Payload bytes held by waiting uploads. */
  queueBytes: number;
  concurrency: number;
  /** How long close() lets queued uploads finish. */
  drainMs: number;
  /** How often an upload that waits for the remote to answer again looks (its cool-down's probe does the asking). */
  recheckMs: number;
  /** An upload offered this long ago and still waiting for the remote is dropped (counted as expired). */
  maxHeldMs: number;
  /** The clock maxHeldMs is measured by. */
  now: () => number;
  /** Told each time the uploads held for the remote have looked whether it is back (tests wait for it). */
  looked?: () => void;
  /** Entries with attachments go up in packs (pack-writer.ts). */
  packs: boolean;
  packQuietMs: number;
  packMaxAgeMs: number;
  busy: () => boolean;
  /** Aborted when the TieredStore starts closing: nothing more is taken. */
  signal: AbortSignal;
}

export interface UploadCounts {
  /** Uploads given up: the queue was full (the oldest waiting made room), or held past maxHeldMs. */
  dropped: number;
  /** Of those: held past maxHeldMs. */
  expired: number;
  /** HEAD said the blob was already there. */
  skipped: number;
  orphans: number;
  packsUploaded: number;
  /** Uploads accepted and not finished (a pack's members each count), and their payload bytes. */
  items: number;
  bytes: number;
}

// While the stop drain runs, an upload that failed is tried again this long after (doubling
// with each try, up to recheckMs) until the drain ends: a server that fails a few PUTs while
// the daemon stops still gets them.
const DRAIN_RETRY_MS = 100;

// The TieredStore's uploads: a bounded queue the build never waits for. An entry goes up only
// after the blobs offered before it, so a remote reader never sees an entry whose object is
// still on its way; an entry naming a blob that did not go up does not go up either.
// What the queue took is not given up when the remote switches off (a failure, or an answer
// slower than remote_timeout on a loaded machine, starts a cool-down): an upload that did not
// go up for that waits for the remote to answer again and tries once more. Offers made while
// it is off (a check at start that was answered late must not lose the build's next 30 s) are
// held in order in `waiting`, one wait looking for the remote on behalf of them all.
// What is held is bounded, so a dead server does not fill the daemon's memory for hours: past
// queueLimit / queueBytes the oldest waiting upload makes room (none waiting: the offer is
// dropped), and one held maxHeldMs is dropped; each is counted, and said once an outage.
// Once close() has begun, the remote is asked at once and again (DRAIN_RETRY_MS on, doubling
// up to recheckMs) until the drain ends (one slow answer more must not lose them either), and
// an upload that fails is tried again as often, until everything is up or the drain ends.
export class UploadQueue {
  private readonly waiting: Upload[] = [];
  private readonly queuedKeys = new Map<string, Upload>();
  // Blob uploads not finished yet: an entry is uploaded only after the blobs put before it.
  private readonly blobsInFlight = new Set<Promise<unknown>>();
  private running = 0;
  private items = 0; // uploads accepted and not finished (a pack's members each count)
  private bytesQueued = 0;
  private idle: (() => void)[] = [];
  private dropped = 0;
  private expired = 0;
  // A drop was logged, and since then the remote has not answered again nor the queue emptied:
  // one line an outage.
  private dropSaid = false;
  // Blobs whose upload failed or was dropped: an entry that names one and does not carry it
  // inline is not uploaded either (a reader would get the entry, then a miss for its object).
  private readonly notUp = new Set<string>();
  private orphans = 0;
  private skippedUploads = 0;
  private readonly packs: PackWriter;
  private closing: Promise<void> | undefined;
  // Set when close() begins: uploads waiting for the remote ask it at once instead; and when
  // its drain has ended: they stop waiting.
  private draining = false;
  private drained = false;
  private readonly sleepers = new Set<() => void>();
  // The one wait for the remote on behalf of the uploads held in `waiting`.
  private holding: Promise<void> | undefined;

  constructor(private readonly o: UploadQueueOptions) {
    this.packs = new PackWriter({
      remote: o.remote,
      local: o.local,
      later: o.later,
      log: o.log,
      quietMs: o.packQuietMs,
      maxAgeMs: o.packMaxAgeMs,
      busy: o.busy,
      sealed: (members) => {
        this.waiting.push({ kind: 'pack', key: members[0].key, size: 0, after: [], members, at: members[0].at });
        this.pump();
      },
      orphaned: (attach, b) => this.orphaned(attach, b),
    });
  }

  /** A blob: from `data`, or without it (a kept file's descriptor, a large blob) from what waits in `later` or the local store when its turn comes. */
  offerBlob(digest: string, size: number, data?: Buffer): void {
    this.enqueue({ kind: 'blob', key: digest, data, size, after: [], at: this.o.now() });
  }

  /** An entry, after the blobs offered before it. */
  offerEntry(key: string, value: Buffer, attach?: Attach): void {
    this.enqueue({ kind: 'entry', key, data: value, size: value.length, after: [...this.blobsInFlight], attach, at: this.o.now() });
  }

  counts(): UploadCounts {
    return {
      dropped: this.dropped,
      expired: this.expired,
      skipped: this.skippedUploads,
      orphans: this.orphans,
      packsUploaded: this.packs.count(),
      items: this.items,
      bytes: this.bytesQueued,
    };
  }

  /** Seals the open pack; resolves when no upload is waiting or running. */
  flush(): Promise<void> {
    this.packs.seal();
    if (this.items === 0) return Promise.resolve();
    return new Promise((r) => this.idle.push(r));
  }

  /** Lets queued uploads finish (up to drainMs), then drops what still waits. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.draining = true;
      for (const wake of this.sleepers) wake();
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([this.flush().then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), this.o.drainMs)))]);
      clearTimeout(timer);
      this.drained = true;
      for (const wake of this.sleepers) wake();
      if (timedOut) {
        const queued = this.items;
        for (const u of this.waiting.splice(0)) this.discard(u, 'close');
        // Those still running are cut by the exit: dropped as well (vrift stats counts them).
        this.dropped += this.items;
        this.o.log.warn('uploads still queued at close, dropped', { queued });
      }
      await this.packs.close();
    })();
    return this.closing;
  }

  private enqueue(u: Upload): void {
    if (this.o.readOnly || this.o.signal.aborted) return;
    const id = u.kind[0] + u.key;
    const queued = this.queuedKeys.get(id);
    if (queued) {
      // A blob is its digest: the same bytes. An entry's newer value (a manifest that gained a
      // variant) replaces one still waiting, or follows one already going up.
      if (u.kind !== 'entry' || !u.data || queued.data?.equals(u.data)) return;
      if (queued.started) queued.next = u;
      else {
        this.bytesQueued += u.data.length - (queued.data?.length ?? 0);
        queued.data = u.data;
        queued.attach = u.attach;
        queued.after = u.after;
      }
      return;
    }
    if (this.holding) this.expire();
    const size = u.data?.length ?? 0;
    const full = () => this.items >= this.o.queueLimit || this.bytesQueued + size > this.o.queueBytes;
    while (full() && this.waiting.length > 0) this.discard(this.waiting.shift()!, 'full');
    if (full()) {
      this.dropped++;
      if (u.kind === 'blob') this.blobNotUp(u.key);
      this.said('full');
      return;
    }
    if (u.kind === 'blob') this.notUp.delete(u.key);
    this.queuedKeys.set(id, u);
    this.items++;
    this.bytesQueued += size;
    if (u.kind === 'blob') {
      const p = new Promise<void>((r) => (u.settle = r));
      this.blobsInFlight.add(p);
      void p.then(() => this.blobsInFlight.delete(p));
    }
    if (u.kind === 'entry' && u.attach && this.o.packs) {
      this.packs.add(u);
      return;
    }
    this.waiting.push(u);
    this.pump();
  }

  private pump(): void {
    while (this.running < this.o.concurrency && this.waiting.length > 0) {
      // The remote is off: what waits stays in `waiting`, in order (the oldest can make room).
      if (this.o.remote.coolingDown()) return this.hold();
      const u = this.waiting.shift()!;
      this.running++;
      void this.upload(u)
        .catch(() => false)
        .then((expired) => {
          this.running--;
          const again: Upload[] = [];
          for (const m of u.members ?? [u]) {
            this.items--;
            this.bytesQueued -= m.data?.length ?? 0;
            this.queuedKeys.delete(m.kind[0] + m.key);
            m.settle?.();
            // Once the drain has ended, close() has counted what was still running.
            if (expired && !this.drained) {
              this.dropped++;
              this.expired++;
            }
            if (m.next) again.push(m.next);
          }
          if (expired && !this.drained) this.said('expired');
          for (const n of again) this.enqueue(n);
          if (this.items === 0) {
            for (const r of this.idle.splice(0)) r();
            this.dropSaid = false;
          }
          this.pump();
        });
    }
  }

  // One wait for the remote on behalf of everything held in `waiting`; they go once it answers.
  private hold(): void {
    this.holding ??= this.remoteBack().then((back) => {
      this.holding = undefined;
      if (back) this.pump();
    });
  }

  // One upload job. One that did not go up because the remote switched off is tried again
  // once it answers: once, or while the drain runs, until it ends. True when it was given up
  // for having waited for the remote maxHeldMs.
  private async upload(u: Upload): Promise<boolean> {
    for (const m of u.members ?? [u]) m.started = true;
    let left = u.members;
    for (let tries = 1; ; tries++) {
      let off: boolean;
      if (u.kind === 'pack') {
        // A member's value (and what it waits for) may be replaced until the pack starts.
        try {
          left = await this.packs.upload(
            left!,
            left!.flatMap((m) => m.after),
          );
        } catch (e) {
          this.o.log.debug('upload failed', { kind: u.kind, key: u.key, err: e });
          return false;
        }
        off = left.length > 0;
      } else off = await this.uploadOne(u);
      if (!off) return false;
      if (this.draining) {
        if (!(await this.drainRetry(tries))) return false;
      } else if (tries > 1) return false;
      else if (!(await this.remoteBack(u.at))) return this.tooOld(u.at);
    }
  }

  // A blob or an entry; true when it did not go up because the remote is switched off.
  private async uploadOne(u: Upload): Promise<boolean> {
    const { remote, local, later } = this.o;
    try {
      if (u.kind === 'blob') {
        // Not up until the server has it (an entry waiting for this upload reads the outcome).
        this.blobNotUp(u.key);
        const data = u.data ?? later.peek('b' + u.key); // still waiting for its local write?
        if (await remote.hasBlob(u.key))
          this.skippedUploads++; // HEAD said it is there already
        else if (remote.coolingDown()) return true;
        else if (data) await remote.putBlob(data, u.key);
        else {
          await remote.putBlobStream(u.key, u.size, async () => {
            const r = await local.openBlob(u.key);
            if (!r) throw new VriftError('ESTORE', 'blob left the local store before its upload', { fields: { digest: u.key } });
            return r.stream;
          });
        }
        this.notUp.delete(u.key);
      } else {
        await Promise.allSettled(u.after);
        if (remote.coolingDown()) return true;
        const b = u.attach ? await readBundle(u.data!, u.attach, later, local) : undefined;
        if (this.orphaned(u.attach, b)) return false;
        await remote.putEntry(u.key, b ? valueOf(b) : u.data!);
      }
    } catch (e) {
      this.o.log.debug('upload failed', { kind: u.kind, key: u.key, err: e });
      return remote.coolingDown();
    }
    return false;
  }

  // Waits until the remote answers again (true), looking every recheckMs; once close() has
  // begun, asks it itself, at once and then again, sooner than that (false when the drain ends
  // first: what waits is dropped). Each look drops what was held too long; with `since` (when
  // the waiting upload was offered), false once that upload has been held too long itself.
  private async remoteBack(since?: number): Promise<boolean> {
    const { remote } = this.o;
    for (let asked = 0; remote.coolingDown(); ) {
      this.expire();
      this.o.looked?.();
      if (since !== undefined && this.tooOld(since)) return false;
      if (this.drained || (this.draining && !remote.askNow)) return false;
      // The drain may have ended during the request: what waits is dropped by then.
      if (this.draining && (await remote.askNow!())) return !this.drained;
      if (this.drained) return false;
      await this.sleep(this.draining ? this.drainWait(asked++) : this.o.recheckMs);
    }
    this.dropSaid = false;
    return true;
  }

  // While the drain runs, after a failed try: waits a little (longer each try), then asks the
  // remote if it is off. True to try again; false once the drain has ended.
  private async drainRetry(tries: number): Promise<boolean> {
    const { remote } = this.o;
    for (let n = tries - 1; !this.drained; n++) {
      await this.sleep(this.drainWait(n));
      if (this.drained) break;
      if (!remote.coolingDown()) return true;
      if (!remote.askNow) break;
      if (await remote.askNow()) return !this.drained;
    }
    return false;
  }

  // The n-th wait (from 0) between tries while the drain runs.
  private drainWait(n: number): number {
    return Math.min(this.o.recheckMs, DRAIN_RETRY_MS * 2 ** Math.min(n, 10));
  }

  // Up to ms; close() wakes it early (its drain begins, or ends).
  private sleep(ms: number): Promise<void> {
    return new Promise<void>((r) => {
      const wake = () => {
        clearTimeout(timer);
        this.sleepers.delete(wake);
        r();
      };
      const timer = setTimeout(wake, ms);
      timer.unref();
      this.sleepers.add(wake);
    });
  }

  private tooOld(offeredAt: number): boolean {
    return this.o.now() - offeredAt >= this.o.maxHeldMs;
  }

  // Drops what has waited maxHeldMs since it was offered.
  private expire(): void {
    if (!this.waiting.some((u) => this.tooOld(u.at))) return;
    const gone = this.waiting.filter((u) => this.tooOld(u.at));
    this.waiting.splice(0, this.waiting.length, ...this.waiting.filter((u) => !this.tooOld(u.at)));
    for (const u of gone) this.discard(u, 'expired');
  }

  // Gives up an upload that has not started: counted, and what waits for it goes on without it.
  private discard(u: Upload, why: 'full' | 'expired' | 'close'): void {
    for (const m of u.members ?? [u]) {
      this.items--;
      this.bytesQueued -= m.data?.length ?? 0;
      this.queuedKeys.delete(m.kind[0] + m.key);
      if (m.kind === 'blob') this.blobNotUp(m.key);
      m.settle?.();
      this.dropped++;
      if (why === 'expired') this.expired++;
    }
    if (why !== 'close') this.said(why);
    if (this.items === 0) for (const r of this.idle.splice(0)) r();
  }

  // The first drop since the remote last answered is logged; the rest are counted (vrift stats).
  private said(why: 'full' | 'expired'): void {
    if (this.dropSaid) return;
    this.dropSaid = true;
    this.o.log.warn(why === 'full' ? 'upload queue full: uploads dropped, the oldest waiting first' : 'uploads held for the remote too long, dropped', {
      cooling_down: this.o.remote.coolingDown(),
      queued: this.items,
      queue_limit: this.o.queueLimit,
      queue_bytes: this.o.queueBytes,
      max_held_ms: this.o.maxHeldMs,
      note: 'further drops are counted in vrift stats (upload_dropped), not logged, until the remote answers again',
    });
  }

  private blobNotUp(digest: string): void {
    // Bounded: the oldest is forgotten first (a Set keeps insertion order).
    this.notUp.delete(digest);
    if (this.notUp.size >= 10_000) this.notUp.delete(this.notUp.values().next().value!);
    this.notUp.add(digest);
  }

  /** True (and counted) when an attachment is neither on the server nor in the bundle. */
  private orphaned(attach: Attach | undefined, b: Bundle | undefined): boolean {
    const missing = attach?.blobs?.find((d) => this.notUp.has(d) && !b?.blobs.some(([x]) => x === d));
    if (missing === undefined) return false;
    this.orphans++;
    this.o.log.debug('entry not uploaded: its object did not go up', { blob: missing });
    return true;
  }
}
