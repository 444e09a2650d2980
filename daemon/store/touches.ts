import fs from 'node:fs/promises';
import path from 'node:path';
import type { ChannelLogger } from '../log.js';
import { isENOENT, mapLimit } from './scan.js';

const CONCURRENCY = 16;

// Hits must not wait on a metadata write: the caller updates its index at once, and the
// file's mtime (the last-use time other processes' scans rank eviction by) is written
// here in one batch later.
export class TouchBatcher {
  private readonly pending = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private chain: Promise<void> = Promise.resolve();
  private stopped = false;
  private closing?: Promise<void>;

  constructor(
    private readonly root: string,
    private readonly delayMs: number,
    private readonly log: ChannelLogger,
  ) {}

  add(rel: string, t: number): void {
    this.pending.set(rel, t);
    if (this.timer === undefined && !this.stopped) {
      // Kept ref'd: a process that exits without close() still records its hits first.
      this.timer = setTimeout(() => void this.flush(), this.delayMs);
    }
  }

  /** The file was rewritten or removed: its own mtime is already right, or moot. */
  drop(rel: string): void {
    this.pending.delete(rel);
  }

  /** No new timers from now on; what is pending waits for the final flush(). */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** stop(), then the final flush(); idempotent. */
  close(): Promise<void> {
    this.stop();
    this.closing ??= this.flush();
    return this.closing;
  }

  flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.chain = this.chain.then(async () => {
      const batch = [...this.pending];
      this.pending.clear();
      await mapLimit(batch, CONCURRENCY, async ([rel, t]) => {
        try {
          await fs.utimes(path.join(this.root, rel), t / 1000, t / 1000);
        } catch (e) {
          if (!isENOENT(e)) this.log.debug('could not record last use', { path: rel, err: e });
        }
      });
    });
    return this.chain;
  }
}
