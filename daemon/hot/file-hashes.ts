import fs from 'node:fs';
import path from 'node:path';
import { Blake3Hasher } from '@napi-rs/blake-hash';
import { digestHex } from '../hash.js';
import { STREAM_MIN } from '../store/blob-stream.js';
import { changedBefore, type FsTime } from './fs-clock.js';
import type { WatchMark, Watcher } from './watcher.js';

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
  mtimeMs: number; // microsecond precision is plenty; number stats are much cheaper than bigint ones
  ctimeMs: number;
  dev: number; // whose clock stamped the times (fs-clock.ts)
  flags: number;
}

interface Memo extends FileHash {
  ino: number;
  dir: string;
  wgen: number; // generation of the watch on `dir` this entry was confirmed under; 0: stat every time
  recent: boolean; // memoised within recentMs of its last change: only good while trusted
}

const TOKENS: [Buffer, number][] = [
  [Buffer.from('__DATE__'), F_DATE],
  [Buffer.from('__TIME__'), F_TIME],
  [Buffer.from('__TIMESTAMP__'), F_TIMESTAMP],
  [Buffer.from('__has_include'), F_HAS_INCLUDE],
  [Buffer.from('.incbin'), F_INCBIN],
  [Buffer.from('#embed'), F_INCBIN],
];

// Files no compiler reads as source: archives (.a, .rlib), ELF objects and libraries, Rust
// metadata. The Rust front-end hashes every --extern crate at each lookup (tens of MB in a
// release build); six token scans cost several times the hash itself. None of these can be
// a C source or header: each starts with bytes that are not valid C ("!<arch>", 0x7f, NUL).
const BINARY_MAGIC = [Buffer.from('!<arch>\n'), Buffer.from('\x7fELF', 'latin1'), Buffer.from('rust\0\0\0', 'latin1')];

export function isBinary(head: Buffer): boolean {
  return BINARY_MAGIC.some((m) => head.length >= m.length && head.compare(m, 0, m.length, 0, m.length) === 0);
}

export function scanFlags(data: Buffer): number {
  if (isBinary(data)) return 0;
  return scanText(data);
}

function scanText(data: Buffer): number {
  let flags = 0;
  for (const [tok, f] of TOKENS) if (data.indexOf(tok) !== -1) flags |= f;
  return flags;
}

// The longest token less one: a match across two chunks starts in the last SEAM bytes.
const SEAM = Math.max(...TOKENS.map(([t]) => t.length)) - 1;

/** Hash and flags of a large file read in 1 MiB chunks: it never sits in memory whole. */
export function hashLarge(abs: string): { hash: string; flags: number; size: number } {
  const fd = fs.openSync(abs, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  const buf = Buffer.allocUnsafe(1 << 20);
  const h = new Blake3Hasher();
  let flags = 0;
  let size = 0;
  let tail = Buffer.alloc(0);
  let text = true;
  try {
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      const c = buf.subarray(0, n);
      h.update(c);
      if (size === 0) text = !isBinary(c);
      if (text) {
        flags |= scanText(c);
        if (tail.length) flags |= scanText(Buffer.concat([tail, c.subarray(0, SEAM)]));
        tail = Buffer.concat([tail, c.subarray(Math.max(0, n - SEAM))]).subarray(-SEAM);
      }
      size += n;
    }
  } finally {
    fs.closeSync(fd);
  }
  return { hash: h.digestBuffer().toString('hex'), flags, size };
}

// The daemon's hot hash table: content hashes memoised by (path, size, mtime, ctime, inode).
// A file whose mtime or ctime is within `recentMs` of now is hashed but not memoised:
// coarse filesystem timestamps can hide a second write in the same tick.
//
// With a Watcher, an entry confirmed by a stat taken after its directory was watched is
// trusted without a stat until an event for the file (or its directory's watch renewing)
// says otherwise: a hit's ~100 header checks then cost no system call at all.
export class FileHashes {
  private memo = new Map<string, Memo>();
  constructor(
    private readonly now: () => number = Date.now,
    private readonly recentMs = 2000,
    private readonly maxEntries = 200_000,
    private readonly watcher?: Watcher,
  ) {
    watcher?.listen({
      changed: (file) => void this.memo.delete(file),
      entry: () => {},
      reset: () => {
        for (const m of this.memo.values()) m.wgen = 0;
      },
    });
  }

  // Returns undefined when the path is missing or not a regular file.
  get(abs: string): FileHash | undefined {
    const w = this.watcher;
    let m = this.memo.get(abs);
    if (m && m.wgen !== 0 && w!.genOf(m.dir) === m.wgen) return m;
    if (m?.recent) m = undefined; // its stat can't vouch for it: rehash
    const dir = m ? m.dir : path.dirname(abs);
    // The watch goes in before the stat: a change after the stat is then an event.
    const gen = w ? w.ensure(dir) : 0;
    const st = fs.statSync(abs, { throwIfNoEntry: false });
    if (!st) {
      this.memo.delete(abs);
      return undefined;
    }
    if (!st.isFile()) return undefined;
    // Another link to the file, or a symlink's target, can be written without an event in
    // this directory.
    const trust = gen !== 0 && st.nlink === 1 && !fs.lstatSync(abs, { throwIfNoEntry: false })?.isSymbolicLink() ? gen : 0;
    if (m && m.size === st.size && m.mtimeMs === st.mtimeMs && m.ctimeMs === st.ctimeMs && m.ino === st.ino && m.dev === st.dev) {
      m.wgen = trust;
      return m;
    }
    let read: { hash: string; flags: number; size: number };
    try {
      if (st.size >= STREAM_MIN) read = hashLarge(abs);
      else {
        const data = fs.readFileSync(abs);
        read = { hash: digestHex(data), flags: scanFlags(data), size: data.length };
      }
    } catch {
      return undefined;
    }
    // The bytes we read must be the bytes the stat described; otherwise don't memoise. A file
    // changed in the last recentMs is memoised only under a watch: a second write within
    // the timestamps' granularity would be invisible to a stat, but not to inotify.
    const now = this.now();
    const recent = now - st.mtimeMs <= this.recentMs || now - st.ctimeMs <= this.recentMs;
    const entry: Memo = {
      hash: read.hash,
      size: read.size,
      mtimeMs: st.mtimeMs,
      ctimeMs: st.ctimeMs,
      dev: st.dev,
      ino: st.ino,
      flags: read.flags,
      dir,
      wgen: trust,
      recent,
    };
    if (read.size === st.size && (!recent || trust !== 0)) {
      if (this.memo.size >= this.maxEntries) this.memo.delete(this.memo.keys().next().value as string);
      this.memo.set(abs, entry);
    } else {
      this.memo.delete(abs);
    }
    return entry;
  }

  /** The watcher's mark (see unchangedSince), if inputs are watched. */
  mark(): WatchMark | undefined {
    return this.watcher?.mark();
  }

  /**
   * Whether `abs`, as get() last hashed it, provably did not change after `mark`: its
   * directory was watched before then and no event for it came since. What settles an input
   * whose timestamps are too close to a compile's start to tell (a header a build step wrote
   * just before it): the compiler, started after the mark, read these very bytes.
   */
  unchangedSince(abs: string, mark: WatchMark | undefined): boolean {
    const m = this.memo.get(abs);
    return mark !== undefined && m !== undefined && this.watcher?.unchangedSince(abs, m.wgen, mark) === true;
  }

  /**
   * Whether the directory entry `abs` (present or not) provably did not change after `mark`:
   * its directory was watched before then and no event for that name came since.
   */
  entryUnchangedSince(abs: string, mark: WatchMark | undefined): boolean {
    const w = this.watcher;
    return mark !== undefined && w?.unchangedSince(abs, w.genOf(path.dirname(abs)), mark) === true;
  }

  /**
   * Whether `dir/name`, present now, was there before `start` (a compile's or link's start):
   * the watcher saw no event for it since `mark`, or neither it nor its directory changed
   * since (a file created, linked or renamed in, or a directory renamed in, gets a new ctime).
   */
  presentBefore(dir: string, name: string, start: FsTime, mark: WatchMark | undefined): boolean {
    const file = dir === '/' ? '/' + name : dir + '/' + name;
    if (this.entryUnchangedSince(file, mark)) return true;
    try {
      const f = fs.statSync(file);
      const d = fs.statSync(dir);
      return changedBefore(start, f) && changedBefore(start, { dev: d.dev, mtimeMs: -Infinity, ctimeMs: d.ctimeMs });
    } catch {
      return false;
    }
  }

  /** Applies the watcher's queued events (the daemon does it at every request). */
  sync(): void {
    this.watcher?.sync();
  }

  invalidate(abs: string) {
    this.memo.delete(abs);
  }

  get size(): number {
    return this.memo.size;
  }
}
