import type { ChannelLogger } from '../log.js';

// The few write steps where a full disk or a permission error shows up; tests pass
// failing versions in instead of filling a real disk.
export interface StoreIO {
  writeFile(fd: number, data: Uint8Array): void;
  rename(from: string, to: string): void;
}

export interface LocalStoreOptions {
  /** Store root, e.g. `defaultStoreRoot()` (~/.vrift/l2). Created if missing. */
  root: string;
  /** Bytes; 0 or absent means unlimited. Eviction trims to 90% of it. */
  maxSize?: number;
  /** Milliseconds since last use; 0 or absent means no age limit. */
  maxAge?: number;
  /** zstd level, 1..3: the store is on the hot path, ratio matters less than speed. */
  compressionLevel?: number;
  /** How long hits may wait before their mtime is written back (ms). */
  touchDelayMs?: number;
  /**
   * Bytes of verified content kept in memory, so a file read again unchanged is not read and
   * verified again (verified-reads.ts); 0 or absent: none (a daemon serving LAN peers keeps some).
   */
  verifiedCacheBytes?: number;
  /** Digests eviction must keep (lazy files in mounted overlays name them); asked at each eviction. */
  pinned?: () => ReadonlySet<string>;
  now?: () => number;
  log?: ChannelLogger;
  io?: Partial<StoreIO>;
}

export interface CleanOptions {
  /** Evict least recently used files until the store is at most this many bytes. */
  maxSize?: number;
  /** Remove files not used within this many milliseconds. */
  olderThan?: number;
  /** Remove every blob and entry. */
  all?: boolean;
}

export interface CleanResult {
  removedFiles: number;
  removedBytes: number;
}

export interface VerifyResult {
  /** Files read and checked (ones that vanished meanwhile are not counted). */
  checked: number;
  corrupt: number;
  /** Corrupt files this call deleted (another process may have got there first). */
  removed: number;
  /** On-disk bytes checked. */
  bytes: number;
  removedBytes: number;
}

export interface Usage {
  blobs: number;
  entries: number;
  bytes: number;
  files: number;
}

export interface Counters {
  corrupt: number;
  evictedFiles: number;
  evictedBytes: number;
  /** Files actually written (deduplicated puts are not writes). */
  writes: number;
  /** Payload bytes written, before compression. */
  writeBytes: number;
  /** Hits served. */
  reads: number;
  /** Payload bytes served, after decompression. */
  readBytes: number;
}
