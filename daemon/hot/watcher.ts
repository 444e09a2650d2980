import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// Change notification for the directories the daemon's inputs live in, so a memoised hash
// or directory listing can be trusted without a stat on every lookup.
//
// Sound only under three rules, all kept here:
//  - sync() runs at the start of every request and reads every queued event. A file written
//    before the compiler started was queued then (inotify queues inside the write syscall),
//    so after sync() nothing the build did before asking is unseen.
//  - A directory is trusted only with a watch on it and on every ancestor up to /, added
//    before anything in it is read: renaming or replacing any component of the path is an
//    event in the component's parent. Paths through a symlink, on a filesystem where inotify
//    can miss writes (network, FUSE), or sharing an inode with another watched path (bind
//    mounts) are refused, and their files are stat'ed as before.
//  - A lost event (IN_Q_OVERFLOW) or a failed read drops every trust at once.
// Files written through mmap or through a hard link in another directory raise no event
// here; FileHashes refuses to trust files with more than one link, and mmap writes to
// headers are not something compilers or build tools do.

interface Addon {
  open(): number;
  add(fd: number, dir: string): number;
  rm(fd: number, wd: number): number;
  drain(fd: number): (number | string | null)[] | number;
  coarseClockNs(): number;
  IN: Record<string, number>;
}

/** native/build/vrift_watch.node, or undefined when it is not built. */
export function loadAddon(): Addon | undefined {
  try {
    const here = path.dirname(fileURLToPath(import.meta.url));
    // dist/daemon/hot/ and daemon/hot/ are both three levels below the checkout.
    return createRequire(import.meta.url)(path.resolve(here, '../../../native/build/vrift_watch.node')) as Addon;
  } catch {
    return undefined;
  }
}

// Filesystems whose local writes inotify sees (statfs f_type).
const LOCAL_FS = new Set([
  0xef53, // ext2/3/4
  0x58465342, // xfs
  0x9123683e, // btrfs
  0x01021994, // tmpfs
  0x794c7630, // overlayfs
  0xf2f52010, // f2fs
  0x2fc12fc1, // zfs
]);

export interface WatchListener {
  /** Something about the entry `dir/name` changed: its content, metadata, or existence. */
  changed(file: string): void;
  /** `name` appeared in (added) or left (!added) the watched directory `dir`. */
  entry(dir: string, name: string, added: boolean): void;
  /** Every trust is void (lost events). */
  reset(): void;
}

/** A moment in the watcher's history: events applied and watches made up to it. */
export interface WatchMark {
  seq: number;
  gen: number;
}

// Files' last change events, for unchangedSince(); over this many, forgotten at once.
const LAST_CHANGES_MAX = 100_000;

interface Dir {
  wd: number;
  gen: number;
  children: Set<string>;
}

export class Watcher {
  private dirs = new Map<string, Dir>();
  private byWd = new Map<number, string>();
  private refused = new Set<string>();
  private gen = 0;
  private listeners: WatchListener[] = [];
  private timer: NodeJS.Timeout | undefined;
  private seq = 0; // events applied so far
  private lastChange = new Map<string, number>(); // file -> seq of its last event
  private floor = 0; // lastChange forgot what came up to this seq
  /** Counters for `vrift stats`. */
  readonly counts = { events: 0, overflows: 0, refused: 0 };

  private constructor(
    private readonly addon: Addon,
    private fd: number,
    private readonly maxDirs: number,
  ) {}

  /** The watcher, or undefined when the addon is not built or inotify is unavailable. */
  static open(opts: { maxDirs?: number; drainEveryMs?: number } = {}): Watcher | undefined {
    const addon = loadAddon();
    if (!addon) return undefined;
    try {
      const w = new Watcher(addon, addon.open(), opts.maxDirs ?? 8192);
      // Between requests too: a long compile must not let the kernel queue overflow.
      w.timer = setInterval(() => w.sync(), opts.drainEveryMs ?? 200);
      w.timer.unref();
      return w;
    } catch {
      return undefined;
    }
  }

  listen(l: WatchListener) {
    this.listeners.push(l);
  }

  get watched(): number {
    return this.dirs.size;
  }

  /**
   * Watches `dir` and its ancestors; returns the watch's generation (changes whenever the
   * watch is renewed, so trust recorded under an old one lapses), or 0 if `dir` can't be
   * trusted. Call before reading anything in `dir` that will be trusted.
   */
  ensure(dir: string): number {
    const d = this.dirs.get(dir);
    if (d) return d.gen;
    if (this.fd < 0 || this.refused.has(dir) || this.dirs.size >= this.maxDirs) return 0;
    const parent = path.dirname(dir);
    if (parent !== dir && !this.ensure(parent)) return 0;
    const wd = this.addon.add(this.fd, dir);
    if (wd < 0) return 0; // missing, not a directory, no permission: nothing to trust yet
    const other = this.byWd.get(wd);
    let ok = other === undefined;
    if (ok) {
      try {
        ok = fs.realpathSync.native(dir) === dir && LOCAL_FS.has(fs.statfsSync(dir).type);
      } catch {
        ok = false;
      }
    }
    if (!ok) {
      if (other === undefined) this.addon.rm(this.fd, wd);
      this.refused.add(dir);
      this.counts.refused++;
      return 0;
    }
    const entry: Dir = { wd, gen: ++this.gen, children: new Set() };
    this.dirs.set(dir, entry);
    this.byWd.set(wd, dir);
    if (parent !== dir) this.dirs.get(parent)?.children.add(dir);
    return entry.gen;
  }

  /** Now, for a later unchangedSince(). Take it after sync(). */
  mark(): WatchMark {
    return { seq: this.seq, gen: this.gen };
  }

  /**
   * True when `file` provably did not change after `m`: its directory's watch (`wgen`, which
   * also vouches for every ancestor) was made before `m` and is still the one in place, and
   * no event for the file was applied after `m`. Call after sync(), so that everything
   * written up to now has been applied.
   */
  unchangedSince(file: string, wgen: number, m: WatchMark): boolean {
    return wgen !== 0 && wgen <= m.gen && this.genOf(path.dirname(file)) === wgen && (this.lastChange.get(file) ?? this.floor) <= m.seq;
  }

  /** The current generation of a watched directory, 0 if it is not watched. */
  genOf(dir: string): number {
    return this.dirs.get(dir)?.gen ?? 0;
  }

  /** Reads every queued event and applies it. */
  sync(): void {
    if (this.fd < 0) return;
    const ev = this.addon.drain(this.fd);
    if (typeof ev === 'number') {
      this.resetAll();
      return;
    }
    const IN = this.addon.IN;
    for (let i = 0; i < ev.length; i += 3) {
      const wd = ev[i] as number;
      const mask = ev[i + 1] as number;
      const name = ev[i + 2] as string | null;
      this.counts.events++;
      if (mask & IN.Q_OVERFLOW) {
        this.counts.overflows++;
        this.resetAll();
        continue;
      }
      const dir = this.byWd.get(wd);
      if (dir === undefined) continue;
      if (mask & (IN.DELETE_SELF | IN.MOVE_SELF | IN.IGNORED | IN.UNMOUNT) || (name === null && mask & IN.ATTRIB)) {
        this.dropTree(dir);
        continue;
      }
      if (name === null) continue;
      const file = dir === '/' ? '/' + name : dir + '/' + name;
      this.seq++;
      if (this.lastChange.size >= LAST_CHANGES_MAX) {
        this.lastChange.clear();
        this.floor = this.seq;
      }
      this.lastChange.set(file, this.seq);
      for (const l of this.listeners) l.changed(file);
      if (mask & (IN.CREATE | IN.MOVED_TO)) for (const l of this.listeners) l.entry(dir, name, true);
      if (mask & (IN.DELETE | IN.MOVED_FROM)) for (const l of this.listeners) l.entry(dir, name, false);
      // A watched subdirectory renamed, replaced, removed or re-permissioned: everything
      // below it must be looked at afresh, under new watches.
      if (this.dirs.has(file) && mask & (IN.CREATE | IN.MOVED_TO | IN.DELETE | IN.MOVED_FROM | IN.ATTRIB)) this.dropTree(file);
    }
  }

  private dropTree(dir: string) {
    const d = this.dirs.get(dir);
    if (!d) return;
    for (const c of [...d.children]) this.dropTree(c);
    this.dirs.delete(dir);
    this.byWd.delete(d.wd);
    this.addon.rm(this.fd, d.wd);
    const parent = path.dirname(dir);
    if (parent !== dir) this.dirs.get(parent)?.children.delete(dir);
  }

  private resetAll() {
    for (const l of this.listeners) l.reset();
    // Watches stay: they are still in place. Generations move on so nothing recorded
    // before this moment is trusted again without a fresh look.
    for (const d of this.dirs.values()) d.gen = ++this.gen;
  }

  close() {
    clearInterval(this.timer);
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
    this.dirs.clear();
    this.byWd.clear();
  }
}
