// What the gcc/clang drivers accept, as far as vrift needs to know: which options take
// a value, which values are paths, which long spellings map to short ones, and which
// options make a call uncacheable. Checked against gcc 12 and clang 14 with -###.
import type { PassReason } from './types.js';

/** Options whose value is always the next argument (exact match). */
export const SEPARATE_ONLY = new Set([
  '-Xlinker',
  '-Xassembler',
  '-Xpreprocessor',
  '-Xclang',
  '-Xanalyzer',
  '-Xopenmp-target',
  '-Xcuda-ptxas',
  '-Xcuda-fatbinary',
  '-Xarch_host',
  '-Xarch_device',
  '-mllvm',
  '-arch',
  '-target',
  '-aux-info',
  '-dumpbase',
  '-dumpdir',
  '-dumpbase-ext',
  '-wrapper',
  '-MJ',
  '-serialize-diagnostics',
  '--serialize-diagnostics',
  '-working-directory',
  '-include-pch',
  '-iframework',
  '-iframeworkwithsysroot',
  '-iwithsysroot',
  '-isystem-after',
  '-cxx-isystem',
  '-imultiarch',
  '-G',
  '-e',
  '-T',
  '-z',
  '-u',
  '--param',
  '--sysroot',
  '-specs',
  '--specs',
  '-resource-dir',
  '-gcc-toolchain',
  '--gcc-toolchain',
  '-ivfsoverlay',
]);

/** Canonical spelling of separate-value options that have several spellings. */
export const SEPARATE_CANONICAL: Record<string, string> = {
  '--specs': '-specs',
  '-gcc-toolchain': '--gcc-toolchain',
};

/**
 * Options taking a value either joined (`-Ifoo`) or as the next argument (`-I foo`).
 * Longest first, so that `-iwithprefixbefore` is not read as `-iwithprefix` + `before`.
 */
export const JOINED_OR_SEPARATE = [
  '-iwithprefixbefore',
  '-iwithprefix',
  '-imultilib',
  '-idirafter',
  '-isysroot',
  '-isystem',
  '-imacros',
  '-include',
  '-iprefix',
  '-iquote',
  '-MF',
  '-MT',
  '-MQ',
  '-D',
  '-U',
  '-I',
  '-L',
  '-l',
  '-o',
  '-x',
  '-A',
  '-B',
] as const;

/**
 * `name=value` options whose value is a path, with the canonical first token they are
 * split into (the separate spelling where one exists), so the value is a key argument of its own.
 */
export const EQ_PATH: Record<string, string> = {
  '--sysroot=': '--sysroot',
  '-specs=': '-specs',
  '--specs=': '-specs',
  '-resource-dir=': '-resource-dir',
  '--gcc-toolchain=': '--gcc-toolchain',
  '-ivfsoverlay=': '-ivfsoverlay',
  '-fplugin=': '-fplugin=',
  '-fsanitize-blacklist=': '-fsanitize-blacklist=',
  '-fsanitize-ignorelist=': '-fsanitize-ignorelist=',
  '-fsanitize-coverage-allowlist=': '-fsanitize-coverage-allowlist=',
  '-fsanitize-coverage-ignorelist=': '-fsanitize-coverage-ignorelist=',
  '-fsanitize-coverage-whitelist=': '-fsanitize-coverage-whitelist=',
  '-fsanitize-coverage-blacklist=': '-fsanitize-coverage-blacklist=',
  '-fprofile-list=': '-fprofile-list=',
  '-fxray-attr-list=': '-fxray-attr-list=',
  '-fxray-always-instrument=': '-fxray-always-instrument=',
  '-fxray-never-instrument=': '-fxray-never-instrument=',
};

/** Of the canonical path options, those whose file content feeds the compile. */
export const EXTRA_INPUT = new Set([
  '-specs',
  '-ivfsoverlay',
  '-fplugin=',
  '-fsanitize-blacklist=',
  '-fsanitize-ignorelist=',
  '-fsanitize-coverage-allowlist=',
  '-fsanitize-coverage-ignorelist=',
  '-fsanitize-coverage-whitelist=',
  '-fsanitize-coverage-blacklist=',
  '-fprofile-list=',
  '-fxray-attr-list=',
  '-fxray-always-instrument=',
  '-fxray-never-instrument=',
]);

/** Options (canonical spelling) whose value is a filesystem path. */
export const PATH_VALUED = new Set<string>([
  '-I',
  '-isystem',
  '-idirafter',
  '-iquote',
  '-include',
  '-imacros',
  '-isysroot',
  '-iprefix',
  '-L',
  '-B',
  '-T',
  '-iframework',
  '-isystem-after',
  '-cxx-isystem',
  '--sysroot',
  '-resource-dir',
  '--gcc-toolchain',
  ...Object.values(EQ_PATH),
]);

/** gcc's long options (gcc.cc option_map) that are spellings of short ones. */
export const LONG_OPTIONS: Record<string, { short: string; takesArg: boolean }> = {
  '--output': { short: '-o', takesArg: true },
  '--language': { short: '-x', takesArg: true },
  '--include-directory': { short: '-I', takesArg: true },
  '--define-macro': { short: '-D', takesArg: true },
  '--undefine-macro': { short: '-U', takesArg: true },
  '--include': { short: '-include', takesArg: true },
  '--imacros': { short: '-imacros', takesArg: true },
  '--include-prefix': { short: '-iprefix', takesArg: true },
  '--include-with-prefix': { short: '-iwithprefix', takesArg: true },
  '--include-with-prefix-after': { short: '-iwithprefix', takesArg: true },
  '--include-with-prefix-before': { short: '-iwithprefixbefore', takesArg: true },
  '--include-directory-after': { short: '-idirafter', takesArg: true },
  '--library-directory': { short: '-L', takesArg: true },
  '--for-linker': { short: '-Xlinker', takesArg: true },
  '--force-link': { short: '-u', takesArg: true },
  '--entry': { short: '-e', takesArg: true },
  '--assert': { short: '-A', takesArg: true },
  '--compile': { short: '-c', takesArg: false },
  '--preprocess': { short: '-E', takesArg: false },
  '--assemble': { short: '-S', takesArg: false },
  '--dependencies': { short: '-M', takesArg: false },
  '--user-dependencies': { short: '-MM', takesArg: false },
  '--write-dependencies': { short: '-MD', takesArg: false },
  '--write-user-dependencies': { short: '-MMD', takesArg: false },
  '--print-missing-file-dependencies': { short: '-MG', takesArg: false },
  '--save-temps': { short: '-save-temps', takesArg: false },
  '--verbose': { short: '-v', takesArg: false },
  '--no-standard-includes': { short: '-nostdinc', takesArg: false },
  '--trace-includes': { short: '-H', takesArg: false },
};

export interface Refusal {
  reason: PassReason;
  detail: string;
}

const refuse = (reason: PassReason, detail: string): Refusal => ({ reason, detail });

/**
 * Flags (no separate value) that make a call uncacheable: they write files we do not
 * capture, read inputs we do not track, or print things that are not a compile result.
 */
export function refusalFor(arg: string): Refusal | null {
  if (arg === '-v' || arg === '-###' || arg === '-Q' || arg === '--version' || arg === '--target-help' || arg.startsWith('--help'))
    return refuse('informational', arg);
  if (/^--?print-/.test(arg) || /^-dump(version|fullversion|machine|specs)$/.test(arg)) return refuse('informational', arg);
  if (arg === '-save-temps' || arg.startsWith('-save-temps=') || arg === '-save-stats' || arg.startsWith('-save-stats='))
    return refuse('unsupported_option', arg);
  if (arg === '--coverage' || arg === '-ftest-coverage' || arg === '-fprofile-arcs') return refuse('unsupported_option', `${arg} (coverage)`);
  // -fprofile-generate embeds the absolute .gcda path; -fprofile-use reads a profile we do not track.
  if (/^-f(profile-(generate|use|dir|instr-use|sample-use)|auto-profile|cs-profile-generate)(=|$)/.test(arg))
    return refuse('unsupported_option', `${arg} (profile)`);
  if (arg === '-gsplit-dwarf' || arg.startsWith('-gsplit-dwarf=')) return refuse('unsupported_option', `${arg} (split dwarf)`);
  if (arg === '-gtoggle') return refuse('unsupported_option', arg);
  if (arg.startsWith('-fdump-') || arg === '-fstack-usage' || arg.startsWith('-fcallgraph-info'))
    return refuse('unsupported_option', `${arg} (writes extra files)`);
  if (/^-fopt-info.*=/.test(arg) || arg.startsWith('-fsave-optimization-record') || arg.startsWith('-foptimization-record-file'))
    return refuse('unsupported_option', `${arg} (writes extra files)`);
  if (arg.startsWith('-ftime-trace') || arg === '-ftime-report' || arg.startsWith('-ftime-report=') || arg === '-fmem-report' || arg === '-fstats')
    return refuse('unsupported_option', `${arg} (non-deterministic report)`);
  if (arg === '-fsyntax-only') return refuse('unsupported_option', `${arg} (no output)`);
  if (arg === '-MG' || arg === '-MV') return refuse('unsupported_option', arg);
  if (/^-f(modules|module-|cxx-modules|implicit-modules|implicit-module-maps|prebuilt-module|builtin-module-map)/.test(arg)) return refuse('modules', arg);
  if (arg.startsWith('--precompile') || arg === '-emit-pch' || arg === '-emit-module' || arg === '-emit-header-unit') return refuse('pch_output', arg);
  // Dump letters (-dA, -dD, -dp, ...) of cc1; the value-taking -dumpbase/-dumpdir are handled earlier.
  if (/^-d[A-Za-z]+$/.test(arg) && !arg.startsWith('-dump')) return refuse('unsupported_option', arg);
  if (arg.startsWith('-Wa,')) {
    // Assembler listings (-a...) and gas's own depfile (--MD) are files we do not capture.
    for (const p of arg.slice(4).split(',')) if (p.startsWith('-a') || p === '--MD') return refuse('unsupported_option', arg);
  }
  return null;
}

/** Refusals for value-taking options, given their canonical name and value. */
export function refusalForValue(name: string, value: string): Refusal | null {
  switch (name) {
    case '-Xpreprocessor':
      return refuse('unsupported_option', `-Xpreprocessor ${value}`);
    case '-aux-info':
    case '-MJ':
    case '-serialize-diagnostics':
    case '--serialize-diagnostics':
      return refuse('unsupported_option', `${name} (writes extra files)`);
    case '-include-pch':
      return refuse('unsupported_option', `${name} (precompiled header)`);
    case '-wrapper':
    case '-working-directory':
      return refuse('unsupported_option', name);
    case '-Xclang':
      if (/^-(load|add-plugin|plugin|include-pch|emit-pch|dependency-file|MT|module-file-info|fmodule)/.test(value))
        return refuse('unsupported_option', `-Xclang ${value}`);
      return null;
    default:
      return null;
  }
}
