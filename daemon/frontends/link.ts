import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { VriftError } from '../../ipc/errors.js';
import type { CompileRequest } from '../../ipc/messages/compile.js';
import type { NotStoredReason, UncacheableReason } from '../../ipc/reasons.js';
import type { CompilerIds } from '../compilers.js';
import { KeyHasher } from '../hash.js';
import type { DirCache } from '../hot/dir-cache.js';
import type { FileHashes } from '../hot/file-hashes.js';
import { changedBefore, writtenBefore, type FsTime } from '../hot/fs-clock.js';
import type { WatchMark } from '../hot/watcher.js';
import type { ChannelLogger } from '../log.js';
import type { StoreLike } from '../store/contract.js';
import { STREAM_MIN } from '../store/blob-stream.js';
import { parseDepfile } from './gcc/depfile.js';
import { languageOfFile } from './gcc/languages.js';
import { SPLIT_TMP } from './gcc/split.js';
import { expandResponseFiles } from './gcc/response.js';
import { writeFileAtomic } from './materialize.js';
import { decodeManifest, decodeResult, encodeEntry, ManifestUpdates, type RustManifestEntry, type RustResult } from './rust/entries.js';
import { LINK_ENV, shadowCandidates, type Linkers } from './rust/linker.js';
import type { Done, Finish, Frontend, Outcome as FrontendOutcome } from './types.js';

// Links through gcc/clang (`cc -o prog a.o b.o -L. -lfoo`): ccache and sccache pass them
// through; in a warm build they are most of what is left (leveldb's 33 test and benchmark
// binaries: 2.1 of its 3.4 s). Cached the way the Rust front-end caches the crates rustc
// links (rust/linker.ts): GNU ld's own `--dependency-file` lists every file the link read
// (crt objects, libc's linker script and what it names, libgcc, archives, version
// scripts); their hashes make the manifest, and every earlier search-path directory where
// a same-named library would have won is recorded as an absent location. The key: the
// driver and linker identities, the working directory, the arguments, the content of each
// input named on the command line, the link environment.
//
// Conservative about what it takes: anything that compiles (a source among the inputs,
// -flto), writes a second output (-Wl,-Map, --out-implib), changes which tools run (-B,
// -fuse-ld, -specs, --sysroot) or only probes (-v, -print-*) passes through with a reason.

export interface LinkDeps {
  store: StoreLike & { putBlobOf(data: Buffer, fd: number): Promise<string> };
  hashes: FileHashes;
  dirs: DirCache;
  linkers: Linkers;
  compilers: CompilerIds;
  log: ChannelLogger;
  now: () => number;
  /** The filesystems' clock (hot/fs-clock.ts). */
  fsNow: () => FsTime;
  tmpDir: string;
}

export interface LinkPending {
  cwd: string;
  splitDir: string | null;
  output: string; // absolute
  directKey: string;
  start: number; // wall clock: the entry's time
  fsStart: FsTime; // the filesystems' clock before the link ran
  depfile: string;
  libSearch: string[];
  named: Set<string>; // inputs named on the command line, absolute
  mark: WatchMark | undefined;
}

export interface GccLink {
  kind: 'link';
  args: string[]; // response files expanded: what the key hashes
  output: string;
  inputs: string[]; // files named on the command line, as given
  libDirs: string[]; // -L, as given
  ldLibDirs: string[]; // -Wl,-L and the like: ld searches them after the driver's own directories
}

type Outcome = FrontendOutcome<LinkPending>;

// Options that take the next argument in a link.
const SEPARATE = new Set(['-o', '-L', '-l', '-u', '-z', '-T', '-e', '-Xlinker', '-Xassembler']);
// Options whose link is not only what the command line and ld's inputs say. (Assembler
// options are not among them: no assembler runs in a link of objects, and a Makefile's
// CFLAGS with -Wa,--noexecstack often reach its links, a split command's always.)
const REFUSED =
  /^(-B|-specs|--specs|--sysroot|-fuse-ld|--ld-path|-m32$|-mx32$|-m16$|--target|-target$|--gcc-toolchain|-flto|-fwhole-program|-save-temps|-wrapper|-fplugin|-x|-v$|-###|--help|--version|-print-|--print-|-dump|-Xpreprocessor|-Wp,|-fprofile-use|-fauto-profile|-fcreate-profile|-M)/;
// Linker options that write something besides the output, read what ld does not list in its
// dependency file (--retain-symbols-file), or make the output random (--build-id=uuid).
const REFUSED_LD =
  /^(-Map|--Map|-M$|--print-map|--out-implib|--dependency-file|--trace|-t$|--cref|-plugin|--plugin|@|--section-ordering-file|--emit-relocs|-y$|--trace-symbol|--retain-symbols-file|--build-id=uuid)/;
// Library directories given to ld itself.
const LD_LIBDIR = /^(?:-L|--library-path=)(.+)$/;

export function parseLink(args: string[], cwd: string, readFile: (p: string) => string): GccLink | { kind: 'pass'; reason: UncacheableReason } {
  const expanded = expandResponseFiles(args, cwd, readFile);
  if (!expanded.ok) return { kind: 'pass', reason: 'bad_response_file' };
  const a = expanded.args;
  let output: string | null = null;
  const inputs: string[] = [];
  const libDirs: string[] = [];
  const ldArgs: string[] = [];
  // Arguments for ld, in order. The driver puts its own -L options (then its built-in
  // directories) before everything else it passes on, so ld's own -L directories come after.
  const ldLibDirs: string[] = [];
  let ldL = false;
  const toLd = (x: string) => {
    ldArgs.push(x);
    if (ldL) {
      ldLibDirs.push(x);
      ldL = false;
    } else if (x === '-L' || x === '--library-path') ldL = true;
    else {
      const m = LD_LIBDIR.exec(x);
      if (m) ldLibDirs.push(m[1]);
    }
  };
  for (let i = 0; i < a.length; i++) {
    const arg = a[i];
    if (!arg.startsWith('-') || arg === '-') {
      if (arg === '-') return { kind: 'pass', reason: 'stdin_source' };
      if (languageOfFile(arg) !== null) return { kind: 'pass', reason: 'link_with_sources' };
      inputs.push(arg);
      continue;
    }
    if (REFUSED.test(arg)) return { kind: 'pass', reason: 'link_option' };
    if (SEPARATE.has(arg)) {
      const v = a[++i];
      if (v === undefined) return { kind: 'pass', reason: 'link_option' };
      if (arg === '-o') output = v;
      else if (arg === '-L') libDirs.push(v);
      else if (arg === '-Xlinker') toLd(v);
      continue;
    }
    if (arg.startsWith('-o')) output = arg.slice(2);
    else if (arg.startsWith('-L')) libDirs.push(arg.slice(2));
    else if (arg.startsWith('-Wl,')) arg.slice(4).split(',').forEach(toLd);
  }
  if (ldArgs.some((x) => REFUSED_LD.test(x)) || ldL) return { kind: 'pass', reason: 'link_option' };
  if (output === null || output === '-' || output === '') return { kind: 'pass', reason: 'link_no_output' };
  if (inputs.length === 0) return { kind: 'pass', reason: 'link' };
  return { kind: 'link', args: a, output, inputs, libDirs, ldLibDirs };
}

export class LinkFrontend implements Frontend<LinkPending> {
  readonly name = 'link';
  private readonly manifests: ManifestUpdates;
  private writing = new Map<string, Promise<void>>();
  private closing?: Promise<void>;

  constructor(private readonly d: LinkDeps) {
    this.manifests = new ManifestUpdates(d.store, 'link');
  }

  // Reached through the C front-end, for the calls it finds to be links.
  handles(): boolean {
    return false;
  }

  async lookup(req: CompileRequest, env: Record<string, string>): Promise<Outcome> {
    const { cwd, exe } = req;
    const args = req.argv.slice(1);
    const parsed = parseLink(args, cwd, (p) => fs.readFileSync(path.resolve(cwd, p), 'utf8'));
    if (parsed.kind === 'pass') return parsed;
    const li = await this.d.linkers.info(exe, env, cwd);
    if (typeof li === 'string') return { kind: 'pass', reason: li };

    const split = splitDirOf(env);
    const h = new KeyHasher('vrift-link-v1').str(this.d.compilers.identity(exe)).str(li.id).str(cwd);
    // The expanded arguments: a response file's options and inputs count, not its name.
    for (const a of parsed.args) h.str(split.form(a));
    for (const f of parsed.inputs) {
      const fh = this.d.hashes.get(path.resolve(cwd, f));
      if (!fh) return { kind: 'pass', reason: 'input_missing' };
      h.str(split.form(f)).str(fh.hash);
    }
    for (const k of LINK_ENV) h.str(k).str(env[k] ?? '\u0000');
    const directKey = h.digest();
    const output = path.resolve(cwd, parsed.output);

    await this.writing.get(directKey)?.catch(() => {});
    const hit = await this.tryHit(directKey, output, split);
    if (hit) return hit;

    const depfile = path.join(this.d.tmpDir, `${crypto.randomBytes(8).toString('hex')}.link.d`);
    return {
      kind: 'miss',
      latency: 'link_run',
      // -Xlinker: a comma in the path would split a -Wl, option.
      argv: [exe, ...args, '-Xlinker', `--dependency-file=${depfile}`],
      pending: {
        cwd,
        output,
        directKey,
        depfile,
        splitDir: split.dir,
        start: this.d.now(),
        fsStart: this.d.fsNow(),
        // ld's order: the driver's -L, its built-in directories, ld's own -L, ld's defaults.
        libSearch: [
          ...parsed.libDirs.map((d) => path.resolve(cwd, d)),
          ...li.searchDirs.slice(0, li.driverDirs),
          ...parsed.ldLibDirs.map((d) => path.resolve(cwd, d)),
          ...li.searchDirs.slice(li.driverDirs),
        ],
        named: new Set(parsed.inputs.map((f) => path.resolve(cwd, f))),
        mark: this.d.hashes.mark(),
      },
    };
  }

  private async tryHit(directKey: string, output: string, split: SplitDir): Promise<Outcome | undefined> {
    const manifest = decodeManifest(await this.d.store.getEntry(directKey), 'link');
    if (!manifest) return undefined;
    for (const e of manifest.entries) {
      if (!this.valid(e, split)) continue;
      const result = decodeResult(await this.d.store.getEntry(e.result), 'link');
      const o = result?.outputs[0];
      if (!result || !o) continue;
      const mode = o.exec ? 0o755 : 0o644;
      let bytes: number | undefined;
      try {
        // Large: streamed from the store into place (unless it still waits to be written).
        if (o.size >= STREAM_MIN) bytes = await this.d.store.copyBlobTo(o.digest, output, mode, o.size);
        if (bytes === undefined) {
          const data = await this.d.store.getBlob(o.digest);
          if (!data) continue;
          writeFileAtomic(output, data, mode);
          bytes = data.length;
        }
      } catch (err) {
        this.d.log.debug('materialize failed', { err, output });
        return { kind: 'pass', reason: 'materialize_failed' };
      }
      return { kind: 'hit', out: result.out, err: result.err, code: 0, bytes, latency: 'link_hit' };
    }
    return undefined;
  }

  private valid(e: RustManifestEntry, split: SplitDir): boolean {
    for (const [form, hash] of e.files) {
      const abs = split.path(form);
      if (abs === null || this.d.hashes.get(abs)?.hash !== hash) return false;
    }
    if (e.absent?.length) {
      this.d.dirs.beginRound();
      for (const [dir, names] of e.absent) for (const n of names) if (this.d.dirs.has(dir, n)) return false;
    }
    return true;
  }

  abandon(p: LinkPending): void {
    fs.rm(p.depfile, { force: true }, () => {});
  }

  async finish(p: LinkPending, done: Done): Promise<Finish> {
    try {
      return this.finishInner(p, done);
    } finally {
      fs.rm(p.depfile, { force: true }, () => {});
    }
  }

  private finishInner(p: LinkPending, done: Done): Finish {
    if (done.code !== 0) return { stored: false, reason: 'compile_failed' };
    if (done.nocache) return { stored: false, reason: 'output_too_big' };
    // The output is held by a descriptor from here (the file ld wrote, whatever happens to
    // its name next); small ones are also read now, large ones stream into the store.
    let deps: string[];
    let fd: number | undefined;
    let st: fs.Stats;
    let data: Buffer | undefined;
    try {
      deps = parseDepfile(fs.readFileSync(p.depfile, 'utf8')).deps;
      fd = fs.openSync(p.output, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
      st = fs.fstatSync(fd);
      if (!st.isFile() || writtenBefore(p.fsStart, st.dev, st.mtimeMs)) {
        fs.closeSync(fd);
        return { stored: false, reason: 'output_not_written' };
      }
      if (st.size < STREAM_MIN) data = fs.readFileSync(fd);
    } catch {
      if (fd !== undefined) fs.closeSync(fd);
      return { stored: false, reason: 'output_missing' };
    }
    let inputs: { files: [string, string][]; absent: [string, string[]][] } | { reason: NotStoredReason };
    try {
      inputs = this.collectInputs(p, deps);
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
    if ('reason' in inputs) {
      fs.closeSync(fd);
      return { stored: false, reason: inputs.reason };
    }
    const { files, absent } = inputs;

    const rk = new KeyHasher('vrift-link-result-v1').str(p.directKey);
    for (const [f, hsh] of files) rk.str(f).str(hsh);
    for (const [d, ns] of absent) rk.str(d).str(ns.join('/'));
    const resultKey = rk.digest();
    const entry: RustManifestEntry = { files, envs: [], anchor: null, tdir: null, absent, result: resultKey, time: p.start };
    const exec = (st.mode & 0o111) !== 0;
    const size = st.size;
    // Small: the descriptor waits for the pause (IdleWriter.addFile). Large: streamed from
    // the descriptor now, never held whole (a debug build's binary can be hundreds of MB).
    const held = fd;
    const put = data
      ? this.d.store.putBlobOf(data, held)
      : this.d.store
          .putBlobFile(`/proc/self/fd/${held}`)
          .then((r) => {
            if (r.size !== size) throw new VriftError('ESTORE', 'the link output changed while it was stored');
            return r.digest;
          })
          .finally(() => fs.close(held, () => {}));
    const write = (async () => {
      const digest = await put;
      const result: RustResult = {
        v: 1,
        kind: 'link',
        outputs: [{ name: path.basename(p.output), digest, size, text: false, ...(exec ? { exec: true } : {}) }],
        out: done.out,
        err: done.err,
      };
      await this.d.store.putEntry(resultKey, encodeEntry(result));
      await this.manifests.add(p.directKey, entry);
    })();
    const settled = write
      .catch(() => {})
      .finally(() => {
        if (this.writing.get(p.directKey) === settled) this.writing.delete(p.directKey);
      });
    this.writing.set(p.directKey, settled);
    return { stored: true, bytes: size, write };
  }

  /** Waits for the entries being written; called at the daemon's shutdown. */
  close(): Promise<void> {
    this.closing ??= Promise.all(this.writing.values()).then(() => {});
    return this.closing;
  }

  // Every file the link read, with its hash, and where same-named libraries must stay absent.
  private collectInputs(p: LinkPending, deps: string[]): { files: [string, string][]; absent: [string, string[]][] } | { reason: NotStoredReason } {
    if (deps.length === 0) return { reason: 'no_link_dependencies' };

    // Every file the link read, as of now: one changed since the link's start refuses the
    // entry (unless the watcher vouches for it), and so does one gone (a temporary input
    // could come back with other bytes and nothing would say so).
    const files: [string, string][] = [];
    const found: string[] = [];
    const seen = new Set<string>();
    const split = splitDirOf({ [SPLIT_DIR_ENV]: p.splitDir ?? '' });
    for (const dep of deps) {
      const abs = path.resolve(p.cwd, dep);
      if (seen.has(abs)) continue;
      seen.add(abs);
      const fh = this.d.hashes.get(abs);
      if (!fh) return { reason: 'input_missing' };
      // The split's objects: written by this command's own compiles before the link started,
      // into a directory nobody else writes; recorded by their name in it.
      const form = split.form(abs);
      if (form !== abs) {
        files.push([form, fh.hash]);
        continue;
      }
      if (!changedBefore(p.fsStart, fh) && !this.d.hashes.unchangedSince(abs, p.mark)) return { reason: 'input_too_new' };
      // A thin archive only names its members, which ld does not list: its bytes stay the
      // same when a member changes.
      if (abs.endsWith('.a') && isThinArchive(abs)) return { reason: 'link_thin_archive' };
      files.push([abs, fh.hash]);
      found.push(abs);
      // A library found by a search the front-end does not know the path of (a directory
      // from somewhere else): which same-named libraries must stay absent is unknown.
      if (/^lib.+\.(a|so)$/.test(path.basename(abs)) && !p.named.has(abs) && !p.libSearch.includes(path.dirname(abs))) return { reason: 'link_search_unknown' };
    }
    this.d.dirs.beginRound();
    const absent: [string, string[]][] = [];
    for (const [dir, names] of shadowCandidates(found, p.libSearch)) {
      const gone: string[] = [];
      for (const n of names) {
        if (!this.d.dirs.has(dir, n)) gone.push(n);
        // Present but not taken: it must have been there for the link too (ld passes over
        // a shared library with -Bstatic), or one that appeared since would be missed.
        else if (!this.d.hashes.presentBefore(dir, n, p.fsStart, p.mark)) return { reason: 'input_too_new' };
      }
      if (gone.length) absent.push([dir, gone]);
    }

    return { files, absent };
  }
}

// The private directory of a split command's objects (gcc/split.ts), named by the shim that
// runs its link: the link of the same objects in another such directory is the same link, so
// keys and entries name them relative to it, behind the split's marker character.
export const SPLIT_DIR_ENV = 'VRIFT_SPLIT_DIR';
interface SplitDir {
  dir: string | null;
  /** The key form of an argument or path: one in the directory behind the marker. */
  form(p: string): string;
  /** Back from the key form; null for one in a directory this link has not got. */
  path(form: string): string | null;
}

function splitDirOf(env: Record<string, string | undefined>): SplitDir {
  const v = env[SPLIT_DIR_ENV];
  const dir = v && path.isAbsolute(v) && path.normalize(v) === v && v !== '/' ? v : null;
  const prefix = dir === null ? null : dir + '/';
  return {
    dir,
    form: (p) => (prefix !== null && p.startsWith(prefix) && !p.includes('/', prefix.length) ? SPLIT_TMP + p.slice(prefix.length) : p),
    path: (form) => (!form.startsWith(SPLIT_TMP) ? form : prefix === null ? null : prefix + form.slice(SPLIT_TMP.length)),
  };
}

function isThinArchive(file: string): boolean {
  const head = Buffer.alloc(8);
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, 'r');
    return fs.readSync(fd, head, 0, 8, 0) === 8 && head.toString('latin1') === '!<thin>\n';
  } catch {
    return true; // unreadable: not provably a plain archive
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}
