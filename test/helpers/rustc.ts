import { execFileSync } from 'node:child_process';
import path from 'node:path';

// rustc called directly, the way cargo calls it (`vrift-shim <rustc> args`).

/** The toolchain's rustc binary, as cargo runs it (not rustup's proxy). */
export function toolchainRustc(): string {
  return path.join(execFileSync('rustc', ['--print', 'sysroot'], { encoding: 'utf8' }).trim(), 'bin', 'rustc');
}

export interface RustcCall {
  crate: string;
  src: string;
  type: 'lib' | 'rlib' | 'bin';
  out: string;
  /** `--emit=` */
  emit?: string;
  /** Each after a `-C`. */
  codegen?: string[];
  /** Right after the source (cargo puts `--error-format`, `--json` there). */
  flags?: string[];
  /** After `--out-dir`. */
  after?: string[];
}

/** A rustc command line in cargo's order: name, edition 2021, source, flags, type, emit, `-C`s, out dir, the rest. */
export function rustcArgs(c: RustcCall): string[] {
  return [
    '--crate-name',
    c.crate,
    '--edition=2021',
    c.src,
    ...(c.flags ?? []),
    '--crate-type',
    c.type,
    ...(c.emit ? [`--emit=${c.emit}`] : []),
    ...(c.codegen ?? []).flatMap((o) => ['-C', o]),
    '--out-dir',
    c.out,
    ...(c.after ?? []),
  ];
}
