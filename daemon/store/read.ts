import { closeSync, constants, fstatSync, openSync, readSync, statSync, type Stats } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { decodeBlob } from './blob-file.js';
import { decodeEntry } from './entry-file.js';
import { hexOf, kindOf } from './layout.js';
import { isENOENT } from './scan.js';
import type { VerifiedReads } from './verified-reads.js';

export type ReadResult =
  | { status: 'hit'; data: Buffer; size: number }
  | { status: 'miss' }
  | { status: 'corrupt'; reason: string; size: number }
  | { status: 'error'; error: unknown };

// O_NONBLOCK: a FIFO planted under an object's name must not hang the daemon.
const READ_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK;

// Never throws: every failure is a miss the caller can count and log. A synchronous read:
// this is the hit path, objects are small and in the page cache, and an async read costs
// several thread-pool round trips (measured: ~10x slower for small files). With `cache`, a
// file read and verified before and unchanged since costs one stat (verified-reads.ts).
export async function readVerified(root: string, rel: string, cache?: VerifiedReads): Promise<ReadResult> {
  const file = path.join(root, rel);
  if (cache?.has(rel)) {
    const st = statOrUndefined(file);
    if (st === undefined) return { status: 'miss' };
    const known = st && cache.get(rel, st);
    if (known) return { status: 'hit', data: known, size: st.size };
  }
  let fd: number;
  try {
    fd = openSync(file, READ_FLAGS);
  } catch (e) {
    if (isENOENT(e)) return { status: 'miss' };
    return { status: 'error', error: e };
  }
  let bytes: Buffer;
  let st: Stats;
  try {
    st = fstatSync(fd);
    if (st.isDirectory()) return { status: 'corrupt', reason: 'a directory, not a file', size: 0 };
    if (!st.isFile()) return { status: 'corrupt', reason: 'not a regular file', size: 0 };
    bytes = readAll(fd, st.size);
  } catch (e) {
    return { status: 'error', error: e };
  } finally {
    closeSync(fd);
  }
  const hex = hexOf(rel);
  const d = kindOf(rel) === 'cas' ? decodeBlob(bytes, hex) : decodeEntry(bytes, hex);
  if (!d.ok) return { status: 'corrupt', reason: d.reason, size: bytes.length };
  // Only what was read as a whole file of the size fstat gave is that file's content.
  if (bytes.length === st.size) cache?.set(rel, st, d.data);
  return { status: 'hit', data: d.data, size: bytes.length };
}

// The stat of `file`; undefined when it is gone; null when it cannot be stat'ed (the read says why).
function statOrUndefined(file: string): Stats | undefined | null {
  try {
    return statSync(file, { throwIfNoEntry: false });
  } catch {
    return null;
  }
}

// `size` bytes at most (a file cut short meanwhile reads shorter: its decoder says so).
function readAll(fd: number, size: number): Buffer {
  const buf = Buffer.allocUnsafeSlow(size); // its own memory: a cached copy keeps no pool slab alive
  let n = 0;
  while (n < size) {
    const got = readSync(fd, buf, n, size - n, n);
    if (got === 0) break;
    n += got;
  }
  return n === size ? buf : buf.subarray(0, n);
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
