import fs from 'node:fs';
import path from 'node:path';
import { changedBefore, type FsTime } from '../../hot/fs-clock.js';
import type { FileHashes } from '../../hot/file-hashes.js';
import type { DirCache } from '../../hot/dir-cache.js';
import type { Relativizer } from '../relativize.js';

const HAS_INCLUDE = /__has_include(_next)?\s*\(\s*(?:<([^>\n]+)>|"([^"\n]+)")?/g;

/** The literal arguments of every `__has_include(...)` in a file; null if any is not a literal. */
export function hasIncludeArgs(text: string): { name: string; quoted: boolean }[] | null {
  const out: { name: string; quoted: boolean }[] = [];
  for (const m of text.matchAll(HAS_INCLUDE)) {
    if (m[1]) return null;
    const name = m[2] ?? m[3];
    if (name === undefined || path.isAbsolute(name) || name.split('/').includes('..')) return null;
    out.push({ name, quoted: m[3] !== undefined });
  }
  return out;
}

/**
 * `__has_include(<x>)` answers from the include path, and a header it did not find is in
 * no depfile. With literal arguments the answer is pinned like an include: the directories
 * searched before the one that has it are absent candidates (added to `absent`), the file
 * found is an input (added to `files`). Anything else (a macro argument, __has_include_next)
 * is left to preprocessor mode: false. 'too_new': a file found changed since `start`.
 */
export function probeHasIncludes(
  d: { hashes: FileHashes; dirs: DirCache },
  header: string,
  angle: string[],
  quote: string[],
  start: FsTime,
  rel: Relativizer,
  files: [string, string][],
  absent: Map<string, Set<string>>,
): boolean | 'too_new' {
  let text: string;
  try {
    text = fs.readFileSync(header, 'latin1');
  } catch {
    return false;
  }
  const names = hasIncludeArgs(text);
  if (!names) return false;
  for (const { name, quoted } of names) {
    const dirs = quoted ? [path.dirname(header), ...quote] : angle;
    for (const dir of dirs) {
      const cand = path.join(dir, name);
      if (d.dirs.exists(cand)) {
        const fh = d.hashes.get(cand);
        if (!fh) return false; // a directory, or gone meanwhile
        if (!changedBefore(start, fh)) return 'too_new';
        files.push([rel.key(cand), fh.hash]);
        break;
      }
      const dd = rel.key(path.dirname(cand), false);
      let set = absent.get(dd);
      if (!set) absent.set(dd, (set = new Set()));
      set.add(path.basename(cand));
    }
  }
  return true;
}
