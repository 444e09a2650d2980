import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { UncacheableReason } from '../../../ipc/reasons.js';
import { KeyHasher } from '../../hash.js';
import type { FileHashes } from '../../hot/file-hashes.js';

// What a crate that rustc links (bin, proc-macro) depends on beyond its Rust inputs: the
// linker driver and the linker (by content), and every file the link read. The last comes
// from GNU ld itself: `--dependency-file` (binutils ≥ 2.35) writes a make-style list of all
// its inputs — crt objects, libc and libgcc, native libraries from build scripts, the
// rlibs — on the miss. Library lookups also depend on what is *not* there: a same-named
// library appearing in an earlier search directory would be linked instead, so the
// search path is part of this identity and the front-end records the absent candidates.

const run = promisify(execFile);

/** Why a linker's link cannot be cached (a pass reason). */
export type LinkerRefusal = Extract<UncacheableReason, 'linker_not_found' | 'linker_unknown' | 'linker_no_depfile'>;

export interface LinkerInfo {
  id: string; // linker driver + ld contents, search path
  searchDirs: string[]; // the driver's and ld's library directories, in search order
  driverDirs: number; // how many of them are the driver's (it passes them as -L first)
  ld: string; // the linker the driver runs, and its content hash when probed
  ldHash: string;
}

// Environment the link reads.
export const LINK_ENV = ['LIBRARY_PATH', 'LD_LIBRARY_PATH', 'LD_RUN_PATH', 'GCC_EXEC_PREFIX', 'COMPILER_PATH', 'LDEMULATION'];

export function resolveExe(name: string, env: Record<string, string>, cwd: string): string | undefined {
  if (name.includes('/')) return path.resolve(cwd, name);
  for (const dir of (env.PATH ?? '/usr/bin:/bin').split(':')) {
    if (!dir) continue;
    const p = path.resolve(cwd, dir, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (fs.statSync(p).isFile()) return p;
    } catch {
      // next
    }
  }
  return undefined;
}

export class Linkers {
  private memo = new Map<string, Promise<LinkerInfo | LinkerRefusal>>();
  constructor(private readonly hashes: FileHashes) {}

  /** The linker's identity, or why its links can't be cached. */
  async info(linker: string, env: Record<string, string>, cwd: string): Promise<LinkerInfo | LinkerRefusal> {
    const abs = resolveExe(linker, env, cwd);
    if (!abs) return 'linker_not_found';
    const fh = this.hashes.get(abs);
    if (!fh) return 'linker_not_found';
    // PATH: a driver that names a bare `ld` finds it there.
    const k = [abs, fh.hash, env.PATH ?? '', ...LINK_ENV.map((n) => env[n] ?? '')].join('\u0000');
    let p = this.memo.get(k);
    if (p) {
      // The linker itself replaced (a binutils upgrade) under a running daemon: probe again.
      const v = await p.catch(() => undefined);
      if (v !== undefined && (typeof v === 'string' || this.hashes.get(v.ld)?.hash === v.ldHash)) return v;
      this.memo.delete(k);
      p = undefined;
    }
    if (!p) {
      p = this.probe(abs, fh.hash, env);
      this.memo.set(k, p);
      p.catch(() => this.memo.delete(k));
    }
    return p;
  }

  private async probe(abs: string, hash: string, env: Record<string, string>): Promise<LinkerInfo | LinkerRefusal> {
    const opts = { env: { ...env, LC_ALL: 'C' }, timeout: 10_000, maxBuffer: 4 << 20 };
    let ldName: string;
    let searchOut: string;
    try {
      // In parallel: the first link of a build waits for these four probes.
      [ldName, searchOut] = await Promise.all([
        run(abs, ['-print-prog-name=ld'], opts).then((r) => r.stdout.trim()),
        run(abs, ['-print-search-dirs'], opts).then((r) => r.stdout),
      ]);
    } catch {
      return 'linker_unknown'; // not a gcc/clang driver
    }
    const ld = ldName && resolveExe(ldName, env, '/');
    const ldh = ld && this.hashes.get(ld);
    if (!ld || !ldh) return 'linker_unknown';
    let help: string;
    let verbose: string;
    try {
      [help, verbose] = await Promise.all([run(ld, ['--help'], opts).then((r) => r.stdout), run(ld, ['--verbose'], opts).then((r) => r.stdout)]);
    } catch {
      return 'linker_unknown';
    }
    // A linker without --dependency-file (binutils before 2.35) can't list its inputs: those links are not cached.
    if (!help.includes('--dependency-file')) return 'linker_no_depfile';
    const dirs: string[] = [];
    const add = (d: string) => {
      const n = path.resolve(d.startsWith('=') ? d.slice(1) : d);
      if (!dirs.includes(n)) dirs.push(n);
    };
    const libLine = searchOut.split('\n').find((l) => l.startsWith('libraries:'));
    for (const d of (libLine?.replace(/^libraries:\s*=?/, '') ?? '').split(':')) if (d) add(d);
    const driverDirs = dirs.length;
    for (const m of verbose.matchAll(/SEARCH_DIR\("([^"]+)"\)/g)) add(m[1]);
    const id = new KeyHasher('vrift-linker-v1').str(abs).str(hash).str(ld).str(ldh.hash).str(dirs.join(':')).digest();
    return { id, searchDirs: dirs, driverDirs, ld, ldHash: ldh.hash };
  }
}

/**
 * Library names a link found in one of `search` (in order), and where else they would have
 * been found first: [directory, names that must stay absent there]. A library `libX.a`
 * found in the k-th directory rules out `libX.so` and `libX.a` in every earlier directory
 * and `libX.so` in its own (ld prefers the shared one within a directory).
 */
export function shadowCandidates(found: string[], search: string[]): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  const note = (dir: string, name: string) => {
    let s = out.get(dir);
    if (!s) out.set(dir, (s = new Set()));
    s.add(name);
  };
  for (const f of found) {
    const dir = path.dirname(f);
    const k = search.indexOf(dir);
    if (k === -1) continue; // named by path (crt files, linker-script members, rlibs)
    const name = path.basename(f);
    const m = /^lib(.+)\.(a|so)$/.exec(name);
    const names = m ? [`lib${m[1]}.so`, `lib${m[1]}.a`] : [name];
    for (let j = 0; j < k; j++) for (const n of names) note(search[j], n);
    if (m && m[2] === 'a') note(dir, `lib${m[1]}.so`);
  }
  return out;
}
