import type { Readable } from 'node:stream';
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
      const on = (v: Buffer | undefined) => {
        left--;
        if (v)
          resolve(v); // a second answer resolves nothing: the first won
        else if (left === 0) resolve(undefined);
      };
      const off = () => on(undefined);
      this.peers.getEntry(key).then(on, off);
      this.remote.getEntry(key).then(on, off);
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
    this.remote.rejected(key, e);
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
    await Promise.all([this.peers.close(), this.remote.close()]);
  }
}
