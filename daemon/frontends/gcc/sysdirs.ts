// The compiler's built-in include path, and telling system headers from user headers in
// a full (-MD) dependency list the way -MMD would.
import { execFile } from 'node:child_process';
import { VriftError } from '../../../ipc/errors.js';
import type { GccCompile, IncludeDirs } from './types.js';

export type RunProbe = (exe: string, args: string[]) => Promise<string /* stderr */>;

const defaultRun: RunProbe = (exe, args) =>
  new Promise((resolve, reject) => {
    execFile(exe, args, { encoding: 'utf8', maxBuffer: 4 << 20, timeout: 30_000, env: { ...process.env, LC_ALL: 'C' } }, (err, _stdout, stderr) => {
      if (err) reject(new VriftError('ECOMPILER', `${exe} include-path probe failed: ${err.message}`, { cause: err, fields: { exe, stderr } }));
      else resolve(stderr);
    });
  });

/** The `#include <...>` list of `cc -v` output (the `"..."` list is made of user options). */
export function parseSearchList(stderr: string): string[] {
  const lines = stderr.split('\n');
  const start = lines.findIndex((l) => l.startsWith('#include <...> search starts here:'));
  if (start < 0) throw new VriftError('ECOMPILER', 'no "#include <...> search starts here:" in compiler output');
  const out: string[] = [];
  for (let i = start + 1; i < lines.length; i++) {
    const l = lines[i]!;
    if (l.startsWith('End of search list.')) return out;
    // macOS marks framework directories with a suffix.
    if (l.startsWith(' ')) out.push(l.slice(1).replace(/ \(framework directory\)$/, ''));
  }
  throw new VriftError('ECOMPILER', 'unterminated include search list in compiler output');
}

export interface SysdirOptions {
  /** Memo shared across calls, keyed by the probe's whole command line. */
  memo?: Map<string, Promise<string[]>>;
  run?: RunProbe;
}

/**
 * `<exe> -x <lang> -E -v /dev/null` plus `flags` (from `sysdirFlags`), parsed. A failed probe
 * is not memoised. Note that `-isystem`/`-idirafter` in `flags` would show up in the list too.
 */
export async function systemIncludeDirs(exe: string, lang: string, flags: string[], opts: SysdirOptions = {}): Promise<string[]> {
  const args = [...flags, '-x', lang, '-E', '-v', '/dev/null'];
  const key = [exe, ...args].join('\0');
  const hit = opts.memo?.get(key);
  if (hit) return hit;
  const p = (opts.run ?? defaultRun)(exe, args).then(parseSearchList);
  if (opts.memo) {
    opts.memo.set(key, p);
    p.catch(() => opts.memo!.delete(key));
  }
  return p;
}

const SYSDIR_FLAG =
  /^(-nostdinc|-nostdinc\+\+|-nostdlibinc|-nobuiltininc|-m32|-m64|-mx32|-m16|-mabi=.*|-march=.*|-stdlib=.*|--target=.*|-std=.*|-fno-builtin-headers|-ffreestanding|-fobjc-runtime=.*|-fcuda-.*)$/;
const SYSDIR_WITH_VALUE = new Set(['--sysroot', '-isysroot', '-target', '-B', '--gcc-toolchain', '-resource-dir', '-imultilib', '-imultiarch', '-iprefix']);

/** The key arguments that can change the built-in include path, for `systemIncludeDirs`. */
export function sysdirFlags(parsed: Pick<GccCompile, 'keyArgs'>): string[] {
  const a = parsed.keyArgs;
  const out: string[] = [];
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    if (SYSDIR_WITH_VALUE.has(x) && i + 1 < a.length) out.push(x, a[++i]!);
    else if (SYSDIR_FLAG.test(x)) out.push(x);
    else if (x.startsWith('--sysroot=') || x.startsWith('-isysroot') || x.startsWith('--gcc-toolchain=')) out.push(x);
  }
  return out;
}

/** The directory as libcpp and clang write it into paths: no leading `./`, no trailing `/`. */
function normDir(d: string): string {
  while (d.startsWith('./') && d.length > 2) d = d.slice(2).replace(/^\/+/, '');
  if (d === '.' || d === './') return '';
  return d.length > 1 ? d.replace(/\/+$/, '') : d;
}

// `prefix` is the directory with its trailing slash ('' for the current one).
const under = (file: string, dir: string, prefix: string): boolean =>
  dir === '' ? !file.startsWith('/') : dir === '/' ? file.startsWith('/') : file.startsWith(prefix);

function searchDirs(includeDirs: IncludeDirs, sysdirs: string[]): { dir: string; prefix: string; sys: boolean }[] {
  const entry = (d: string, sys: boolean) => {
    const dir = normDir(d);
    return { dir, prefix: dir + '/', sys };
  };
  return [
    ...[...includeDirs.quote, ...includeDirs.angle].map((d) => entry(d, false)),
    ...[...includeDirs.system, ...includeDirs.after, ...sysdirs].map((d) => entry(d, true)),
  ];
}

/** filterSystemDeps' directories for the native shim (native/depfile.h): '1' + a system one, '0' + a user one. */
export function searchDirsForShim(includeDirs: IncludeDirs, sysdirs: string[]): string[] {
  return searchDirs(includeDirs, sysdirs).map((d) => (d.sys ? '1' : '0') + d.dir);
}

/**
 * Splits a full -MD prerequisite list into what -MMD would have listed and the rest.
 * A header is a system header when the search directory it was found in is one: the
 * longest directory (from `includeDirs` and the built-in `sysdirs`) that prefixes its
 * path decides; on a tie the system directory wins, because both compilers drop a user
 * directory that duplicates a system one. The first entry (the source) is always kept.
 */
export function filterSystemDeps(deps: string[], includeDirs: IncludeDirs, sysdirs: string[]): { user: string[]; system: string[] } {
  const dirs = searchDirs(includeDirs, sysdirs);
  const user: string[] = [];
  const system: string[] = [];
  deps.forEach((dep, i) => {
    if (i === 0) {
      user.push(dep);
      return;
    }
    let best: { dir: string; sys: boolean } | null = null;
    for (const d of dirs) {
      if (!under(dep, d.dir, d.prefix)) continue;
      if (!best || d.dir.length > best.dir.length || (d.dir.length === best.dir.length && d.sys)) best = d;
    }
    (best?.sys ? system : user).push(dep);
  });
  return { user, system };
}
