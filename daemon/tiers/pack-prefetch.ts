import type { IdleWriter } from '../store/idle-writer.js';
import type { ChannelLogger } from '../log.js';
import { decodePack } from './bundle.js';
import type { RemoteTier } from './types.js';

export interface PackPrefetchOptions {
  remote: RemoteTier;
  /** What waits for the local store: a member already there is not held again. */
  later: IdleWriter;
  log: ChannelLogger;
  /** Members not asked for yet are held up to this many bytes (the oldest dropped first)... */
  maxBytes: number;
  /** ... and all dropped this long after the last pack arrived. */
  keepMs: number;
  /** Aborted when the TieredStore starts closing: no more packs are fetched or kept. */
  signal: AbortSignal;
}

// How long a lookup waits for packs on their way before it asks the remote for its own key.
const PACK_WAIT_MS = 250;

// The reading side of packs (bundle.ts): a bundle naming a pack fetches the pack (once) in the
// background. Its members wait here, unverified and out of the local store, until a lookup
// asks for one (the caller checks a member like any remote answer).
export class PackPrefetch {
  private readonly members = new Map<string, Buffer>();
  private bytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly seen = new Set<string>();
  private readonly inFlight = new Map<string, Promise<void>>();
  private fetched = 0;
  private bad = 0;

  constructor(private readonly o: PackPrefetchOptions) {}

  fetch(digest: string): void {
    if (this.seen.has(digest) || this.o.signal.aborted || this.bytes >= this.o.maxBytes) return;
    if (this.seen.size >= 100_000) this.seen.clear();
    this.seen.add(digest);
    const p: Promise<void> = (async () => {
      const data = await this.o.remote.getBlob(digest); // verified against the digest, or a miss
      if (!data || this.o.signal.aborted) return;
      let members: [string, Buffer][];
      try {
        members = decodePack(data);
      } catch (e) {
        this.bad++;
        this.o.log.warn('remote pack is malformed, not used', { digest, err: e });
        return;
      }
      this.fetched++;
      for (const [k, d] of members) {
        if (this.members.has(k) || this.o.later.has('e' + k)) continue;
        this.members.set(k, d);
        this.bytes += d.length;
      }
      for (const k of this.members.keys()) {
        if (this.bytes <= this.o.maxBytes) break;
        this.drop(k);
      }
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.dropAll(), this.o.keepMs);
      this.timer.unref();
    })()
      .catch((e) => this.o.log.debug('pack fetch failed', { digest, err: e }))
      .finally(() => this.inFlight.delete(digest));
    this.inFlight.set(digest, p);
  }

  /** Resolves when the pack `digest` has arrived or failed; undefined when it is not on its way. */
  arriving(digest: string): Promise<void> | undefined {
    return this.inFlight.get(digest);
  }

  /** The member under `key`, no longer held. */
  take(key: string): Buffer | undefined {
    const d = this.members.get(key);
    this.drop(key);
    return d;
  }

  /** take(), after waiting up to PACK_WAIT_MS for packs on their way when the member is not here. */
  async takeSoon(key: string): Promise<Buffer | undefined> {
    if (!this.members.has(key) && this.inFlight.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.allSettled([...this.inFlight.values()]), new Promise((r) => (timer = setTimeout(r, PACK_WAIT_MS)))]);
      clearTimeout(timer);
    }
    return this.take(key);
  }

  /** A member the caller refused (a bundle whose blob does not match): counted with malformed packs. */
  refused(key: string, e: Error): void {
    this.bad++;
    this.o.log.warn('pack member refused', { key, err: e });
  }

  /** Packs fetched, and malformed packs plus refused members. */
  counts(): { packs: number; bad: number } {
    return { packs: this.fetched, bad: this.bad };
  }

  /** Drops what is held and its timer (fetches on their way keep nothing: the signal is aborted). */
  close(): Promise<void> {
    clearTimeout(this.timer);
    this.dropAll();
    return Promise.resolve();
  }

  private drop(k: string): void {
    const d = this.members.get(k);
    if (!d) return;
    this.members.delete(k);
    this.bytes -= d.length;
  }

  private dropAll(): void {
    this.members.clear();
    this.bytes = 0;
  }
}
