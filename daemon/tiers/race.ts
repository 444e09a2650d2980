import type { Readable } from 'node:stream';
import { LRUCache } from 'lru-cache';
import type { RemoteCounters } from './counters.js';
import type { PeerTier } from './peers.js';
import type { RemoteTier } from './types.js';

/**
 * LAN peers and the remote asked at the same time: the first answer wins (each tier has
 * verified its own). Objects come from the peers that answered lately, else from the remote.
 * Uploads, counters and cool-downs are the remote's: peers are never written to.
 */
export class RaceTier implements RemoteTier {
  readonly name = 'peers+remote';
  // Per key: the tier whose answer a lookup returned, so that a refusal of it blames that tier.
  private readonly gave = new LRUCache<string, RemoteTier>({ max: 4096, ttl: 60_000, ttlAutopurge: false });

  constructor(
    private readonly peers: PeerTier,
    private readonly remote: RemoteTier,
  ) {}

  get url(): string {
    return this.remote.url;
  }

  getEntry(key: string): Promise<Buffer | undefined> {
    return new Promise((resolve) => {
      let left = 2;
      let won = false;
      const on = (tier: RemoteTier, v: Buffer | undefined) => {
        left--;
        if (v && !won) {
          won = true; // a second answer resolves nothing: the first won
          this.gave.set(key, tier);
          resolve(v);
        } else if (left === 0 && !won) resolve(undefined);
      };
      for (const tier of [this.peers, this.remote])
        tier.getEntry(key).then(
          (v) => on(tier, v),
          () => on(tier, undefined),
        );
    });
  }

  async getBlob(digest: string): Promise<Buffer | undefined> {
    return (await this.peers.getBlob(digest)) ?? this.remote.getBlob(digest);
  }

  async getBlobStream(digest: string, size?: number): Promise<Readable | undefined> {
    return (await this.peers.getBlobStream(digest, size)) ?? this.remote.getBlobStream(digest, size);
  }

  hasBlob(digest: string): Promise<boolean> {
    return this.remote.hasBlob(digest);
  }

  putBlob(data: Buffer, digest?: string): Promise<string> {
    return this.remote.putBlob(data, digest);
  }

  putEntry(key: string, value: Buffer): Promise<void> {
    return this.remote.putEntry(key, value);
  }

  putBlobStream(digest: string, size: number, open: () => Promise<Readable>): Promise<void> {
    return this.remote.putBlobStream(digest, size, open);
  }

  counters(): RemoteCounters {
    return this.remote.counters();
  }

  coolingDown(): boolean {
    return this.remote.coolingDown();
  }

  health(): Record<string, unknown> {
    return this.remote.health();
  }

  rejected(key: string, e: Error): void {
    const tier = this.gave.get(key) ?? this.remote;
    this.gave.delete(key);
    tier.rejected(key, e);
  }

  probed(): Promise<void> {
    return this.remote.probed();
  }

  check(): Promise<void> {
    return this.remote.check();
  }

  askNow(): Promise<boolean> {
    return this.remote.askNow?.() ?? Promise.resolve(false);
  }

  nearby(): RemoteTier {
    return this.peers;
  }

  async close(): Promise<void> {
    this.gave.clear();
    await Promise.all([this.peers.close(), this.remote.close()]);
  }
}
