import fs from 'node:fs/promises';
import path from 'node:path';
import type { ChannelLogger } from '../log.js';
import { TMP_DIR } from './layout.js';
import type { Item } from './lru-index.js';
import { isENOENT, mapLimit } from './scan.js';
import type { CleanResult } from './types.js';

const CONCURRENCY = 16;

// A temp file this old belongs to a writer that died; younger ones may still be in use
// by another process sharing the store.
export const STALE_TMP_MS = 60 * 60 * 1000;

/** Deletes store files; one that is already gone (another process) is not counted. */
export async function removeFiles(root: string, victims: Array<[string, Item]>, log: ChannelLogger): Promise<CleanResult> {
  const r: CleanResult = { removedFiles: 0, removedBytes: 0 };
  await mapLimit(victims, CONCURRENCY, async ([rel, it]) => {
    try {
      await fs.rm(path.join(root, rel), { recursive: true });
      r.removedFiles++;
      r.removedBytes += it.size;
    } catch (e) {
      if (!isENOENT(e)) log.warn('could not remove store file', { path: rel, err: e });
    }
  });
  return r;
}

export async function removeStaleTmp(root: string, now: number, log: ChannelLogger): Promise<void> {
  const dir = path.join(root, TMP_DIR);
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (e) {
    if (!isENOENT(e)) log.warn('cannot list temp dir', { err: e });
    return;
  }
  await mapLimit(names, CONCURRENCY, async (n) => {
    try {
      const st = await fs.lstat(path.join(dir, n));
      if (st.mtimeMs < now - STALE_TMP_MS) await fs.rm(path.join(dir, n), { recursive: true, force: true });
    } catch (e) {
      if (!isENOENT(e)) log.debug('cannot remove stale temp file', { name: n, err: e });
    }
  });
}
