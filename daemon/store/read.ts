import fs from 'node:fs/promises';
import path from 'node:path';
import { decodeBlob } from './blob-file.js';
import { decodeEntry } from './entry-file.js';
import { hexOf, kindOf } from './layout.js';
import { isENOENT } from './scan.js';

interface FileId { dev: number; ino: number; size: number }

export type ReadResult =
  | { status: 'hit'; data: Buffer; id: FileId }
  | { status: 'miss' }
  | { status: 'corrupt'; reason: string; id: FileId }
  | { status: 'error'; error: unknown };

// Never throws: every failure is a miss the caller can count and log. The file's
// identity is kept so a corrupt one is removed only if it is still the same file.
export async function readVerified(root: string, rel: string): Promise<ReadResult> {
  let fh: fs.FileHandle | undefined;
  try {
    fh = await fs.open(path.join(root, rel), 'r');
    const st = await fh.stat();
    const id = { dev: st.dev, ino: st.ino, size: st.isFile() ? st.size : 0 };
    if (!st.isFile()) return { status: 'corrupt', reason: 'not a regular file', id };
    const file = await fh.readFile();
    const hex = hexOf(rel);
    const d = kindOf(rel) === 'cas' ? decodeBlob(file, hex) : decodeEntry(file, hex);
    return d.ok ? { status: 'hit', data: d.data, id } : { status: 'corrupt', reason: d.reason, id };
  } catch (e) {
    if (isENOENT(e)) return { status: 'miss' };
    return { status: 'error', error: e };
  } finally {
    await fh?.close().catch(() => {});
  }
}

/** Removes `rel` if it is still the file that was read; true if this call removed it. */
export async function removeIfSame(root: string, rel: string, id: FileId): Promise<boolean> {
  const p = path.join(root, rel);
  try {
    const st = await fs.lstat(p);
    // A writer may have renamed a good copy into place since the read.
    if (st.dev !== id.dev || st.ino !== id.ino) return false;
    await fs.rm(p, { recursive: true, force: true });
    return true;
  } catch (e) {
    if (isENOENT(e)) return false;
    throw e;
  }
}
