import type { Deferred } from '../deferred.js';

// Stores still being written, by direct key: a lookup for the same key waits for them, so
// the second of two identical compiles in a row hits even while the first is being stored.
export class KeyWrites {
  private writing = new Map<string, Promise<void>>();

  constructor(private readonly deferred: Deferred | undefined) {}

  /** A store of `key` in progress: lookups of the same key wait for it. */
  track(key: string, write: Promise<void>): void {
    const settled = write
      .catch(() => {})
      .finally(() => {
        if (this.writing.get(key) === settled) this.writing.delete(key);
      });
    this.writing.set(key, settled);
  }

  /** What is being written for `key` now, if anything. */
  current(key: string): Promise<void> | undefined {
    return this.writing.get(key);
  }

  // Before a lookup reads a key's manifest: a report of that key being taken in, then its
  // entry waiting for the build's pause, then its store write.
  async settle(key: string): Promise<void> {
    await this.writing.get(key)?.catch(() => {});
    await this.deferred?.run(key);
    await this.writing.get(key)?.catch(() => {});
  }

  /** Waits for every write under way (they never reject). */
  async close(): Promise<void> {
    await Promise.all(this.writing.values());
  }
}
