import type { Readable } from 'node:stream';

// The one cache contract. Every place that holds blobs and entries has this shape: the local
// store, the write-behind store in front of it, the tiered store (local + remote), every
// remote tier (HTTP, S3) and the LAN peer tier. It lives in store/, which imports neither the
// front-ends nor the tiers, so none of them import each other to name it.
//
// Blobs are content-addressed (`digest`: BLAKE3, 64 lowercase hex); entries are opaque bytes
// under an action-cache `key` (64 lowercase hex). Anything else is refused with EBADMSG.
// What a cache hands back is verified against its digest first: a corrupt or unreadable
// object reads as a miss, never as content.

/** What an entry is uploaded with: keys of entries and digests of blobs in the local store. */
export interface Attach {
  entries?: string[];
  blobs?: string[];
}

export interface Cache {
  /** For logs and stats: 'local', 'write-behind', 'tiered', 'http', 's3', 'peer'. */
  readonly name: string;
  /** Advisory: true when the blob is probably there; only a get verifies it. */
  hasBlob(digest: string): Promise<boolean>;
  /** Verified content, or undefined on a miss (including corrupt or unreadable data). */
  getBlob(digest: string): Promise<Buffer | undefined>;
  /** Stores `data` under its digest and returns it; a given `digest` must match (EINTEGRITY otherwise). */
  putBlob(data: Buffer, digest?: string): Promise<string>;
  /** The entry's bytes, or undefined on a miss. */
  getEntry(key: string): Promise<Buffer | undefined>;
  /** `attach`: what a reader of this entry asks for next (a tier that uploads sends them along; others ignore it). */
  putEntry(key: string, value: Buffer, attach?: Attach): Promise<void>;
  /**
   * Large blobs, streamed: the content never sits in memory whole. The stream fails at its end
   * (EINTEGRITY) unless the bytes hash to `digest`, and as soon as they pass `size` when given
   * (what the entry says); undefined on a miss.
   */
  getBlobStream(digest: string, size?: number): Promise<Readable | undefined>;
  /** Stores `size` bytes from `open()` (called again for a retry) under `digest`. Throws on failure. */
  putBlobStream(digest: string, size: number, open: () => Promise<Readable>): Promise<void>;
  /** Finishes or drops what is in flight and releases what this object owns; idempotent. */
  close(): Promise<void>;
}

/**
 * The cache the front-ends store through: one that also moves large outputs between the
 * build's files and the cache without holding them in memory (a temp file renamed into place).
 */
export interface StoreLike extends Cache {
  /** Large outputs: streamed from the file, `onChunk` sees every chunk as it is read. */
  putBlobFile(file: string, o?: { onChunk?: (c: Buffer) => void }): Promise<{ digest: string; size: number }>;
  /** Large outputs: streamed to `dest`; its size, or undefined on a miss. `size`: what the entry says (bounds a remote's body). */
  copyBlobTo(digest: string, dest: string, mode?: number, size?: number): Promise<number | undefined>;
  /**
   * The shared tiers' value of an entry (the team cache, LAN peers), the local store skipped:
   * an entry that changes (a manifest) may be newer there. Absent: no shared tier.
   */
  getSharedEntry?(key: string): Promise<Buffer | undefined>;
}
