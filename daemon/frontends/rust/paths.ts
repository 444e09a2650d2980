import path from 'node:path';
import { type KeyForms, Relativizer } from '../relativize.js';

// Path normalization for one rustc call. Cargo runs registry crates with the package's
// own directory as cwd (outside the checkout) while --out-dir, -L and OUT_DIR point into
// the checkout's target directory; base-dir relativization alone would keep those
// absolute. So paths under the target directory (the parent of `deps/`) are keyed relative
// to it, and other paths in the workspace (the parent of `target/`: RUSTFLAGS such as
// --remap-path-prefix=$PWD=/src reach registry crates too) relative to the workspace;
// everything else goes through the Relativizer as in the C front-end.
export const TDIR_MARK = '\u0000tdir:';
export const WS_MARK = '\u0000ws:';
const TDIR_TEXT = Buffer.from('\u0000vrift-target-dir\u0000');

export function targetDirOf(outDirAbs: string): string {
  return path.basename(outDirAbs) === 'deps' ? path.dirname(outDirAbs) : outDirAbs;
}

// The directory holding cargo's `target/` above the target directory, if there is one.
export function workspaceOf(tdir: string): string | null {
  for (let d = tdir; d !== path.dirname(d); d = path.dirname(d)) {
    if (path.basename(d) === 'target') return path.dirname(d) === '/' ? null : path.dirname(d);
  }
  return null;
}

function under(abs: string, dir: string): string | undefined {
  if (abs === dir) return '.';
  return abs.startsWith(dir + '/') ? abs.slice(dir.length + 1) : undefined;
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
  readonly ws: string | null;
  constructor(
    readonly cwd: string,
    baseDir: string,
    readonly tdir: string,
    forms: KeyForms,
  ) {
    this.rel = new Relativizer(cwd, baseDir, forms);
    this.ws = workspaceOf(tdir);
  }

  key(p: string): string {
    if (path.isAbsolute(p)) {
      const abs = path.normalize(p);
      const t = under(abs, this.tdir);
      if (t !== undefined) return TDIR_MARK + t;
      const w = this.ws === null ? undefined : under(abs, this.ws);
      if (w !== undefined) return WS_MARK + w;
    }
    return this.rel.key(p);
  }

  toAbs(form: string): string {
    if (form.startsWith(TDIR_MARK)) return path.resolve(this.tdir, form.slice(TDIR_MARK.length));
    if (form.startsWith(WS_MARK) && this.ws !== null) return path.resolve(this.ws, form.slice(WS_MARK.length));
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
