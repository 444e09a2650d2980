import { AsyncLocalStorage } from 'node:async_hooks';
import fs from 'node:fs';
import { VriftError } from '../../ipc/errors.js';
import type { ChannelLogger } from '../log.js';

// Store writes that wait for a pause in lookups. During a build the daemon shares two cores
// with the compilers, and each stored file costs CPU the build wanted (on the benchmark VM a
// new inode alone is 0.1-0.7 ms of kernel time, more while compilers write theirs): results
// of misses and answers fetched from the remote are kept aside and written when no lookup
// came for IDLE_MS while no compile runs (the daemon knows which misses are still compiling),
// or once they have waited MAX_WAIT_MS with no compile running (MAX_BUSY_WAIT_MS with one),
// or when asked (close, `vrift stats`, store commands). Reads are answered
// from there meanwhile. A daemon killed before the pause loses cache entries, nothing else.
//
// What waits is held in memory up to MAX_BYTES; with a spool file, more goes there (one
// file, appended to: no inode per item), up to MAX_SPOOL_BYTES, so a whole cold build can
// wait for its end without the daemon's memory growing (the memory part is small because it
// shows in RSS one for one). Over either budget, items are written down to half of it,
// lookups or not. Keys are 'b' + digest (blobs) and 'e' + key (entries); writes keep their
// order, so an entry is never written before the blobs put ahead of it.
//
// CPU work can wait the same way (defer()): the C front-end builds a miss's cache entry
// (hashing its inputs, the manifest) at the pause, not while the compilers want the cores.
// With `maxJobWaitMs` (a daemon that uploads to a team server: the entry must exist to go
// up), that work waits no longer than that, busy or not; the writes still wait.
// The reads this work makes itself (a manifest it updates) are not lookups: counted as ones,
// each deferred entry built would hold the next one back for another IDLE_MS.
//
// A blob that is the whole content of a file the build just wrote (an .rlib) can wait as an
// open descriptor of that file instead (addFile()): no copy into the spool (a cold ripgrep
// build stores 255 MB of outputs). Cargo never writes an output in place, and a clean or a
// rebuild that removes or replaces the file leaves the descriptor on the old inode; `check`
// (the digest) refuses what was changed in place anyway.

// A second: cmake's per-target steps and the links leave gaps of a few hundred milliseconds
// in a build's lookups, and writes started in one compete with the build's serial work (a
// fresh machine's build from the remote was measurably slower with a 150 ms pause).
const IDLE_MS = 1000;
// Without a compile running (a warm build: only hits), what has waited this long is written
// even while lookups keep coming, so a long stream of hits cannot hold it back for ever.
const MAX_WAIT_MS = 10_000;
// And while compiles run, what waited this long: a long build still gets its results stored
// as it goes, bounded in what a crash can lose.
const MAX_BUSY_WAIT_MS = 5 * 60_000;
const MAX_BYTES = 4 * 2 ** 20;
const MAX_SPOOL_BYTES = 1024 * 2 ** 20;
// Open descriptors held by addFile(); beyond this, the bytes go to the spool.
const MAX_FILES = 256;

// CPU work that can wait for the pause as well (a front-end building a cache entry): run
// before the writes, under the same rules, or at once when a lookup needs it (runDeferred).
interface Job {
  at: number;
  run: () => Promise<void>;
}

interface Item {
  k: string;
  seq: number; // its place in the queue: items are written (or dropped) in this order
  at: number; // when it was added
  len: number;
  data?: Buffer; // in memory, or
  off?: number; // in the spool file at this offset, or
  fd?: number; // the whole content of this open file (closed once written)
  check?: (data: Buffer) => boolean;
  put: (data: Buffer) => Promise<unknown>;
}

export interface IdleWriterOptions {
  idleMs?: number;
  maxWaitMs?: number;
  maxBusyWaitMs?: number;
  /** Bytes held in memory. */
  maxBytes?: number;
  /** A file for what does not fit in memory (made when first needed, removed by close()). */
  spool?: string;
  maxSpoolBytes?: number;
  /** Descriptors addFile() may hold. */
  maxFiles?: number;
  /** True while the machine is busy for other reasons (compiles running): pauses don't count. */
  busy?: () => boolean;
  /** Deferred work runs once it has waited this long, lookups or busy or not (writes still wait). */
  maxJobWaitMs?: number;
  onError?: (err: unknown) => void;
  /** The clock pauses and waits are measured by (its timers still run in real time: tests move it instead). */
  now?: () => number;
  /** Told after each look its timer makes, once it has written what was due or decided to wait (tests wait for it). */
  looked?: () => void;
}

export class IdleWriter {
  private readonly pending = new Map<string, Item>();
  private readonly queue: Item[] = [];
  private readonly jobs: Job[] = [];
  private readonly jobsByKey = new Map<string, Set<Job>>();
  private bytes = 0; // in memory
  private spooled = 0; // waiting in the spool
  private files = 0; // descriptors held
  private spoolEnd = 0;
  private spoolFd: number | undefined;
  private spoolBroken = false;
  private lastUse = 0;
  private inFlight = 0;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = 0;
  private running: Promise<void> = Promise.resolve();
  // Items ever queued, and how many of them were written or dropped (in queue order); the
  // places of recent failed writes; who waits for a place to be reached (written()).
  private added = 0;
  private processed = 0;
  private readonly failedAt: number[] = [];
  private barriers: { at: number; from: number; r: (ok: boolean) => void }[] = [];
  // Set inside this writer's own work (deferred jobs, writes): reads made there are not lookups.
  private readonly own = new AsyncLocalStorage<true>();
  private readonly now: () => number;

  constructor(
    private readonly log: ChannelLogger,
    private readonly o: IdleWriterOptions = {},
  ) {
    this.now = o.now ?? Date.now;
  }

  /** What waits under `k`, if anything; a lookup (unless made by deferred work), so writes hold off. */
  get(k: string): Buffer | undefined {
    if (this.own.getStore() === undefined) this.lastUse = this.now();
    return this.peek(k);
  }

  /** What waits under `k`, read without counting as a lookup (an upload reading what it sends). */
  peek(k: string): Buffer | undefined {
    const it = this.pending.get(k);
    return it && this.dataOf(it);
  }

  has(k: string): boolean {
    return this.pending.has(k);
  }

  /** What waits (or is being written): bytes in memory and in the spool, items. */
  waiting(): { bytes: number; spooled: number; items: number } {
    return { bytes: this.bytes, spooled: this.spooled, items: this.queue.length + this.inFlight + this.jobs.length };
  }

  /**
   * `work` runs when writes would (a pause, a budget, settle), ahead of them, or when
   * runDeferred(k) asks for it; at most once. Its failure is logged and counted, not thrown.
   */
  defer(k: string, work: () => Promise<void>): void {
    let started: Promise<void> | undefined;
    const job: Job = {
      at: this.now(),
      run: () =>
        (started ??= (async () => {
          this.jobs.splice(this.jobs.indexOf(job), 1);
          const same = this.jobsByKey.get(k)!;
          same.delete(job);
          if (same.size === 0) this.jobsByKey.delete(k);
          try {
            await this.own.run(true, work);
          } catch (err) {
            this.log.warn('deferred store work failed', { err });
            this.o.onError?.(err);
          }
        })()),
    };
    this.jobs.push(job);
    const same = this.jobsByKey.get(k);
    if (same) same.add(job);
    else this.jobsByKey.set(k, new Set([job]));
    this.arm();
  }

  /** Runs the work deferred under `k` now (a lookup that needs its result). */
  async runDeferred(k: string): Promise<void> {
    const same = this.jobsByKey.get(k);
    if (same) for (const job of [...same]) await job.run();
  }

  add(k: string, data: Buffer, put: (data: Buffer) => Promise<unknown>): void {
    const it: Item = { k, seq: ++this.added, at: this.now(), len: data.length, put };
    const max = this.o.maxBytes ?? MAX_BYTES;
    if (this.bytes + data.length > max && this.toSpool(it, data)) this.spooled += it.len;
    else {
      it.data = data;
      this.bytes += data.length;
    }
    this.pending.set(k, it);
    this.queue.push(it);
    const maxSpool = this.o.maxSpoolBytes ?? MAX_SPOOL_BYTES;
    if (this.bytes > max)
      void this.write({ bytes: max / 2 }); // down to half, interleaved with lookups
    else if (this.spooled > maxSpool) void this.write({ spooled: maxSpool / 2 });
    else this.arm();
  }

  /**
   * Like add(), for bytes that are the whole content of the open file `fd` (from offset 0):
   * keeps the descriptor instead of the bytes, and takes it over (closes it) either way.
   * `check` refuses a file changed in place since. False when too many wait that way: the
   * bytes were added the usual way.
   */
  addFile(k: string, fd: number, data: Buffer, put: (data: Buffer) => Promise<unknown>, check: (data: Buffer) => boolean): boolean {
    if (this.files >= (this.o.maxFiles ?? MAX_FILES) || this.pending.has(k)) {
      fs.close(fd, () => {});
      if (!this.pending.has(k)) this.add(k, data, put);
      return false;
    }
    const it: Item = { k, seq: ++this.added, at: this.now(), len: data.length, put, fd, check };
    this.files++;
    this.pending.set(k, it);
    this.queue.push(it);
    this.arm();
    return true;
  }

  /** A place in the queue: what was added so far (for written()). */
  mark(): number {
    return this.added;
  }

  /**
   * Resolves once every item added before this call has been written or dropped (it waits
   * for that, it does not hasten it): true when no write failed among those added after
   * `from` (a mark()), false when one did (it may have been someone else's).
   */
  written(from: number): Promise<boolean> {
    const at = this.added;
    if (this.processed >= at) return Promise.resolve(this.noneFailed(from, at));
    return new Promise((r) => this.barriers.push({ at, from, r }));
  }

  /** Writes everything now. */
  settle(): Promise<void> {
    return this.write('all');
  }

  /** Writes everything now, waiting at most `ms` for it; true when nothing waits any more. */
  async settleWithin(ms: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const done = await Promise.race([this.settle().then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)))]);
    clearTimeout(timer);
    return done || this.queue.length + this.inFlight + this.jobs.length === 0;
  }

  /** Writes everything, then removes the spool file. */
  async close(): Promise<void> {
    await this.settle();
    this.closeSpool();
  }

  private dataOf(it: Item): Buffer | undefined {
    if (it.data) return it.data;
    if (it.fd !== undefined) {
      const b = Buffer.allocUnsafe(it.len);
      try {
        let n = 0;
        while (n < it.len) {
          const r = fs.readSync(it.fd, b, n, it.len - n, n);
          if (r === 0) break;
          n += r;
        }
        if (n === it.len && it.check!(b)) return b;
      } catch (err) {
        this.log.warn('kept output unreadable', { err });
      }
      this.log.warn('a kept output changed before it was stored: not stored', { key: it.k.slice(1) });
      return undefined;
    }
    if (this.spoolFd === undefined || it.off === undefined) return undefined;
    const b = Buffer.allocUnsafe(it.len);
    try {
      if (fs.readSync(this.spoolFd, b, 0, it.len, it.off) === it.len) return b;
    } catch (err) {
      this.log.warn('spool read failed', { err });
    }
    return undefined;
  }

  // Appends to the spool; false (the caller keeps it in memory) when there is none or it fails.
  private toSpool(it: Item, data: Buffer): boolean {
    if (!this.o.spool || this.spoolBroken) return false;
    try {
      this.spoolFd ??= fs.openSync(this.o.spool, 'w+', 0o600);
      let done = 0;
      while (done < data.length) done += fs.writeSync(this.spoolFd, data, done, data.length - done, this.spoolEnd + done);
    } catch (err) {
      // A full disk, a removed directory: memory it is, and the budget writes things down.
      this.log.warn('spool write failed, keeping store writes in memory', { err, spool: this.o.spool });
      this.spoolBroken = true;
      return false;
    }
    it.off = this.spoolEnd;
    this.spoolEnd += data.length;
    return true;
  }

  private closeSpool(): void {
    if (this.spoolFd !== undefined) fs.closeSync(this.spoolFd);
    this.spoolFd = undefined;
    this.spoolEnd = 0;
    if (this.o.spool) fs.rmSync(this.o.spool, { force: true });
  }

  // Item `seq` was written or dropped: the waits for it (and those before it) are over.
  private reached(seq: number): void {
    this.processed = seq;
    if (!this.barriers.some((b) => b.at <= seq)) return;
    const due = this.barriers.filter((b) => b.at <= seq);
    this.barriers = this.barriers.filter((b) => b.at > seq);
    for (const b of due) b.r(this.noneFailed(b.from, b.at));
  }

  private noneFailed(from: number, at: number): boolean {
    return !this.failedAt.some((f) => f > from && f <= at);
  }

  // The next look: after IDLE_MS, or sooner when the oldest deferred work falls due by then.
  private arm(): void {
    if (this.queue.length === 0 && this.jobs.length === 0) return;
    const now = this.now();
    let at = now + (this.o.idleMs ?? IDLE_MS);
    if (this.jobs.length > 0 && this.o.maxJobWaitMs !== undefined) at = Math.min(at, Math.max(now, this.jobs[0].at + this.o.maxJobWaitMs));
    if (this.timer && this.timerAt <= at) return;
    clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.write('pause').then(() => this.o.looked?.());
    }, at - now);
    this.timer.unref();
  }

  // One writer at a time. 'pause': until a lookup comes; a budget: until no more than that
  // waits, lookups or not; 'all': everything.
  private write(until: 'pause' | 'all' | { bytes?: number; spooled?: number }): Promise<void> {
    const idleMs = this.o.idleMs ?? IDLE_MS;
    const jobDue = (): boolean =>
      until === 'pause' && this.jobs.length > 0 && this.o.maxJobWaitMs !== undefined && this.now() - this.jobs[0].at >= this.o.maxJobWaitMs;
    const enough = (): boolean => {
      if (until === 'all') return false;
      if (until === 'pause') {
        const waited = this.now() - Math.min(this.jobs[0]?.at ?? Infinity, this.queue[0]?.at ?? Infinity);
        if (this.o.busy?.() === true) return waited < (this.o.maxBusyWaitMs ?? MAX_BUSY_WAIT_MS);
        return this.now() - this.lastUse < idleMs && waited < (this.o.maxWaitMs ?? MAX_WAIT_MS);
      }
      return until.bytes !== undefined ? this.bytes <= until.bytes : this.spooled <= until.spooled!;
    };
    this.running = this.running.then(async () => {
      // The oldest job due: the ones filed after it run with it (results close in time go up together).
      let jobsNow = false;
      while (this.queue.length > 0 || this.jobs.length > 0) {
        if (this.jobs.length > 0 && (jobsNow ||= jobDue())) {
          await this.jobs[0].run();
          continue;
        }
        if (enough()) return this.arm();
        if (this.jobs.length > 0) {
          await this.jobs[0].run();
          continue;
        }
        const it = this.queue.shift()!;
        if (it.data) this.bytes -= it.len;
        else if (it.fd === undefined) this.spooled -= it.len;
        const data = this.dataOf(it);
        this.inFlight++;
        try {
          if (!data)
            throw new VriftError('ESTORE', it.fd === undefined ? 'spooled store write lost (spool unreadable)' : 'kept output changed before it was stored');
          await this.own.run(true, () => it.put(data));
        } catch (err) {
          this.log.warn('store write failed, entry dropped', { key: it.k.slice(1), err });
          this.o.onError?.(err);
          this.failedAt.push(it.seq);
          if (this.failedAt.length > 1024) this.failedAt.shift();
        } finally {
          this.inFlight--;
          if (it.fd !== undefined) {
            fs.close(it.fd, () => {});
            it.fd = undefined;
            it.len = 0; // never read again
            this.files--;
          }
        }
        if (this.pending.get(it.k) === it) this.pending.delete(it.k);
        this.reached(it.seq);
      }
      // Nothing waits: the spool starts over (its space is given back).
      if (this.spoolFd !== undefined && this.spoolEnd > 0) {
        this.spoolEnd = 0;
        try {
          fs.ftruncateSync(this.spoolFd, 0);
        } catch {
          // the next appends overwrite it anyway
        }
      }
    });
    return this.running;
  }
}
