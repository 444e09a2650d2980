import fs from 'node:fs';
import { digestHex } from '../hash.js';

// Flags found while hashing a file: the preprocessor tokens that make an object depend
// on more than the file's bytes (time of day, the file's own mtime, the include path).
export const F_DATE = 1;
export const F_TIME = 2;
export const F_TIMESTAMP = 4;
export const F_HAS_INCLUDE = 8;
export const F_INCBIN = 16;

export interface FileHash {
  hash: string;
  size: number;
  mtimeMs: number;   // microsecond precision is plenty; number stats are much cheaper than bigint ones
  ctimeMs: number;
  flags: number;
}

interface Memo extends FileHash {
  ino: number;
}

const TOKENS: [Buffer, number][] = [
  [Buffer.from('__DATE__'), F_DATE],
  [Buffer.from('__TIME__'), F_TIME],
  [Buffer.from('__TIMESTAMP__'), F_TIMESTAMP],
  [Buffer.from('__has_include'), F_HAS_INCLUDE],
  [Buffer.from('.incbin'), F_INCBIN],
  [Buffer.from('#embed'), F_INCBIN],
];

export function scanFlags(data: Buffer): number {
  let flags = 0;
  // Cheap pre-check: every token contains "__" or "bin"/"embed"; most files have no "__D"/"__T".
  for (const [tok, f] of TOKENS) if (data.indexOf(tok) !== -1) flags |= f;
  return flags;
}

// The daemon's hot hash table: content hashes memoised by (path, size, mtime, ctime, inode).
// A file whose mtime or ctime is within `recentMs` of now is hashed but not memoised:
// coarse filesystem timestamps can hide a second write in the same tick.
export class FileHashes {
  private memo = new Map<string, Memo>();
  constructor(
    private readonly now: () => number = Date.now,
    private readonly recentMs = 2000,
    private readonly maxEntries = 200_000,
  ) {}

  // Returns undefined when the path is missing or not a regular file.
  get(abs: string): FileHash | undefined {
    const st = fs.statSync(abs, { throwIfNoEntry: false });
    if (!st) {
      this.memo.delete(abs);
      return undefined;
    }
    if (!st.isFile()) return undefined;
    const m = this.memo.get(abs);
    if (m && m.size === st.size && m.mtimeMs === st.mtimeMs && m.ctimeMs === st.ctimeMs && m.ino === st.ino) return m;
    let data: Buffer;
    try {
      data = fs.readFileSync(abs);
    } catch {
      return undefined;
    }
    const entry: Memo = { hash: digestHex(data), size: data.length, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino, flags: scanFlags(data) };
    // The bytes we read must be the bytes the stat described; otherwise don't memoise.
    const now = this.now();
    if (data.length === st.size && now - st.mtimeMs > this.recentMs && now - st.ctimeMs > this.recentMs) {
      if (this.memo.size >= this.maxEntries) this.memo.delete(this.memo.keys().next().value as string);
      this.memo.set(abs, entry);
    } else {
      this.memo.delete(abs);
    }
    return entry;
  }

  invalidate(abs: string) {
    this.memo.delete(abs);
  }

  get size(): number {
    return this.memo.size;
  }
}
