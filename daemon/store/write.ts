import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { TMP_DIR } from './layout.js';
import { STALE_TMP_MS } from './remove.js';
import type { StoreIO } from './types.js';

export const defaultIO: StoreIO = {
  writeFile: (fd, data) => fs.writeFileSync(fd, data),
  rename: (from, to) => fs.renameSync(from, to),
};

function code(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}

// Readers (this process or another) only ever see a complete file or none: the temp
// file lives inside the store so rename stays on one filesystem and is atomic, and it is
// opened exclusively so two writers never share one. No fsync: a torn file after a
// power cut fails verification on read and becomes a miss.
// Synchronous: entries and objects under the streaming threshold land in the page cache in
// tens of microseconds, and each async step is a thread-pool round trip (a cold libuv build
// spent 0.9 s of daemon CPU in them for 1 300 writes). Large objects go through blob-stream.
// `spare`: an empty temp file made ahead (SpareFiles), used instead of creating one.
export function writeAtomic(root: string, rel: string, data: Buffer, mtimeMs: number, io: StoreIO, spare?: string): void {
  const tmpDir = path.join(root, TMP_DIR);
  let tmp = spare ?? path.join(tmpDir, `${process.pid}-${randomBytes(8).toString('hex')}`);
  const dest = path.join(root, rel);
  let fd: number | undefined;
  let renamed = false;
  try {
    if (spare) {
      try {
        fd = fs.openSync(spare, fs.constants.O_WRONLY);
        fs.fchmodSync(fd, 0o644); // the daemon's output spares are made 0600
      } catch {
        tmp = path.join(tmpDir, `${process.pid}-${randomBytes(8).toString('hex')}`); // gone: make one
      }
    }
    if (fd === undefined) {
      try {
        fd = fs.openSync(tmp, 'wx', 0o644);
      } catch (e) {
        if (code(e) !== 'ENOENT') throw e;
        fs.mkdirSync(tmpDir, { recursive: true }); // someone removed tmp/ under us
        fd = fs.openSync(tmp, 'wx', 0o644);
      }
    }
    io.writeFile(fd, data);
    // The mtime is the last-use time other processes' scans rank eviction by.
    const t = mtimeMs / 1000;
    fs.futimesSync(fd, t, t);
    fs.closeSync(fd);
    fd = undefined;
    try {
      io.rename(tmp, dest);
    } catch (e) {
      const c = code(e);
      if (c === 'ENOENT') fs.mkdirSync(path.dirname(dest), { recursive: true });
      else if (c === 'EISDIR' || c === 'ENOTEMPTY' || c === 'EEXIST') fs.rmSync(dest, { recursive: true, force: true });
      else throw e;
      io.rename(tmp, dest);
    }
    renamed = true;
  } finally {
    if (fd !== undefined) {
      try {
        fs.closeSync(fd);
      } catch {
        // already failing; the original error is the one to report
      }
    }
    if (!renamed) fs.rmSync(tmp, { force: true });
  }
}

// Creating a file is the slow step of a store write on some disks: a fresh inode cost
// 0.35–0.65 ms on the benchmark VM's ext4, where a rename costs 20 µs and opening an existing
// file 3 µs, and a cold build writes three files per compile on the daemon's only thread.
// So a few empty temp files are made ahead on the thread pool, and a write takes one. Made
// on the first write only (a store that is only read never makes any), removed at close.
// (A new store's fan-out directories are made when it is created: layout.ts.)
const SPARE_INFIX = '-s';
/** A spare's name in tmp/ (empty files of a running process, not leftovers). */
export const isSpareName = (n: string): boolean => /^\d+-s[0-9a-f]{16}$/.test(n);

export class SpareFiles {
  private ready: { file: string; born: number }[] = [];
  private filling: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly dir: string,
    o: { want?: number; now?: () => number } = {},
  ) {
    this.want = o.want ?? 32;
    this.now = o.now ?? Date.now;
  }

  private readonly want: number;
  private readonly now: () => number;

  /** An empty temp file of this process, or undefined (the caller creates one). */
  take(): string | undefined {
    const s = this.ready.pop();
    if (this.ready.length < this.want / 2) this.fill();
    // Old enough for another process's stale-temp sweep to remove it meanwhile: not used.
    if (s && this.now() - s.born > STALE_TMP_MS / 2) {
      void fsp.rm(s.file, { force: true }).catch(() => {});
      return undefined;
    }
    return s?.file;
  }

  // On the thread pool, one at a time.
  private fill(): void {
    if (this.filling || this.closed) return;
    this.filling = (async () => {
      while (!this.closed && this.ready.length < this.want) {
        const file = path.join(this.dir, `${process.pid}${SPARE_INFIX}${randomBytes(8).toString('hex')}`);
        try {
          await (await fsp.open(file, 'wx', 0o644)).close();
        } catch {
          return; // no tmp/ (yet), a full disk: writes make their own files
        }
        if (this.closed) await fsp.rm(file, { force: true });
        else this.ready.push({ file, born: this.now() });
      }
    })().finally(() => (this.filling = undefined));
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.filling;
    await Promise.all(this.ready.splice(0).map((s) => fsp.rm(s.file, { force: true }).catch(() => {})));
  }
}
