import type { ChannelLogger } from '../log.js';

// Store writes that wait for a pause in lookups. During a build the daemon shares two cores
// with the compilers, and each stored file costs CPU the build wanted (on the benchmark VM a
// new inode alone is 0.5-0.7 ms of kernel time): results of misses and answers fetched from
// the remote are kept in memory and written when no lookup came for IDLE_MS, when more than
// MAX_BYTES wait, or when asked (close, `vrift stats`, store commands). Reads are answered
// from memory meanwhile. A daemon killed before the pause loses cache entries, nothing else.
// Keys are 'b' + digest (blobs) and 'e' + key (entries); writes keep their order, so an
// entry is never written before the blobs put ahead of it.

const IDLE_MS = 150;
const MAX_BYTES = 8 * 2 ** 20;

interface Item { k: string; data: Buffer; put: () => Promise<unknown> }

export class IdleWriter {
  private readonly pending = new Map<string, Buffer>();
  private readonly queue: Item[] = [];
  private bytes = 0;
  private lastUse = 0;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();

  constructor(private readonly log: ChannelLogger, private readonly o: { idleMs?: number; maxBytes?: number; onError?: (err: unknown) => void } = {}) {}

  /** What waits under `k`, if anything; a lookup, so writes hold off. */
  get(k: string): Buffer | undefined {
    this.lastUse = Date.now();
    return this.pending.get(k);
  }

  has(k: string): boolean {
    return this.pending.has(k);
  }

  add(k: string, data: Buffer, put: () => Promise<unknown>): void {
    this.pending.set(k, data);
    this.queue.push({ k, data, put });
    this.bytes += data.length;
    const max = this.o.maxBytes ?? MAX_BYTES;
    if (this.bytes > max) void this.write(max / 2); // down to half, interleaved with lookups
    else this.arm();
  }

  /** Writes everything now. */
  settle(): Promise<void> {
    return this.write(-1);
  }

  private arm(): void {
    if (this.timer || this.queue.length === 0) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.write('pause');
    }, this.o.idleMs ?? IDLE_MS);
    this.timer.unref();
  }

  // One writer at a time. 'pause': until a lookup comes; a number: until no more than that
  // many bytes wait, lookups or not.
  private write(until: 'pause' | number): Promise<void> {
    const idleMs = this.o.idleMs ?? IDLE_MS;
    this.running = this.running.then(async () => {
      while (this.queue.length > 0) {
        if (until === 'pause' ? Date.now() - this.lastUse < idleMs : this.bytes <= until) return this.arm();
        const it = this.queue.shift()!;
        this.bytes -= it.data.length;
        try {
          await it.put();
        } catch (err) {
          this.log.warn('store write failed, entry dropped', { key: it.k.slice(1), err });
          this.o.onError?.(err);
        }
        if (this.pending.get(it.k) === it.data) this.pending.delete(it.k);
      }
    });
    return this.running;
  }
}
