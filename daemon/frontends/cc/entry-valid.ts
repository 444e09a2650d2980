import type { FileHashes } from '../../hot/file-hashes.js';
import type { DirCache } from '../../hot/dir-cache.js';
import type { ManifestEntry } from '../entries.js';
import type { EntryStrings } from '../entry-strings.js';
import { anchorValid, Relativizer } from '../relativize.js';
import { localDate } from './inputs.js';

// Direct mode, validated: a manifest entry lists every file the compile read with its hash,
// plus the include-path candidates that did not exist. It is valid when all hashes still
// match (the daemon's hot table makes that a stat per file) and none of the absent
// candidates appeared, so a header shadowing another one earlier on the path is a miss.
export class EntryValidity {
  private absOf = new WeakMap<ManifestEntry, { cwd: string; files: string[]; absent: string[] }>();

  constructor(
    private readonly d: { hashes: FileHashes; dirs: DirCache; now: () => number },
    private readonly strings: EntryStrings,
  ) {}

  valid(e: ManifestEntry, cwd: string): boolean {
    if (!anchorValid(e.anchor, cwd)) return false;
    this.d.dirs.beginRound();
    if (e.date && e.date !== localDate(this.d.now())) return false;
    const abs = this.resolvedPaths(e, cwd);
    for (let i = 0; i < abs.files.length; i++) {
      if (this.d.hashes.get(abs.files[i])?.hash !== e.files[2 * i + 1]) return false;
    }
    for (let i = 0; i < e.absent.length; i++) {
      for (const n of this.strings.absentParts(e.absent[i])[1]) if (this.d.dirs.has(abs.absent[i], n)) return false;
    }
    for (const [form, mtime] of e.stamps) if (String(this.d.hashes.get(Relativizer.toAbs(form, cwd))?.mtimeMs) !== mtime) return false;
    return true;
  }

  // An entry's paths resolved for the cwd it was last checked from.
  private resolvedPaths(e: ManifestEntry, cwd: string): { files: string[]; absent: string[] } {
    let r = this.absOf.get(e);
    if (!r || r.cwd !== cwd) {
      const files: string[] = [];
      for (let i = 0; i < e.files.length; i += 2) files.push(Relativizer.toAbs(e.files[i], cwd));
      r = { cwd, files, absent: e.absent.map((a) => Relativizer.toAbs(this.strings.absentParts(a)[0], cwd)) };
      this.absOf.set(e, r);
    }
    return r;
  }
}
