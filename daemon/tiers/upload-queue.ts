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
  /** Entries with attachments go up in packs (pack-writer.ts). */
  packs: boolean;
  packQuietMs: number;
  packMaxAgeMs: number;
  busy: () => boolean;
  /** Aborted when the TieredStore starts closing: nothing more is taken. */
  signal: AbortSignal;
}

export interface UploadCounts {
  dropped: number;
  /** HEAD said the blob was already there. */
  skipped: number;
  orphans: number;
  packsUploaded: number;
  /** Uploads accepted and not finished (a pack's members each count), and their payload bytes. */
  items: number;
  bytes: number;
}

// The TieredStore's uploads: a bounded queue the build never waits for. An entry goes up only
// after the blobs offered before it, so a remote reader never sees an entry whose object is
// still on its way; an entry naming a blob that did not go up does not go up either.
// What the queue took is not given up when the remote switches off (a failure, or an answer
// slower than remote_timeout on a loaded machine, starts a cool-down): an upload that did not
// go up for that waits for the remote to answer again and tries once more; once close() has
// begun, the remote is asked at once, and again every recheckMs until the drain ends (one
// slow answer more must not lose them either). Offers made while it is off are taken the
// same way (a check at start that was answered late must not lose the build's next 30 s) and
// wait for it before their first try; past queueLimit / queueBytes they are dropped
// (counted), so a dead server does not fill the daemon's memory.
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
        this.waiting.push({ kind: 'pack', key: members[0].key, size: 0, after: [], members });
        this.pump();
      },
      orphaned: (attach, b) => this.orphaned(attach, b),
    });
  }

  /** A blob: from `data`, or without it (a kept file's descriptor, a large blob) from what waits in `later` or the local store when its turn comes. */
  offerBlob(digest: string, size: number, data?: Buffer): void {
    this.enqueue({ kind: 'blob', key: digest, data, size, after: [] });
  }

  /** An entry, after the blobs offered before it. */
  offerEntry(key: string, value: Buffer, attach?: Attach): void {
    this.enqueue({ kind: 'entry', key, data: value, size: value.length, after: [...this.blobsInFlight], attach });
  }

  counts(): UploadCounts {
    return {
      dropped: this.dropped,
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
      if (timedOut) this.o.log.warn('uploads still queued at close, dropped', { queued: this.items });
      this.waiting.length = 0;
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
    if (this.items >= this.o.queueLimit || this.bytesQueued + (u.data?.length ?? 0) > this.o.queueBytes) {
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
      this.packs.add(u);
      return;
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

  // One upload job, tried again (once) when it did not go up because the remote switched off.
  private async upload(u: Upload): Promise<void> {
    // Offered while the remote was off: it waits for the remote before its first try (and
    // stays replaceable by a newer value meanwhile).
    if (this.o.remote.coolingDown() && !(await this.remoteBack())) return;
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
          return;
        }
        off = left.length > 0;
      } else off = await this.uploadOne(u);
      if (!off || tries > 1 || !(await this.remoteBack())) return;
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
  // begun, asks it itself, at once and then every recheckMs (false when the drain ends first:
  // what waits is dropped).
  private async remoteBack(): Promise<boolean> {
    const { remote } = this.o;
    while (remote.coolingDown()) {
      if (this.drained || (this.draining && !remote.askNow)) return false;
      if (this.draining && (await remote.askNow!())) return true;
      await new Promise<void>((r) => {
        const wake = () => {
          clearTimeout(timer);
          this.sleepers.delete(wake);
          r();
        };
        const timer = setTimeout(wake, this.o.recheckMs);
        timer.unref();
        this.sleepers.add(wake);
      });
    }
    return true;
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
    this.o.log.debug('entry not uploaded: its object did not go up', { blob: missing });
    return true;
  }
}
