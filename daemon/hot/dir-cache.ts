import fs from 'node:fs';
import path from 'node:path';

// Directory listings memoised by the directory's mtime: "does <dir>/<name> exist?" costs
// one stat of the directory instead of one stat per candidate path. Used to prove that no
// header appeared earlier on the include path (the shadowing case ccache's direct mode misses).
//
// Within one round (one manifest check) each directory is stat'ed at most once: a round is
// a single moment, and a lookup asks about hundreds of candidates in a few dozen directories.
export class DirCache {
  private memo = new Map<string, { mtimeMs: number; ino: number; names: Set<string> }>();
  private round = new Map<string, Set<string> | null>();
  constructor(private readonly now: () => number = Date.now, private readonly recentMs = 2000) {}

  beginRound() {
    this.round.clear();
  }

  exists(file: string): boolean {
    const dir = path.dirname(file);
    const name = path.basename(file);
    let names = this.round.get(dir);
    if (names === undefined) {
      names = this.list(dir);
      this.round.set(dir, names);
    }
    return names !== null && names.has(name);
  }

  private list(dir: string): Set<string> | null {
    const st = fs.statSync(dir, { throwIfNoEntry: false });
    if (!st || !st.isDirectory()) return null;
    const m = this.memo.get(dir);
    if (m && m.mtimeMs === st.mtimeMs && m.ino === st.ino) return m.names;
    let names: Set<string>;
    try {
      names = new Set(fs.readdirSync(dir));
    } catch {
      return null;
    }
    if (this.now() - st.mtimeMs > this.recentMs) this.memo.set(dir, { mtimeMs: st.mtimeMs, ino: st.ino, names });
    else this.memo.delete(dir);
    return names;
  }
}
