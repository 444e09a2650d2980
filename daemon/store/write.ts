import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { TMP_DIR } from './layout.js';
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
export function writeAtomic(root: string, rel: string, data: Buffer, mtimeMs: number, io: StoreIO): void {
  const tmpDir = path.join(root, TMP_DIR);
  const tmp = path.join(tmpDir, `${process.pid}-${randomBytes(8).toString('hex')}`);
  const dest = path.join(root, rel);
  let fd: number | undefined;
  let renamed = false;
  try {
    try {
      fd = fs.openSync(tmp, 'wx', 0o644);
    } catch (e) {
      if (code(e) !== 'ENOENT') throw e;
      fs.mkdirSync(tmpDir, { recursive: true }); // someone removed tmp/ under us
      fd = fs.openSync(tmp, 'wx', 0o644);
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
