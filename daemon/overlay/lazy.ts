import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { VriftError } from '../../ipc/errors.js';
import { isLazyEntry, lazyLine, lazyRel, readLazyMap, type LazyEntry } from '../../ipc/lazy-map.js';
import { relPath } from '../store/layout.js';
import { readVerified } from '../store/read.js';
import { errno } from './passthrough.js';

// The lazy files of one mounted DIR (docs/overlay.md, "Lazy hits"): paths a hit registered
// (through the socket, lazy-socket.ts) whose bytes are not beneath yet. The handlers
// (lazy-handlers.ts) answer stat and readdir from here and call `materialize` before anything
// reads or changes such a file. `root` names the real DIR (`/proc/self/fd/N` while mounted,
// DIR itself after); nothing here touches a path inside the mount.

const EIO = -5;
const ENOENT = -2;
const ENOTDIR = -20;
/** Temp files a materialization writes beneath before its rename: never listed through the mount. */
export const LAZY_TMP_PREFIX = '.vrift-lazy-';

export class LazyFiles {
  private readonly map = new Map<string, LazyEntry>();
  /** Directory ("" for DIR) → the names of lazy files in it. */
  private readonly byDir = new Map<string, Set<string>>();
  private readonly inflight = new Map<string, Promise<number>>();
  /** Set once the server stops (materializeAll): a registration then would outlive its snapshot. */
  private closing = false;

  private constructor(
    private readonly root: string,
    private readonly file: string,
    private readonly say: (msg: string) => void,
  ) {}

  /**
   * The map `file` holds, less entries a real file beneath has replaced since (built while
   * unmounted: the real one wins), rewritten compacted.
   */
  static load(root: string, file: string, say: (msg: string) => void = () => {}): LazyFiles {
    const l = new LazyFiles(root, file, say);
    const dirs = new Set<string>();
    for (const [p, e] of readLazyMap(file)) {
      dirs.add(path.dirname(path.join(root, p)));
      if (!fs.existsSync(path.join(root, p))) l.index(p, e);
    }
    // A fetch killed before its rename (SIGKILL) leaves its temp file beside the lazy path.
    for (const d of dirs) {
      let names: string[] = [];
      try {
        names = fs.readdirSync(d);
      } catch {}
      for (const n of names) if (n.startsWith(LAZY_TMP_PREFIX)) fs.rmSync(path.join(d, n), { force: true });
    }
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, [...l.map].map(([p, e]) => lazyLine({ p, e })).join(''));
    fs.renameSync(tmp, file);
    return l;
  }

  get count(): number {
    return this.map.size;
  }

  /** The entry of a mount path ("/a/b.o"). */
  get(fusePath: string): LazyEntry | undefined {
    const p = lazyRel(fusePath);
    return p === undefined ? undefined : this.map.get(p);
  }

  /** Names of lazy files directly in the mount directory `fusePath`. */
  namesIn(fusePath: string): Iterable<string> {
    return this.byDir.get(lazyRel(fusePath) ?? '') ?? [];
  }

  /** Whether any lazy file lies below `fusePath` (a directory). */
  hasBelow(fusePath: string): boolean {
    const p = lazyRel(fusePath);
    if (p === undefined) return this.map.size > 0;
    for (const k of this.map.keys()) if (k.startsWith(`${p}/`)) return true;
    return false;
  }

  /** Until the materialization of `fusePath` in flight (if any) ended. */
  async settled(fusePath: string): Promise<void> {
    const p = lazyRel(fusePath);
    if (p !== undefined) await this.inflight.get(p);
  }

  /**
   * Makes `rel` lazy: its directory must exist beneath and nothing may be at `rel` yet, neither
   * beneath nor lazy. Replacing an existing file is refused (the daemon writes it eagerly): the
   * kernel may hold its attributes for a second, and a reader in that second would take the
   * old size for the new object's. Throws when it cannot.
   */
  async register(rel: string, e: LazyEntry): Promise<void> {
    const p = lazyRel(rel);
    if (p === undefined) throw new VriftError('EBADMSG', `not a path inside the mount: ${rel}`);
    if (!isLazyEntry(e)) throw new VriftError('EBADMSG', `${p}: not a lazy entry`);
    const refuse = () => {
      if (this.closing) throw new VriftError('ELAZY', `${p}: the overlay is stopping`);
      if (this.map.has(p) || this.inflight.has(p)) throw new VriftError('ELAZY', `${p} is lazy already`);
    };
    refuse();
    const real = path.join(this.root, p);
    const parent = await fsp.stat(path.dirname(real));
    if (!parent.isDirectory()) throw new VriftError('ELAZY', `${path.dirname(p)} is not a directory`);
    const there = await fsp.lstat(real).then(
      () => true,
      (err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
        return false;
      },
    );
    if (there) throw new VriftError('ELAZY', `${p} exists: written instead`);
    // Checked again after the awaits: a stop or another registration may have come meanwhile.
    refuse();
    this.index(p, e);
    this.append(lazyLine({ p, e }));
  }

  /** Forgets `fusePath` (unlinked, or replaced by a real file): true when it was lazy. */
  drop(fusePath: string): boolean {
    return this.take(fusePath) !== undefined;
  }

  /** Forgets `fusePath`, answering its entry (to `restore` should the change fail). */
  take(fusePath: string): LazyEntry | undefined {
    const p = lazyRel(fusePath);
    const e = p === undefined ? undefined : this.map.get(p);
    if (p === undefined || !e) return undefined;
    this.unindex(p);
    this.append(lazyLine({ p, drop: true }));
    return e;
  }

  /** Makes `fusePath` lazy again with the entry `take` answered (a rename over it failed). */
  restore(fusePath: string, e: LazyEntry): void {
    const p = lazyRel(fusePath);
    if (p === undefined || this.map.has(p)) return;
    this.index(p, e);
    this.append(lazyLine({ p, e }));
  }

  /** A directory renamed: the lazy files below it move with it. */
  renameDir(fromPath: string, toPath: string): void {
    const from = lazyRel(fromPath);
    const to = lazyRel(toPath);
    if (from === undefined || to === undefined) return;
    const moved = [...this.map].filter(([k]) => k.startsWith(`${from}/`));
    let lines = '';
    for (const [k, e] of moved) {
      const n = to + k.slice(from.length);
      this.unindex(k);
      this.index(n, e);
      lines += lazyLine({ p: k, drop: true }) + lazyLine({ p: n, e });
    }
    if (lines) this.append(lines);
  }

  /**
   * Puts the bytes of `fusePath` beneath (0 when it is not lazy, or done; else a negative errno):
   * the blob read from the store and verified, written to a temp file beside it with the mode
   * and the recorded mtime, renamed into place, then the entry dropped. Concurrent callers
   * share one fetch.
   */
  materialize(fusePath: string): Promise<number> {
    const p = lazyRel(fusePath);
    if (p === undefined) return Promise.resolve(0);
    const running = this.inflight.get(p);
    if (running) return running;
    const e = this.map.get(p);
    if (!e) return Promise.resolve(0);
    const run = this.fetch(p, e).finally(() => this.inflight.delete(p));
    this.inflight.set(p, run);
    return run;
  }

  /**
   * Materializes every lazy file it can; those whose bytes cannot be had are forgotten, so the
   * build makes them again (nothing is beneath at their path: never an empty or partial file).
   * Removes the map file when none is left.
   */
  async materializeAll(): Promise<{ written: number; lost: number }> {
    this.closing = true;
    let written = 0;
    let lost = 0;
    for (const p of [...this.map.keys()]) {
      const r = await this.materialize(p);
      if (r === 0) written++;
      else {
        lost++;
        this.say(`${p}: its bytes cannot be had (${r}): removed, the build makes it again`);
        this.drop(p);
      }
    }
    if (this.map.size === 0) fs.rmSync(this.file, { force: true });
    return { written, lost };
  }

  private async fetch(p: string, e: LazyEntry): Promise<number> {
    // Verified as every store read is (a corrupt blob reads as a miss).
    const r = await readVerified(e.store, relPath('cas', e.digest));
    if (r.status !== 'hit' || r.data.length !== e.size) {
      this.say(`${p}: blob ${e.digest.slice(0, 12)} ${r.status === 'hit' ? 'has the wrong size' : r.status} in ${e.store}`);
      return EIO;
    }
    const real = path.join(this.root, p);
    const tmp = path.join(path.dirname(real), `${LAZY_TMP_PREFIX}${path.basename(p)}.${crypto.randomBytes(4).toString('hex')}`);
    try {
      await fsp.writeFile(tmp, r.data, { mode: e.mode, flag: 'wx' });
      await fsp.chmod(tmp, e.mode);
      // Within a few ns of the millisecond every stat through the mount saw (seconds as a
      // double); Node's stat Date, which the passthrough hands on, rounds back to it.
      await fsp.utimes(tmp, e.mtime / 1000, e.mtime / 1000);
      // Dropped or replaced meanwhile (a rename over it, an unregister): what is there now is
      // newer than these bytes. Checked in the same tick as the rename is issued.
      if (this.map.get(p) !== e) {
        await fsp.rm(tmp, { force: true });
        return 0;
      }
      await fsp.rename(tmp, real);
    } catch (err) {
      await fsp.rm(tmp, { force: true }).catch(() => {});
      const code = (err as NodeJS.ErrnoException).code;
      return code === 'ENOENT' ? ENOENT : code === 'ENOTDIR' ? ENOTDIR : errno(err as NodeJS.ErrnoException);
    }
    // Only this entry: it may have been dropped while the rename ran.
    if (this.map.get(p) === e) this.drop(p);
    return 0;
  }

  private index(p: string, e: LazyEntry): void {
    if (this.map.has(p)) this.unindex(p);
    this.map.set(p, e);
    const d = path.posix.dirname(p);
    const key = d === '.' ? '' : d;
    let names = this.byDir.get(key);
    if (!names) this.byDir.set(key, (names = new Set()));
    names.add(path.posix.basename(p));
  }

  private unindex(p: string): void {
    this.map.delete(p);
    const d = path.posix.dirname(p);
    const key = d === '.' ? '' : d;
    const names = this.byDir.get(key);
    names?.delete(path.posix.basename(p));
    if (names?.size === 0) this.byDir.delete(key);
  }

  // Synchronous, on a file outside the mount: lines stay in the order the changes happened.
  private append(lines: string): void {
    fs.appendFileSync(this.file, lines);
  }
}
