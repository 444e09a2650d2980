import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { LRUCache } from 'lru-cache';
import path from 'node:path';
import { promisify } from 'node:util';
import { digestHex, KeyHasher } from '../../hash.js';
import { hashLarge } from '../../hot/file-hashes.js';

const run = promisify(execFile);

// rustc's identity: what makes two rustc binaries produce the same rlib. The named
// executable may be rustup's proxy (a few hundred KB that picks a toolchain by env and
// directory) or a build system's wrapper script (`RUSTC=wrapper`, execing the compiler an
// environment variable names), so the identity covers the executable's bytes, `rustc -vV`
// and the sysroot as the executable answers them, the toolchain's real `bin/rustc`, the
// sysroot's shared libraries (librustc_driver, LLVM: where the compiler actually lives) and
// the standard library rlibs for the target. For a script, also the value of every
// environment variable its text names, and the bytes of the file such a value names: the
// same wrapper pointed at another rustc is another identity even when that rustc says the
// same in -vV. The probes run with the compile's own environment less cargo's per-crate
// variables, so one build asks once; computed once per (executable, toolchain selection,
// target, probe environment) and re-validated on each call by a few stats.
export interface RustcIdentity {
  id: string;
  host: string;
}

interface Memo {
  check: string;
  value: Promise<RustcIdentity & { watch: string[] }>;
}

function statSig(p: string): string {
  const st = fs.statSync(p, { throwIfNoEntry: false });
  return st ? `${st.size}:${st.mtimeMs}:${st.ino}:${st.ctimeMs}` : '-';
}

// What cargo sets per crate (and the jobserver's descriptors, vrift's own settings): left
// out of the probes' environment, which is then the same for every crate of a build. What
// a wrapper could read of them is in the crate's key already (CARGO_*) or names its output.
const PER_CRATE_ENV =
  /^(CARGO_(PKG_|CRATE_|BIN_|MANIFEST_|CFG_|PRIMARY_PACKAGE$|TARGET_TMPDIR$|RUSTC_CURRENT_DIR$|MAKEFLAGS$|ENCODED_RUSTFLAGS$)|OUT_DIR$|DEP_|MAKEFLAGS$|MFLAGS$|MAKELEVEL$|VRIFT_)/;

/** The environment the identity probes run with: the compile's, less what varies per crate. */
export function probeEnv(env: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of Object.keys(env).sort()) if (!PER_CRATE_ENV.test(k)) out[k] = env[k];
  out.VRIFT_DISABLE = '1';
  return out;
}

// The variables a script's text names ($NAME, ${NAME...}, or NAME in any other spelling):
// what it could read, as far as its own text tells.
function namedIn(text: string, env: Record<string, string>): string[] {
  const words = new Set(text.match(/[A-Za-z_][A-Za-z0-9_]*/g) ?? []);
  return Object.keys(env)
    .filter((k) => words.has(k))
    .sort();
}

export class RustcIds {
  // One per distinct probe environment: a build's crates share one; a few builds' worth kept.
  private memo = new LRUCache<string, Memo>({ max: 64 });

  // memoFile: where identities survive daemon restarts (none: recomputed per daemon).
  constructor(private readonly memoFile?: string) {}

  // `cwd` matters only for a proxy without RUSTUP_TOOLCHAIN (a rust-toolchain file selects).
  identity(exe: string, target: string | null, env: Record<string, string>, cwd: string): Promise<RustcIdentity> {
    const penv = probeEnv(env);
    const sel = env.RUSTUP_TOOLCHAIN ? `tc:${env.RUSTUP_TOOLCHAIN}` : `cwd:${cwd}`;
    const k = [exe, target ?? '', sel, ...Object.entries(penv).flat()].join('\u0000');
    const m = this.memo.get(k);
    const exeSig = statSig(exe);
    if (m) {
      return m.value.then((v) => {
        const check = exeSig + v.watch.map(statSig).join('|');
        if (check === m.check) return v;
        this.memo.delete(k);
        return this.identity(exe, target, env, cwd);
      });
    }
    const value = this.compute(exe, target, penv, cwd);
    const entry: Memo = { check: '', value };
    this.memo.set(k, entry);
    value.then(
      (v) => (entry.check = exeSig + v.watch.map(statSig).join('|')),
      () => this.memo.delete(k),
    );
    return value;
  }

  private async compute(exe: string, target: string | null, penv: Record<string, string>, cwd: string): Promise<RustcIdentity & { watch: string[] }> {
    const opts = { env: penv, cwd, maxBuffer: 1 << 20 };
    const [vv, sysroot] = await Promise.all([
      run(exe, ['-vV'], opts).then((r) => r.stdout),
      run(exe, ['--print', 'sysroot'], opts).then((r) => r.stdout.trim()),
    ]);
    const host = /^host: (.*)$/m.exec(vv)?.[1]?.trim();
    if (!host) throw new Error(`no host in ${exe} -vV`);

    const files = [exe];
    const watch: string[] = [];
    // A script: the variables it names, and the files their values name (its compiler).
    const named: string[] = [];
    const head = Buffer.alloc(2);
    const fd = fs.openSync(exe, 'r');
    let script: string | undefined;
    try {
      if (fs.readSync(fd, head, 0, 2, 0) === 2 && head.toString('latin1') === '#!') script = fs.readFileSync(fd, 'latin1');
    } finally {
      fs.closeSync(fd);
    }
    for (const n of script === undefined ? [] : namedIn(script, penv)) {
      named.push(`${n}=${penv[n]}`);
      const v = penv[n];
      if (path.isAbsolute(v) && fs.statSync(v, { throwIfNoEntry: false })?.isFile()) files.push(v), watch.push(v);
    }
    const real = path.join(sysroot, 'bin', 'rustc');
    if (fs.existsSync(real)) files.push(real), watch.push(real);
    const libDir = path.join(sysroot, 'lib');
    const tname = target ? path.basename(target).replace(/\.json$/, '') : host;
    const tlib = path.join(sysroot, 'lib', 'rustlib', tname, 'lib');
    watch.push(libDir, tlib);
    for (const dir of [libDir, tlib]) {
      if (!fs.existsSync(dir)) continue;
      const names = fs
        .readdirSync(dir, { withFileTypes: true })
        .filter((d) => d.isFile() || d.isSymbolicLink())
        .map((d) => d.name)
        .sort();
      for (const n of names) {
        const p = path.join(dir, n);
        if (dir === libDir && !/\.so(\.|$)/.test(n)) continue;
        if (!fs.statSync(p, { throwIfNoEntry: false })?.isFile()) continue;
        files.push(p);
        if (dir === libDir) watch.push(p);
      }
    }

    // Hashing a toolchain reads ~300-500 MB (LLVM, librustc_driver, std): 70-100 ms read in
    // chunks (whole-file reads took 430 ms, and the first compiles of a build wait for it).
    // The result is kept across daemon restarts under the files' full stat signatures,
    // which any replacement or rewrite of one of them changes.
    const sig = digestHex([vv, sysroot, ...named, ...files.map((f) => `${f}\u0000${statSig(f)}`)].join('\u0001'));
    const saved = this.readSaved()[sig];
    if (typeof saved === 'string') return { id: saved, host, watch };
    const h = new KeyHasher('vrift-rustc-id-v1').str(vv).str(sysroot);
    for (const n of named) h.str(n);
    for (const f of files) h.str(path.basename(f)).str(hashLarge(f).hash);
    const id = h.digest();
    this.save(sig, id);
    return { id, host, watch };
  }

  private readSaved(): Record<string, unknown> {
    if (!this.memoFile) return {};
    try {
      const v = JSON.parse(fs.readFileSync(this.memoFile, 'utf8'));
      return v && typeof v === 'object' ? v : {};
    } catch {
      return {}; // missing or corrupt: hash again
    }
  }

  private save(sig: string, id: string) {
    if (!this.memoFile) return;
    const all = { ...this.readSaved(), [sig]: id };
    const keys = Object.keys(all);
    for (const k of keys.slice(0, Math.max(0, keys.length - 32))) delete all[k];
    const tmp = `${this.memoFile}.${process.pid}.tmp`;
    try {
      fs.writeFileSync(tmp, JSON.stringify(all));
      fs.renameSync(tmp, this.memoFile);
    } catch {
      fs.rmSync(tmp, { force: true });
    }
  }
}
