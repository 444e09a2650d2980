import type { Stats } from 'node:fs';
import { LRUCache } from 'lru-cache';

/** What tells one version of a store file from another without reading it. */
function sameFile(a: Stats, b: Stats): boolean {
  return a.ino === b.ino && a.dev === b.dev && a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs;
}

/**
 * The decoded content of store files already read and verified (header, decompression,
 * digest or checksum), by their path, with the file's identity when they were read. A read
 * whose file still has that identity (device, inode, size, mtime, ctime: a rewrite is a new
 * file renamed into place, and any change in place moves ctime) is answered from here with
 * one stat instead of a read and a verification. What is returned is always bytes that
 * passed verification; a changed file is read and checked again. Bounded in bytes; files
 * above `maxItem` are not kept (a cyclic scan of large objects would only churn it).
 */
export class VerifiedReads {
  private readonly lru: LRUCache<string, { st: Stats; data: Buffer }>;

  constructor(
    maxBytes: number,
    private readonly maxItem: number,
  ) {
    this.lru = new LRUCache({ maxSize: maxBytes, sizeCalculation: (v) => Math.max(1, v.data.length) });
  }

  /** Whether `rel` has a copy at all (a stat is then worth making). */
  has(rel: string): boolean {
    return this.lru.has(rel);
  }

  /** The bytes verified from `rel` when `st` (a stat made now) is still that file. */
  get(rel: string, st: Stats): Buffer | undefined {
    const v = this.lru.get(rel);
    if (!v) return undefined;
    if (sameFile(v.st, st)) return v.data;
    this.lru.delete(rel);
    return undefined;
  }

  /** `data`: what `rel` decoded to when it was `st`. */
  set(rel: string, st: Stats, data: Buffer): void {
    if (data.length <= this.maxItem) this.lru.set(rel, { st, data });
  }

  delete(rel: string): void {
    this.lru.delete(rel);
  }

  clear(): void {
    this.lru.clear();
  }
}
