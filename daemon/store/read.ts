import { constants, readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { decodeBlob } from './blob-file.js';
import { decodeEntry } from './entry-file.js';
import { hexOf, kindOf } from './layout.js';
import { isENOENT } from './scan.js';

export type ReadResult =
  | { status: 'hit'; data: Buffer; size: number }
  | { status: 'miss' }
  | { status: 'corrupt'; reason: string; size: number }
  | { status: 'error'; error: unknown };

// O_NONBLOCK: a FIFO planted under an object's name must not hang the daemon.
const READ_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK;

// Never throws: every failure is a miss the caller can count and log. A synchronous read:
// this is the hit path, objects are small and in the page cache, and an async read costs
// several thread-pool round trips (measured: ~10x slower for small files).
export async function readVerified(root: string, rel: string): Promise<ReadResult> {
  let file: Buffer;
  try {
    file = readFileSync(path.join(root, rel), { flag: READ_FLAGS as unknown as string });
  } catch (e) {
    if (isENOENT(e)) return { status: 'miss' };
    if ((e as NodeJS.ErrnoException).code === 'EISDIR') return { status: 'corrupt', reason: 'a directory, not a file', size: 0 };
    return { status: 'error', error: e };
  }
  const hex = hexOf(rel);
  const d = kindOf(rel) === 'cas' ? decodeBlob(file, hex) : decodeEntry(file, hex);
  return d.ok ? { status: 'hit', data: d.data, size: file.length } : { status: 'corrupt', reason: d.reason, size: file.length };
}

/** Removes a corrupt `rel`; true if this call removed it. */
export async function removeCorrupt(root: string, rel: string, sizeRead: number): Promise<boolean> {
  const p = path.join(root, rel);
  try {
    const st = await fs.lstat(p);
    // A writer may have renamed a good copy into place since the read; a different size
    // gives that away in all but freak cases, and then the cost is one miss, not bad data.
    if (st.isFile() && st.size !== sizeRead) return false;
    await fs.rm(p, { recursive: true, force: true });
    return true;
  } catch (e) {
    if (isENOENT(e)) return false;
    throw e;
  }
}
