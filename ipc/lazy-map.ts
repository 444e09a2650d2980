import fs from 'node:fs';
import path from 'node:path';
import { mountRecordFile, mountsDir } from './mounts.js';

// The lazy map of one mounted DIR: the files a hit put there without their bytes (path
// relative to DIR → blob digest, size, mode, the hit's mtime, the store holding the blob).
// The overlay server owns it and appends every change to `run/mounts/<hash>.lazy` (one JSON
// line each), so a restarted server reloads it; the daemon's store reads the digests it names
// (pins: eviction skips them) and `vrift mounts` counts it. Shared by all three, so here.

export interface LazyEntry {
  digest: string;
  size: number;
  /** Permission bits. */
  mode: number;
  /** ms since the epoch: the hit's time, every stat sees it, the materialized file keeps it. */
  mtime: number;
  /** The local store that holds the blob (read and verified there when the file is opened). */
  store: string;
}

/** One appended line: an entry for `p`, or `drop` (materialized, unlinked, replaced). */
export type LazyLine = { p: string; e: LazyEntry } | { p: string; drop: true };

export function lazyMapFile(runDir: string, dir: string): string {
  return mountRecordFile(runDir, dir).replace(/\.json$/, '.lazy');
}

/** The overlay server's socket for `register` requests (next to its mount record). */
export function lazySocketFile(runDir: string, dir: string): string {
  return mountRecordFile(runDir, dir).replace(/\.json$/, '.sock');
}

const HEX64 = /^[0-9a-f]{64}$/;

export function isLazyEntry(e: unknown): e is LazyEntry {
  const x = e as LazyEntry;
  return (
    typeof x === 'object' &&
    x !== null &&
    typeof x.digest === 'string' &&
    HEX64.test(x.digest) &&
    Number.isSafeInteger(x.size) &&
    x.size >= 0 &&
    Number.isInteger(x.mode) &&
    x.mode >= 0 &&
    x.mode <= 0o7777 &&
    Number.isFinite(x.mtime) &&
    typeof x.store === 'string'
  );
}

/** A relative path inside DIR, normalized; undefined for anything that would leave it. */
export function lazyRel(p: string): string | undefined {
  const n = path.posix.normalize(p.replace(/^\/+/, ''));
  if (n === '' || n === '.' || n.startsWith('../') || n === '..' || path.posix.isAbsolute(n)) return undefined;
  return n;
}

/** The map a file holds (its lines replayed; a torn last line is skipped). */
export function readLazyMap(file: string): Map<string, LazyEntry> {
  const map = new Map<string, LazyEntry>();
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return map;
  }
  for (const line of text.split('\n')) {
    if (!line) continue;
    let l: LazyLine;
    try {
      l = JSON.parse(line) as LazyLine;
    } catch {
      continue;
    }
    const p = typeof l.p === 'string' ? lazyRel(l.p) : undefined;
    if (!p) continue;
    if ('drop' in l) map.delete(p);
    else if (isLazyEntry(l.e)) map.set(p, l.e);
  }
  return map;
}

export function lazyLine(l: LazyLine): string {
  return `${JSON.stringify(l)}\n`;
}

/** Count and bytes of the files not yet materialized in `dir`. */
export function lazySummary(runDir: string, dir: string): { files: number; bytes: number } {
  let bytes = 0;
  const map = readLazyMap(lazyMapFile(runDir, dir));
  for (const e of map.values()) bytes += e.size;
  return { files: map.size, bytes };
}

/** Every digest a lazy map of this instance names: the store must keep these blobs. */
export function lazyDigests(runDir: string): Set<string> {
  const out = new Set<string>();
  let names: string[];
  try {
    names = fs.readdirSync(mountsDir(runDir));
  } catch {
    return out;
  }
  for (const n of names) if (n.endsWith('.lazy')) for (const e of readLazyMap(path.join(mountsDir(runDir), n)).values()) out.add(e.digest);
  return out;
}
