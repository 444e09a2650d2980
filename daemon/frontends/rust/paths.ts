import path from 'node:path';
import { Relativizer } from '../relativize.js';

// Path normalization for one rustc call. Cargo runs registry crates with the package's
// own directory as cwd (outside the checkout) while --out-dir, -L and OUT_DIR point into
// the checkout's target directory; base-dir relativization alone would keep those
// absolute. So paths under the target directory (the parent of `deps/`) are keyed relative
// to it, everything else goes through the Relativizer as in the C front-end.
export const TDIR_MARK = '\u0000tdir:';
const TDIR_TEXT = Buffer.from('\u0000vrift-target-dir\u0000');

export function targetDirOf(outDirAbs: string): string {
  return path.basename(outDirAbs) === 'deps' ? path.dirname(outDirAbs) : outDirAbs;
}

// Bytes that may follow a path in text without being part of a longer name.
function boundary(b: number | undefined): boolean {
  return b === undefined || b === 0x2f || b === 0x22 || b === 0x27 || b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09 || b === 0x3a || b === 0x5c;
}

function replaceAll(data: Buffer, needle: Buffer, by: Buffer, atBoundary: boolean): Buffer {
  const parts: Buffer[] = [];
  let from = 0;
  let i = data.indexOf(needle);
  while (i !== -1) {
    if (!atBoundary || boundary(data[i + needle.length])) {
      parts.push(data.subarray(from, i), by);
      from = i + needle.length;
    }
    i = data.indexOf(needle, i + needle.length);
  }
  if (from === 0) return data;
  parts.push(data.subarray(from));
  return Buffer.concat(parts);
}

export class RustPaths {
  readonly rel: Relativizer;
  constructor(readonly cwd: string, baseDir: string, readonly tdir: string) {
    this.rel = new Relativizer(cwd, baseDir);
  }

  key(p: string): string {
    if (path.isAbsolute(p)) {
      const abs = path.normalize(p);
      if (abs === this.tdir) return TDIR_MARK + '.';
      if (abs.startsWith(this.tdir + '/')) return TDIR_MARK + abs.slice(this.tdir.length + 1);
    }
    return this.rel.key(p);
  }

  toAbs(form: string): string {
    if (form.startsWith(TDIR_MARK)) return path.resolve(this.tdir, form.slice(TDIR_MARK.length));
    return Relativizer.toAbs(form, this.cwd);
  }

  // An environment value: paths are normalized, anything else is kept as is.
  envValue(v: string): string {
    return v.startsWith('/') ? this.key(v) : v;
  }

  // Text outputs (dep-info, diagnostics) with the target directory replaced by a marker,
  // and back. `undefined` when the text already holds the marker (never in rustc's output).
  toStored(data: Buffer): Buffer | undefined {
    if (data.indexOf(TDIR_TEXT) !== -1) return undefined;
    return replaceAll(data, Buffer.from(this.tdir), TDIR_TEXT, true);
  }

  fromStored(data: Buffer): Buffer {
    return replaceAll(data, TDIR_TEXT, Buffer.from(this.tdir), false);
  }
}
