import fs from 'node:fs';
import path from 'node:path';
import type { Watcher } from './watcher.js';

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
//
// With a Watcher, a watched directory's listing is read once and then kept current from
// its events: no stat at all, however busy the directory is.
const STAT = Symbol('stat each candidate');

// null from list() means "nothing can be in there": the directory is gone or is not one. A
// directory we may search but not read (mode 0711) lists nothing yet holds files: STAT.
const gone = (err: unknown) => ['ENOENT', 'ENOTDIR'].includes((err as NodeJS.ErrnoException).code ?? '');

export class DirCache {
  private memo = new Map<string, { mtimeMs: number; ino: number; names: Set<string> }>();
  private watched = new Map<string, { gen: number; names: Set<string> }>();
  private round = new Map<string, Set<string> | null | typeof STAT>();
  constructor(
    private readonly now: () => number = Date.now,
    private readonly recentMs = 2000,
    private readonly watcher?: Watcher,
  ) {
    watcher?.listen({
      changed: () => {},
      entry: (dir, name, added) => {
        const l = this.watched.get(dir);
        if (l) added ? l.names.add(name) : l.names.delete(name);
      },
      reset: () => this.watched.clear(),
    });
  }

  beginRound() {
    this.round.clear();
  }

  exists(file: string): boolean {
    return this.has(path.dirname(file), path.basename(file));
  }

  /** Whether `dir/name` exists (name: one path component). */
  has(dir: string, name: string): boolean {
    const names = this.listRound(dir);
    if (names === STAT) {
      try {
        return fs.statSync(dir + '/' + name, { throwIfNoEntry: false }) !== undefined;
      } catch {
        return false; // ENOTDIR, EACCES: the compiler could not open it either
      }
    }
    return names?.has(name) ?? false;
  }

  private listRound(dir: string): Set<string> | null | typeof STAT {
    let names = this.round.get(dir);
    if (names === undefined) {
      names = this.list(dir);
      this.round.set(dir, names);
    }
    return names;
  }

  private list(dir: string): Set<string> | null | typeof STAT {
    const w = this.watcher;
    if (w && !w.genOf(dir)) {
      // Not watched, perhaps because it does not exist: a watched parent's listing says so
      // without a system call (the -I directories and subdirectories a build never made),
      // and so does a parent that does not exist itself (`<-I dir>/bits/types` for every
      // -I dir without `bits`: that was a failed inotify_add_watch and a stat each, for
      // every miss).
      const parent = path.dirname(dir);
      if (parent !== dir) {
        const up = this.listRound(parent);
        if (up === null) return null;
        if (up instanceof Set && w.genOf(parent) && !up.has(path.basename(dir))) return null;
      }
    }
    const gen = w ? w.ensure(dir) : 0;
    if (gen !== 0) {
      const l = this.watched.get(dir);
      if (l && l.gen === gen) return l.names;
      try {
        const names = new Set(fs.readdirSync(dir));
        this.watched.set(dir, { gen, names });
        return names;
      } catch (err) {
        this.watched.delete(dir);
        return gone(err) ? null : STAT;
      }
    }
    this.watched.delete(dir);
    const st = fs.statSync(dir, { throwIfNoEntry: false });
    if (!st?.isDirectory()) return null;
    const m = this.memo.get(dir);
    if (m && m.mtimeMs === st.mtimeMs && m.ino === st.ino) return m.names;
    if (this.now() - st.mtimeMs <= this.recentMs) {
      this.memo.delete(dir);
      return STAT;
    }
    let names: Set<string>;
    try {
      names = new Set(fs.readdirSync(dir));
    } catch (err) {
      return gone(err) ? null : STAT;
    }
    this.memo.set(dir, { mtimeMs: st.mtimeMs, ino: st.ino, names });
    return names;
  }
}
