import { LRUCache } from 'lru-cache';
import type { Attach, StoreLike } from '../../store/contract.js';
import { decodedCost, decodeManifest, decodeResult, encodeEntry, MAX_MANIFEST_ENTRIES, type Manifest, type ManifestEntry, type Result } from '../entries.js';
import type { EntryStrings } from '../entry-strings.js';

// Decoded manifests and results stay in memory: a hit then reads only the object's blob
// from disk. The daemon is the only writer of both. Their strings are shared (EntryStrings),
// so what is counted is their own arrays and pointers (decodedCost).
const ENTRY_CACHE_BYTES = 32 * 1024 * 1024;

/** The C/C++ front-end's manifests and results: read through a memory cache, and written. */
export class CcEntries {
  private manifestLocks = new Map<string, Promise<void>>();
  private entries = new LRUCache<string, { value: Manifest | Result }>({ maxSize: ENTRY_CACHE_BYTES });

  constructor(
    private readonly store: StoreLike,
    private readonly strings: EntryStrings,
  ) {}

  async readManifest(key: string): Promise<Manifest | undefined> {
    const hit = this.entries.get('m' + key);
    if (hit) return hit.value as Manifest;
    const buf = await this.store.getEntry(key);
    const m = decodeManifest(buf);
    if (m) this.rememberManifest(key, m);
    return m;
  }

  async readResult(key: string): Promise<Result | undefined> {
    const hit = this.entries.get('r' + key);
    if (hit) return hit.value as Result;
    const buf = await this.store.getEntry(key);
    const r = decodeResult(buf);
    if (r) this.rememberResult(key, r);
    return r;
  }

  /** A result read or just written, its strings shared, so the next hit need not read it back. */
  rememberResult(key: string, r: Result): void {
    this.entries.set('r' + key, { value: this.strings.result(r) }, { size: decodedCost(r) });
  }

  private rememberManifest(key: string, m: Manifest): void {
    this.entries.set('m' + key, { value: this.strings.manifest(m) }, { size: decodedCost(m) });
  }

  /** An evicted or corrupt blob behind a result: the next lookup reads it again. */
  forgetResult(key: string): void {
    this.entries.delete('r' + key);
  }

  /**
   * The shared tiers' manifest under `key` (the team cache's, LAN peers'), whatever the local
   * store holds; not remembered (mergeShared keeps what a lookup used).
   */
  async readSharedManifest(key: string): Promise<Manifest | undefined> {
    return decodeManifest(await this.store.getSharedEntry?.(key));
  }

  addToManifest(key: string, entry: ManifestEntry, pp = false, attach?: Attach): Promise<void> {
    return this.update(
      key,
      (m) => {
        const entries = pp ? [] : [entry, ...m.entries.filter((e) => e.result !== entry.result)].slice(0, MAX_MANIFEST_ENTRIES);
        return { v: 3, entries, ...(pp || m.pp ? { pp: true } : {}) };
      },
      attach,
    );
  }

  /** `used`, an entry of the shared manifest `shared`, first in the local one; then the local entries, then the shared ones it lacked. */
  mergeShared(key: string, used: ManifestEntry, shared: Manifest): Promise<void> {
    return this.update(key, (m) => {
      if (m.pp) return m;
      const seen = new Set<string>();
      const fresh = (e: ManifestEntry) => !seen.has(e.result) && !!seen.add(e.result);
      return { v: 3, entries: [used, ...m.entries, ...shared.entries].filter(fresh).slice(0, MAX_MANIFEST_ENTRIES) };
    });
  }

  // Read-modify-write of one manifest, serialized per key inside the daemon.
  private update(key: string, change: (m: Manifest) => Manifest, attach?: Attach): Promise<void> {
    const prev = this.manifestLocks.get(key) ?? Promise.resolve();
    const next = prev.then(async () => {
      const m: Manifest = (await this.readManifest(key)) ?? { v: 3, entries: [] };
      const next = change(m);
      const buf = encodeEntry(next);
      await this.store.putEntry(key, buf, attach);
      this.rememberManifest(key, next);
    });
    const tail = next.catch(() => {});
    this.manifestLocks.set(key, tail);
    void tail.then(() => {
      if (this.manifestLocks.get(key) === tail) this.manifestLocks.delete(key);
    });
    return next;
  }

  /** Waits for the manifest writes under way, then forgets every entry. */
  async close(): Promise<void> {
    await Promise.all(this.manifestLocks.values());
    this.entries.clear();
  }
}
