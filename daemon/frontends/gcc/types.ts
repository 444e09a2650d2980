import type { UncacheableReason } from '../../../ipc/reasons.js';
// Shapes shared by the gcc/clang front-end modules. Kept apart so that callers
// (the daemon's request handlers) can import types without pulling in code.

export interface ParseEnv {
  cwd: string;
  /** Reads an @response file. Receives the path resolved against `cwd`. Throws if unreadable. */
  readFile(p: string): string;
  env: Record<string, string>;
  /**
   * Which driver will run. gcc and clang disagree on a few derivations (the default
   * depfile target of `-Wp,-MD,file`, the order of -MT/-MQ targets, the depfile layout).
   * Defaults to 'gcc'. Use `compilerFlavor(exe)` to guess it from the executable name.
   */
  compiler?: CompilerFlavor;
}

export type CompilerFlavor = 'gcc' | 'clang';

// Why a compile passes through: the registry's names (ipc/reasons.ts).
export type PassReason = UncacheableReason;

export interface GccPass {
  kind: 'pass';
  reason: PassReason;
  detail?: string;
}

export interface DepTarget {
  value: string;
  /** true for -MQ (make-quoted when written), false for -MT (written verbatim). */
  quoted: boolean;
}

export interface DepfileSpec {
  mode: 'MD' | 'MMD';
  /** As given (-MF, -Wp,-MD,<file>) or derived the way the driver derives it; relative to cwd. */
  file: string;
  /** -MT / -MQ in command-line order; empty means the default target. */
  targets: DepTarget[];
  /**
   * What the compiler writes as the (make-quoted) target when `targets` is empty.
   * Differs from `defaultTarget(output)` for gcc with -Wp,-MD,file or -S without -o,
   * where cc1 derives it from the source name.
   */
  defaultTarget: string;
  phony: boolean;
  /** The -MD/-MMD came from -Wp,-M[M]D,<file> (kernel style). */
  viaWp: boolean;
}

export interface IncludeDirs {
  quote: string[];
  angle: string[];
  system: string[];
  after: string[];
}

export interface GccCompile {
  kind: 'compile';
  lang: string;
  /** 'object' for -c, 'assembly' for -S. */
  outputKind: 'object' | 'assembly';
  source: string;
  output: string;
  depfile: null | DepfileSpec;
  keyArgs: string[];
  pathArgs: number[];
  includeDirs: IncludeDirs;
  /** Files named by options whose content changes the result (-specs=, -fplugin=, sanitizer lists). */
  extraInputs: string[];
  debug: boolean;
  coverage: boolean;
  splitDwarf: boolean;
  colorDiagnostics: 'always' | 'never' | 'auto';
  hasPrefixMap: boolean;
  execArgs: string[];
  /** The arguments with @response files expanded in place (what the driver itself sees). */
  expandedArgs: string[];
  compiler: CompilerFlavor;
}

/**
 * `-M`/`-MM` over one or more sources and nothing else (to stdout, or the file -MF or -o
 * names): the dependency lines Makefiles generate (`$(CC) -MM *.c > Makefile.dep`). Cached
 * as one call.
 */
export interface GccDeps {
  kind: 'deps';
  compiler: CompilerFlavor;
  /** Of every source (they must agree). */
  lang: string;
  mode: 'M' | 'MM';
  sources: string[];
  /** Where the rules go (-MF, or -o): null for stdout. */
  outFile: string | null;
  /** Every argument but the sources and -M/-MM, dependency options included (they shape the output). */
  keyArgs: string[];
  pathArgs: number[];
  includeDirs: IncludeDirs;
  extraInputs: string[];
  expandedArgs: string[];
}

export type GccParse = GccCompile | GccPass | GccDeps;
