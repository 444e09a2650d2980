import { kindOf } from './layout.js';

export interface Item {
  /** On-disk bytes (header and compression included): what the size limit is about. */
  size: number;
  lastUse: number;
  /** The last use written to the file's mtime, when known (other processes rank by that). */
  recorded?: number;
}

// In-memory accounting of what is on disk. A Map iterates in insertion order, and every
// use re-inserts its key, so iteration runs from least to most recently used: eviction
// is exact LRU without sorting. Rebuilt from disk by a scan; other processes' writes and
// deletions are only seen then, which is why every consumer tolerates drift.
// Files written for a use that has not come (live mode's warm runs: setUnused) come before
// all of them, stamped older than the oldest use, until a use moves them to the end.
export class LruIndex {
  private items = new Map<string, Item>();
  private unused = new Map<string, Item>();
  private bytesTotal = 0;
  private blobCount = 0;

  get bytes(): number {
    return this.bytesTotal;
  }
  get files(): number {
    return this.items.size;
  }
  get blobs(): number {
    return this.blobCount;
  }
  get entries(): number {
    return this.items.size - this.blobCount;
  }

  get(rel: string): Item | undefined {
    return this.items.get(rel) ?? this.unused.get(rel);
  }

  /** Whether `rel` is indexed as not used yet (setUnused, no touch since). */
  isUnused(rel: string): boolean {
    return this.unused.has(rel);
  }

  /** Insert or replace as most recently used. */
  set(rel: string, item: Item): void {
    this.add(this.items, rel, item);
  }

  /** Insert or replace as not used yet: before every used file; `item.lastUse` should be older than theirs. */
  setUnused(rel: string, item: Item): void {
    this.add(this.unused, rel, item);
  }

  private add(into: Map<string, Item>, rel: string, item: Item): void {
    this.delete(rel);
    into.set(rel, { ...item });
    this.bytesTotal += item.size;
    if (kindOf(rel) === 'cas') this.blobCount++;
  }

  /** Marks a use; returns the item, or undefined when the index does not know the file. */
  touch(rel: string, t: number): Item | undefined {
    const it = this.items.get(rel) ?? this.unused.get(rel);
    if (!it) return undefined;
    this.items.delete(rel);
    this.unused.delete(rel);
    it.lastUse = Math.max(it.lastUse, t);
    this.items.set(rel, it);
    return it;
  }

  delete(rel: string): Item | undefined {
    const it = this.items.get(rel) ?? this.unused.get(rel);
    if (!it) return undefined;
    this.items.delete(rel);
    this.unused.delete(rel);
    this.bytesTotal -= it.size;
    if (kindOf(rel) === 'cas') this.blobCount--;
    return it;
  }

  /** The earliest last use of any file: of the first unused one and of the least recently used one. */
  earliestUse(): number | undefined {
    const u = this.unused.values().next();
    const i = this.items.values().next();
    if (u.done) return i.done ? undefined : i.value.lastUse;
    return i.done ? u.value.lastUse : Math.min(u.value.lastUse, i.value.lastUse);
  }

  /** Least recently used first. */
  *oldest(): IterableIterator<[string, Item]> {
    yield* this.unused.entries();
    yield* this.items.entries();
  }

  /**
   * Least recently used first, while over `target` bytes or last used before `cutoff`
   * (or everything with `all`). Stops at the first keeper: the order is by last use.
   */
  victims(sel: { target?: number; cutoff?: number; all?: boolean }, keep: (rel: string) => boolean = () => false): Array<[string, Item]> {
    const out: Array<[string, Item]> = [];
    let bytes = this.bytesTotal;
    for (const [rel, it] of this.oldest()) {
      if (keep(rel)) continue;
      const over = sel.target !== undefined && bytes > sel.target;
      const old = sel.cutoff !== undefined && it.lastUse < sel.cutoff;
      // A fresh unused file ranks first for size, never for age: the used ones after it may be old.
      if (!sel.all && !over && !old) {
        if (this.unused.has(rel)) continue;
        break;
      }
      out.push([rel, it]);
      bytes -= it.size;
    }
    return out;
  }

  /** Replaces everything with a scan's result; callers pass items in any order. */
  reset(items: Iterable<[string, Item]>): void {
    const sorted = [...items].sort((a, b) => a[1].lastUse - b[1].lastUse);
    this.items.clear();
    this.unused.clear();
    this.bytesTotal = 0;
    this.blobCount = 0;
    for (const [rel, it] of sorted) this.set(rel, it);
  }
}
