import { randomBytes } from 'node:crypto';
import fs, { type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { TMP_DIR } from './layout.js';
import type { StoreIO } from './types.js';

export const defaultIO: StoreIO = {
  writeFile: (fh, data) => fh.writeFile(data),
  rename: (from, to) => fs.rename(from, to),
};

function code(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}

// Readers (this process or another) only ever see a complete file or none: the temp
// file lives inside the store so rename stays on one filesystem and is atomic, and it is
// opened exclusively so two writers never share one. No fsync: a torn file after a
// power cut fails verification on read and becomes a miss.
export async function writeAtomic(root: string, rel: string, data: Buffer, mtimeMs: number, io: StoreIO): Promise<void> {
  const tmpDir = path.join(root, TMP_DIR);
  const tmp = path.join(tmpDir, `${process.pid}-${randomBytes(8).toString('hex')}`);
  const dest = path.join(root, rel);
  let fh: FileHandle | undefined;
  let renamed = false;
  try {
    try {
      fh = await fs.open(tmp, 'wx', 0o644);
    } catch (e) {
      if (code(e) !== 'ENOENT') throw e;
      await fs.mkdir(tmpDir, { recursive: true }); // someone removed tmp/ under us
      fh = await fs.open(tmp, 'wx', 0o644);
    }
    await io.writeFile(fh, data);
    // The mtime is the last-use time other processes' scans rank eviction by.
    const t = mtimeMs / 1000;
    await fh.utimes(t, t);
    await fh.close();
    fh = undefined;
    try {
      await io.rename(tmp, dest);
    } catch (e) {
      const c = code(e);
      if (c === 'ENOENT') await fs.mkdir(path.dirname(dest), { recursive: true });
      else if (c === 'EISDIR' || c === 'ENOTEMPTY' || c === 'EEXIST') await fs.rm(dest, { recursive: true, force: true });
      else throw e;
      await io.rename(tmp, dest);
    }
    renamed = true;
  } finally {
    if (fh) await fh.close().catch(() => {});
    if (!renamed) await fs.rm(tmp, { force: true }).catch(() => {});
  }
}
