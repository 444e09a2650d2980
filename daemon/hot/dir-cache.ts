import fs from 'node:fs';
import path from 'node:path';

// Directory listings memoised by the directory's mtime: "does <dir>/<name> exist?" costs
// one stat of the directory instead of one stat per candidate path. Used to prove that no
// header appeared earlier on the include path (the shadowing case ccache's direct mode misses).
//
// Within one round (one manifest check) each directory is stat'ed at most once: a round is
// a single moment, and a lookup asks about hundreds of candidates in a few dozen directories.
// A directory modified in the last `recentMs` (typically one the build is writing its
// objects into, often the source directory itself) is not listed at all: its candidates are
// stat'ed one by one, which stays cheap however many files it holds and however often it
// changes.
const STAT = Symbol('stat each candidate');

export class DirCache {
  private memo = new Map<string, { mtimeMs: number; ino: number; names: Set<string> }>();
  private round = new Map<string, Set<string> | null | typeof STAT>();
  constructor(private readonly now: () => number = Date.now, private readonly recentMs = 2000) {}

  beginRound() {
    this.round.clear();
  }

  exists(file: string): boolean {
    const dir = path.dirname(file);
    let names = this.round.get(dir);
    if (names === undefined) {
      names = this.list(dir);
      this.round.set(dir, names);
    }
    if (names === STAT) {
      try {
        return fs.statSync(file, { throwIfNoEntry: false }) !== undefined;
      } catch {
        return false; // ENOTDIR, EACCES: the compiler could not open it either
      }
    }
    return names !== null && names.has(path.basename(file));
  }

  private list(dir: string): Set<string> | null | typeof STAT {
    const st = fs.statSync(dir, { throwIfNoEntry: false });
    if (!st || !st.isDirectory()) return null;
    const m = this.memo.get(dir);
    if (m && m.mtimeMs === st.mtimeMs && m.ino === st.ino) return m.names;
    if (this.now() - st.mtimeMs <= this.recentMs) {
      this.memo.delete(dir);
      return STAT;
    }
    let names: Set<string>;
    try {
      names = new Set(fs.readdirSync(dir));
    } catch {
      return null;
    }
    this.memo.set(dir, { mtimeMs: st.mtimeMs, ino: st.ino, names });
    return names;
  }
}
