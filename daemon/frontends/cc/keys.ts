import path from 'node:path';
import { KeyHasher } from '../../hash.js';
import type { FileHashes } from '../../hot/file-hashes.js';
import type { CompilerIds } from '../../compilers.js';
import type { GccCompile, GccDeps } from '../gcc/args.js';
import type { Relativizer } from '../relativize.js';

// The C/C++ keys. The direct key covers compiler identity, normalized arguments, the
// environment that changes output and the sources' content; it names a manifest. The
// preprocessor key adds the preprocessed text's hash; the result key the inputs an entry
// was checked with. The tags are part of every key: changing one empties the cache.

// Environment that changes what the compiler produces or prints.
export const KEY_ENV = [
  'CPATH',
  'C_INCLUDE_PATH',
  'CPLUS_INCLUDE_PATH',
  'OBJC_INCLUDE_PATH',
  'OBJCPLUS_INCLUDE_PATH',
  'GCC_EXEC_PREFIX',
  'COMPILER_PATH',
  'SOURCE_DATE_EPOCH',
  'GCC_COMPARE_DEBUG',
  'CCC_OVERRIDE_OPTIONS',
  'LANG',
  'LC_ALL',
  'LC_CTYPE',
  'LC_MESSAGES',
  'LANGUAGE',
  'GCC_COLORS',
  'TZ',
];

// Options whose value is a path, in joined form (the parser hands them to us as they were).
const PATH_PREFIXES = [
  '-isystem',
  '-idirafter',
  '-iquote',
  '-include',
  '-imacros',
  '-isysroot',
  '-iprefix',
  '-iwithprefixbefore',
  '-iwithprefix',
  '--sysroot=',
  '-specs=',
  '-fprofile-use=',
  '-fprofile-instr-use=',
  '-fsanitize-blacklist=',
  '-fsanitize-ignorelist=',
  '-I',
  '-L',
  '-B',
];

function splitPathArg(arg: string): [string, string] {
  if (!arg.startsWith('-')) return ['', arg];
  for (const p of PATH_PREFIXES) if (arg.startsWith(p) && arg.length > p.length) return [p, arg.slice(p.length)];
  return [arg, ''];
}

export interface KeyDeps {
  compilers: CompilerIds;
  hashes: FileHashes;
}

// The key's arguments: path-valued ones in their cwd-relative form, and the content of any
// file an option names (-include, -specs=...) or that changes the result (extraInputs).
function hashArgs(h: KeyHasher, d: KeyDeps, parsed: { keyArgs: string[]; pathArgs: number[]; extraInputs: string[] }, cwd: string, rel: Relativizer): void {
  const pathIdx = new Set(parsed.pathArgs);
  for (let i = 0; i < parsed.keyArgs.length; i++) {
    const a = parsed.keyArgs[i];
    if (!pathIdx.has(i)) {
      h.str(a);
      continue;
    }
    const [opt, p] = splitPathArg(a);
    h.str(opt + rel.key(p));
    const fh = p ? d.hashes.get(path.resolve(cwd, p)) : undefined;
    if (fh) h.str(fh.hash);
  }
  for (const f of parsed.extraInputs) h.str(rel.key(f)).str(d.hashes.get(path.resolve(cwd, f))?.hash ?? '\u0000missing');
}

function hashEnv(h: KeyHasher, env: Record<string, string>): void {
  for (const k of KEY_ENV) h.str(k).str(env[k] ?? '\u0000');
}

/** A compile's direct key; `srcHash` is the source's content hash. */
export function compileKey(d: KeyDeps, exe: string, parsed: GccCompile, cwd: string, rel: Relativizer, env: Record<string, string>, srcHash: string): string {
  const h = new KeyHasher('vrift-cc-direct-v1');
  h.str(d.compilers.identity(exe)).str(parsed.lang);
  hashArgs(h, d, parsed, cwd, rel);
  h.str(rel.key(parsed.source)).str(srcHash);
  hashEnv(h, env);
  return h.digest();
}

/**
 * A dependency-generation call's key: every argument and every source's content (paths keyed
 * as a compile's are), and where the rules go. Undefined when a source is missing.
 */
export function depsKey(d: KeyDeps, exe: string, parsed: GccDeps, cwd: string, rel: Relativizer, env: Record<string, string>): string | undefined {
  const h = new KeyHasher('vrift-cc-deps-v1');
  h.str(d.compilers.identity(exe)).str(parsed.lang).str(parsed.mode);
  hashArgs(h, d, parsed, cwd, rel);
  for (const src of parsed.sources) {
    const fh = d.hashes.get(path.resolve(cwd, src));
    if (!fh) return undefined;
    h.str(rel.key(src)).str(fh.hash);
  }
  hashEnv(h, env);
  h.str(parsed.outFile === null ? '\u0000stdout' : rel.key(parsed.outFile));
  return h.digest();
}

/** Where preprocessor mode keeps the result of a direct key for one preprocessed text. */
export function ppKeyOf(directKey: string, ppHash: string): string {
  return new KeyHasher('vrift-cc-pp-v1').str(directKey).str(ppHash).digest();
}

/**
 * A result's key: the direct key and what the entry pointing at it checks (inputs and their
 * hashes, the anchor, __DATE__, __TIMESTAMP__ stamps). `tag` tells a compile's results from
 * a dependency-generation call's.
 */
export function resultKeyOf(
  tag: 'vrift-cc-result-v1' | 'vrift-cc-deps-result-v1',
  directKey: string,
  files: Iterable<[string, string]>,
  anchor: [string, string] | null,
  date: string | null,
  stamps: [string, string][],
): string {
  const rk = new KeyHasher(tag).str(directKey);
  for (const [f, hsh] of files) rk.str(f).str(hsh);
  rk.str(anchor ? anchor.join('\u0000') : '').str(date ?? '');
  for (const [f, m] of stamps) rk.str(f).str(m);
  return rk.digest();
}
