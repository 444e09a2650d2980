import type { Dirent } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { DIGEST_RE } from '../hash.js';
import { AC_DIR, CAS_DIR } from './layout.js';
import type { Item } from './lru-index.js';

export function isENOENT(e: unknown): boolean {
  return (e as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

/** Runs `fn` over `items` with at most `limit` in flight; results keep input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (x: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

async function readdirOrEmpty(dir: string): Promise<Dirent[]> {
  try {
    return await fs.readdir(dir, { withFileTypes: true });
  } catch (e) {
    // Another process may be clearing the store; a vanished directory is just empty.
    if (isENOENT(e) || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return [];
    throw e;
  }
}

const FANOUT_RE = /^[0-9a-f]{2}$/;
const STAT_CONCURRENCY = 64;

// Everything named like an object is listed, directories included: a directory where a
// file should be is damage that reads and `verify` must find and remove.
export async function scanStore(root: string): Promise<Array<[string, Item]>> {
  const rels: string[] = [];
  for (const top of [CAS_DIR, AC_DIR]) {
    for (const fan of await readdirOrEmpty(path.join(root, top))) {
      if (!FANOUT_RE.test(fan.name)) continue;
      for (const f of await readdirOrEmpty(path.join(root, top, fan.name))) {
        if (DIGEST_RE.test(f.name) && f.name.startsWith(fan.name)) rels.push(`${top}/${fan.name}/${f.name}`);
      }
    }
  }
  const stats = await mapLimit(rels, STAT_CONCURRENCY, async (rel) => {
    try {
      const st = await fs.lstat(path.join(root, rel));
      return [rel, { size: st.isFile() ? st.size : 0, lastUse: st.mtimeMs, recorded: st.mtimeMs }] as [string, Item];
    } catch (e) {
      if (isENOENT(e)) return undefined;
      throw e;
    }
  });
  return stats.filter((x): x is [string, Item] => x !== undefined);
}
