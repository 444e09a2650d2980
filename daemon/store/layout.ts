import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DIGEST_RE } from '../hash.js';
import { VriftError } from '../../ipc/errors.js';

// The format version lives in the directory name, so a future layout can sit next to
// this one and old daemons never misread new files.
export const CAS_DIR = 'cas-v1';
export const AC_DIR = 'ac-v1';
export const TMP_DIR = 'tmp';
export const TAG_FILE = 'CACHEDIR.TAG';

// https://bford.info/cachedir/ : backup tools and `tar --exclude-caches` skip the store.
export const CACHEDIR_TAG =
  'Signature: 8a477f597d28d172789f06886806bc55\n' +
  '# This file is a cache directory tag created by vrift.\n' +
  '# For information about cache directory tags, see:\n' +
  '#\thttps://bford.info/cachedir/\n';

export type Kind = 'cas' | 'ac';

export function defaultStoreRoot(): string {
  return path.join(os.homedir(), '.vrift', 'l2');
}

// Every path is built from a validated name, so a key from the wire can never escape.
export function checkHex(what: 'digest' | 'key', s: unknown): string {
  if (typeof s !== 'string' || !DIGEST_RE.test(s)) {
    const shown = typeof s === 'string' ? JSON.stringify(s.slice(0, 80)) : typeof s;
    throw new VriftError('EBADMSG', `invalid ${what} ${shown}: expected 64 lowercase hex characters`, { fields: { what } });
  }
  return s;
}

export function kindDir(kind: Kind): string {
  return kind === 'cas' ? CAS_DIR : AC_DIR;
}

/** Store-relative path, also the index key: `cas-v1/ab/abcd…`. */
export function relPath(kind: Kind, hex: string): string {
  return `${kindDir(kind)}/${hex.slice(0, 2)}/${hex}`;
}

export function kindOf(rel: string): Kind {
  return rel.startsWith(CAS_DIR + '/') ? 'cas' : 'ac';
}

export function hexOf(rel: string): string {
  return rel.slice(rel.lastIndexOf('/') + 1);
}

/** `mkdir -p` one level at a time. Node's own `{ recursive: true }` never returns for a
 * directory whose parent exists but refuses it with ENOENT (`/proc/x`: the kernel says ENOENT,
 * Node makes the parent, finds it there, and tries again forever); here that is an error. */
export async function mkdirp(dir: string, mode?: number): Promise<void> {
  try {
    await fs.mkdir(dir, { mode });
    return;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return;
    const parent = path.dirname(dir);
    if (code !== 'ENOENT' || parent === dir) throw e;
  }
  await mkdirp(path.dirname(dir));
  try {
    await fs.mkdir(dir, { mode });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
}

export async function ensureLayout(root: string): Promise<void> {
  // Only its user reads a new store (DESIGN: security), whatever the directory above allows.
  // One that exists keeps the mode its owner gave it.
  await mkdirp(root, 0o700);
  await mkdirp(path.join(root, TMP_DIR));
  for (const kind of [CAS_DIR, AC_DIR]) {
    // A new store gets its 256 fan-out directories now, at the daemon's start, rather than
    // from its first writes: that is during the first build, and on some disks a new inode
    // costs the compilers 0.3-0.7 ms of kernel CPU (an ext4 without journal skips recently
    // deleted inodes one by one). A store missing some (older versions made them as needed)
    // still works: a write makes its directory when the rename finds none.
    try {
      await fs.mkdir(path.join(root, kind));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') continue;
      throw e;
    }
    await Promise.all(Array.from({ length: 256 }, (_, i) => fs.mkdir(path.join(root, kind, i.toString(16).padStart(2, '0'))).catch(() => {})));
  }
  const tag = path.join(root, TAG_FILE);
  try {
    // 'wx': two processes opening a fresh store at once must not clobber each other.
    await fs.writeFile(tag, CACHEDIR_TAG, { flag: 'wx' });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
}
