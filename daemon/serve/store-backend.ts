import type { Readable } from 'node:stream';
import type { LocalStore } from '../store/local.js';
import type { Backend } from './backend.js';
import { HttpError } from './receive.js';

// Blob files up to this size are read whole (and verified once while unchanged, see
// LocalStore's verifiedCacheBytes): a stream per small GET costs far more than the bytes.
const WHOLE_MAX = 256 * 1024;

// The daemon's own store as `vrift serve` serves it (the same routes and server), read-only:
// what LAN peers read. Results still waiting for their local write are served from memory
// (`pending`), so a teammate's build right after this one finds them. Nothing is ever
// looked up further (no peer or remote tier behind it): a peer's question never fans out.
export class StoreBackend implements Backend {
  readonly description = 'local store (read-only, for LAN peers)';

  constructor(
    private readonly local: LocalStore,
    private readonly pending: (k: string) => Buffer | undefined,
    readonly tmpDir: string,
  ) {}

  async stat(key: string): Promise<number | undefined> {
    const o = await this.open(key);
    o?.body?.destroy();
    return o?.size;
  }

  async open(key: string): Promise<{ size: number; data: Buffer; body?: undefined } | { size: number; body: Readable; data?: undefined } | undefined> {
    const slash = key.indexOf('/');
    const kind = key.slice(0, slash);
    const hex = key.slice(slash + 1);
    if (kind === 'ac') {
      const d = this.pending('e' + hex) ?? (await this.local.getEntry(hex));
      return d && { size: d.length, data: d };
    }
    if (kind === 'cas') {
      const d = this.pending('b' + hex);
      if (d) return { size: d.length, data: d };
      const o = await this.local.readBlob(hex, WHOLE_MAX);
      return o && (o.data ? { size: o.size, data: o.data } : { size: o.size, body: o.stream });
    }
    return undefined; // opaque keys (ccache's layouts) are not part of a daemon's store
  }

  commit(): Promise<void> {
    return Promise.reject(new HttpError(403, 'a peer store is read-only'));
  }

  usage() {
    const u = this.local.usage();
    return { items: u.blobs + u.entries, bytes: u.bytes, maxSize: 0, evictedItems: 0, evictedBytes: 0 };
  }

  close(): Promise<void> {
    return Promise.resolve(); // the store is the daemon's
  }
}
