import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

// Writes a cached output where the compiler would have written it. Unlink, then create
// exclusively: the same visibility as the compiler writing the file itself, a fresh inode
// (a hard link to the old output is never changed), and on ext4 with `discard` it measured
// 0.18 ms for a 130 KB object against 0.8 ms for rename-over or truncate-in-place, because
// those free the old blocks synchronously. If another writer races us to the name, fall back
// to temp file + rename so the result is still whole.
export function writeFileAtomic(file: string, data: Buffer, mode = 0o644): void {
  fs.rmSync(file, { force: true });
  try {
    fs.writeFileSync(file, data, { mode, flag: 'wx' });
    return;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
      fs.rmSync(file, { force: true });
      throw e;
    }
  }
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.vrift-${crypto.randomBytes(4).toString('hex')}`);
  try {
    fs.writeFileSync(tmp, data, { mode, flag: 'wx' });
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

// Empty files made ahead, for the shims to write a hit's outputs into and rename into place.
//
// Creating a file is most of what writing a small output costs on some disks: on the
// benchmark VM's ext4 (no journal) a new inode takes 0.3-0.7 ms for ~30 s after a `make
// clean` freed many nearby (the allocator skips recently deleted inodes one by one), and a
// warm rebuild creates two per compile (.o, .d). A rename costs ~20 µs. So the daemon keeps
// a pool of empty files in `run/spares/`, made on the thread pool while nothing is asked of
// it (a pause, as the store's writes), and hands one out per output of a hit, to shims that
// ask for them (`sp` in the request), when the output lives on the same filesystem.
// The store's writes take them too (LocalStore.takeSparesFrom): a cold build has no hits and
// writes three store files per compile, which then need no new inode while compilers run.
//
// Each spare is handed out once. Names carry the daemon's pid and a random part, and a
// starting daemon moves the previous one's pool aside (removed in the background): a shim
// still holding an old name finds it gone and creates its file the usual way. The shim
// checks the spare before using it (a regular empty file of its own user, one link) and
// otherwise creates the output itself, so a spare can only ever save time.
const FILL_RETRY_MS = 60_000;

export interface SparesOptions {
  want?: number;
  idleMs?: number;
  /** True while compiles run: the pool waits for them too. */
  busy?: () => boolean;
  now?: () => number;
  /** Told after each look its timer makes, once it has started a fill or decided to wait (tests wait for it). */
  looked?: () => void;
}

export class OutputSpares {
  private ready: string[] = [];
  private dev: number | undefined;
  private devOf = new Map<string, number>();
  private lastUse = 0;
  private uses = 0;
  private timer: NodeJS.Timeout | undefined;
  private filling: Promise<void> | undefined;
  private closed = false;
  private failedAt = -Infinity;
  private seq = 0;
  private readonly tag = `${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
  private readonly want: number;
  private readonly idleMs: number;
  private readonly now: () => number;

  constructor(
    private readonly dir: string,
    private readonly o: SparesOptions = {},
  ) {
    this.want = o.want ?? 1024;
    this.idleMs = o.idleMs ?? 1000; // as the store's writes wait: a build's gaps are not for this
    this.now = o.now ?? Date.now;
  }

  /** Moves a previous pool aside (`trash`: a dir on the same filesystem), makes the dir, starts filling. */
  open(trash: string): void {
    try {
      fs.renameSync(this.dir, path.join(trash, `spares-old-${this.tag}`));
      void fs.promises.rm(path.join(trash, `spares-old-${this.tag}`), { recursive: true, force: true }).catch(() => {});
    } catch {
      // none
    }
    try {
      fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      this.dev = fs.statSync(this.dir).dev;
    } catch {
      this.closed = true; // no pool: shims create their files
      return;
    }
    this.arm();
  }

  /** How many wait. */
  get size(): number {
    return this.ready.length;
  }

  /** A spare for `file` (absolute), or undefined: none left, another filesystem, closed. */
  take(file: string): string | undefined {
    this.touch();
    if (this.ready.length === 0 || this.dev === undefined) return undefined;
    const dir = path.dirname(file);
    let dev = this.devOf.get(dir);
    if (dev === undefined) {
      try {
        dev = fs.statSync(dir).dev;
      } catch {
        return undefined;
      }
      if (this.devOf.size >= 4096) this.devOf.clear();
      this.devOf.set(dir, dev);
    }
    return dev === this.dev ? this.ready.pop() : undefined;
  }

  /**
   * A lookup came: the pool waits for a pause in them, not only in hits. A fresh daemon's
   * first build is cold (no spare is taken), and each spare is a new inode made while the
   * compilers want the cores (see above: 1 024 of them are 0.3-0.7 core-s on that disk).
   */
  touch(): void {
    this.lastUse = this.now();
    this.uses++;
    this.arm();
  }

  private idle(): boolean {
    return this.now() - this.lastUse >= this.idleMs && this.o.busy?.() !== true;
  }

  private arm(): void {
    if (this.timer || this.filling || this.closed || this.ready.length >= this.want) return;
    // After a failed create (a full disk, a removed dir), the next try waits a minute.
    const wait = Math.max(this.idleMs, this.failedAt + FILL_RETRY_MS - this.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.idle()) this.fill();
      else this.arm();
      this.o.looked?.();
    }, wait);
    this.timer.unref();
  }

  // One at a time on the thread pool, until the pool is full or (unless forced) a lookup comes.
  // Not several at once: creates in one directory take its lock in turn, and the threads
  // waiting for it spin (`rwsem_spin_on_owner`): with 16 in flight on 4 threads, the creates of
  // a refill were a third of the daemon's CPU in a warm build's profile, for no more files.
  private fill(force = false): void {
    const from = this.uses;
    this.filling = (async () => {
      // Forced (`vrift stats`): until compiles run or any lookup comes, as a build started.
      while (!this.closed && this.ready.length < this.want && (force ? this.o.busy?.() !== true && this.uses === from : this.idle())) {
        const f = path.join(this.dir, `${this.tag}-${(this.seq++).toString(36)}`);
        const made = await fs.promises
          .open(f, 'wx', 0o600)
          .then((h) => h.close())
          .then(
            () => true,
            () => false,
          );
        if (!made) {
          this.failedAt = this.now();
          break;
        }
        if (this.closed) fs.rm(f, { force: true }, () => {});
        else this.ready.push(f);
      }
    })().finally(() => {
      this.filling = undefined;
      if (!this.closed) this.arm();
    });
  }

  /**
   * Fills the pool now, unless compiles are running, and waits for it at most `ms`, as `vrift
   * stats` has the store's writes done: the benchmark asks after every build, so no spare is
   * made behind another tool's measurement.
   */
  async settleWithin(ms: number): Promise<void> {
    if (!this.filling) {
      if (this.closed || this.o.busy?.() === true || this.ready.length >= this.want || this.now() - this.failedAt < FILL_RETRY_MS) return;
      if (this.timer) clearTimeout(this.timer);
      this.timer = undefined;
      this.fill(true);
    }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.filling, new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
    clearTimeout(timer);
  }

  /** Stops filling; the files go with the dir, last thing at shutdown (or at the next start). */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    await this.filling;
  }

  async remove(): Promise<void> {
    await fs.promises.rm(this.dir, { recursive: true, force: true }).catch(() => {});
  }
}
