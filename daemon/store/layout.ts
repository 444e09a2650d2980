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

export async function ensureLayout(root: string): Promise<void> {
  await fs.mkdir(path.join(root, TMP_DIR), { recursive: true });
  await fs.mkdir(path.join(root, CAS_DIR), { recursive: true });
  await fs.mkdir(path.join(root, AC_DIR), { recursive: true });
  const tag = path.join(root, TAG_FILE);
  try {
    // 'wx': two processes opening a fresh store at once must not clobber each other.
    await fs.writeFile(tag, CACHEDIR_TAG, { flag: 'wx' });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
}
