import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { CompileRequest } from '../../../ipc/messages/compile.js';
import type { NotStoredReason } from '../../../ipc/reasons.js';
import { KeyHasher } from '../../hash.js';
import type { DirCache } from '../../hot/dir-cache.js';
import type { FileHashes } from '../../hot/file-hashes.js';
import { changedBefore, sinceMs, writtenBefore, type FsTime } from '../../hot/fs-clock.js';
import type { WatchMark } from '../../hot/watcher.js';
import type { ChannelLogger } from '../../log.js';
import type { StoreLike } from '../../store/contract.js';
import { finishLater, type Deferred } from '../deferred.js';
import { writeFileAtomic } from '../materialize.js';
import { STREAM_MIN } from '../../store/blob-stream.js';
import { anchorValid, embedsAnchor, type KeyForms } from '../relativize.js';
import type { Done, Finish, Frontend, Outcome as FrontendOutcome } from '../types.js';
import { parseDepfile } from '../gcc/depfile.js';
import { argsForMiss, isOutput, parseRustcArgs, type RustCompile } from './args.js';
import { escapeEnvValue, parseDepInfo } from './depinfo.js';
import { LINK_ENV, shadowCandidates, type Linkers } from './linker.js';
import { decodeManifest, decodeResult, encodeEntry, ManifestUpdates, type RustManifestEntry, type RustOutput, type RustResult } from './entries.js';
import type { RustcIds } from './identity.js';
import { RustPaths, targetDirOf } from './paths.js';
import type { ProjectSettings } from '../../../config/config.js';
import { rustOutsideScope } from '../project-scope.js';

// The Rust front-end: vrift as cargo's RUSTC_WRAPPER. Library crates (lib/rlib) are cached
// with a direct key (rustc identity, normalized arguments, the content of every --extern
// crate, CARGO_* environment, crate root content) naming a manifest of the sources rustc
// read (from its dep-info) with their hashes and the env!() variables it looked at.
// Crates rustc links (bins, build scripts, proc-macros), which sccache leaves uncached,
// are cached too when the linker is GNU ld: the linker's identity and search path join the
// key, and ld's own list of what it read (every system library and object) joins the
// manifest with the earlier search-path locations where a same-named library would have
// won (linker.ts). Every other call passes through with a counted reason.

export interface RustDeps {
  /** putBlobOf: the daemon's WriteBehind (a blob that is a whole open file waits as the descriptor). */
  store: StoreLike & { putBlobOf(data: Buffer, fd: number): Promise<string> };
  hashes: FileHashes;
  dirs: DirCache;
  linkers: Linkers;
  ids: RustcIds;
  project: (cwd: string, env: Record<string, string>) => ProjectSettings; // base_dir, cache_targets, cache_extensions of this compile
  log: ChannelLogger;
  now: () => number;
  /** The filesystems' clock (hot/fs-clock.ts). */
  fsNow: () => FsTime;
  tmpDir: string;
  deferred?: Deferred;
  /** Key forms computed so far, shared with the other front-ends (relativize.ts). */
  forms: KeyForms;
}

export interface RustPending {
  cwd: string;
  env: Record<string, string>;
  parsed: RustCompile;
  paths: RustPaths;
  outDir: string;
  directKey: string;
  start: number; // wall clock: the entry's time
  fsStart: FsTime; // the filesystems' clock before rustc ran
  depInfo: string;
  ownDepInfo: boolean;
  linkDeps?: string; // ld's --dependency-file, for linked crates
  libSearch?: string[]; // the link's library search path, in order
  mark?: WatchMark; // the watcher's position at the lookup (FileHashes.unchangedSince)
  externs?: Map<string, string>; // --extern crates' hashes at the lookup, by absolute path
}

type Outcome = FrontendOutcome<RustPending>;

// Outputs this large wait for the store as a descriptor of their file (store()).
const KEEP_FILE_MIN = 256 * 1024;
// Output descriptors the entries waiting for the pause may hold; beyond, entries are built at once.
const DEFERRED_FILES = 384;

interface KeptOutput {
  name: string;
  fd: number; // open since the compiler's report; closed when the entry is built
  st: fs.Stats;
  exec: boolean;
}

interface RustInputs {
  files: [string, string][];
  absent: [string, string[]][] | undefined;
  envs: [string, string | null][];
}

function closeKept(outputs: KeptOutput[]): void {
  for (const o of outputs) {
    if (o.fd < 0) continue;
    try {
      fs.closeSync(o.fd);
    } catch {
      // already gone: nothing to release
    }
    o.fd = -1;
  }
}

// The output's bytes, unless it was written since its report (in place: cargo and rustc never
// do, but then the bytes are not what the compile made). A changed ctime is accepted only
// with a changed link count: cargo hard-links binaries and build scripts to their final
// names, a clean unlinks them; a write does neither.
function readKept(o: KeptOutput): Buffer | undefined {
  const now = fs.fstatSync(o.fd);
  if (now.size !== o.st.size || now.mtimeMs !== o.st.mtimeMs) return undefined;
  if (now.ctimeMs !== o.st.ctimeMs && now.nlink === o.st.nlink) return undefined;
  const b = Buffer.allocUnsafe(o.st.size);
  let n = 0;
  while (n < b.length) {
    const r = fs.readSync(o.fd, b, n, b.length - n, n);
    if (r === 0) return undefined;
    n += r;
  }
  return b;
}

// Cargo's own configuration, or values already reflected in rustc's arguments: none of
// them changes what rustc writes, and a per-run CARGO_HOME would otherwise miss every time.
// Anything env!() reads is validated through the dep-info's env-deps regardless.
const IGNORED_CARGO_ENV =
  /^CARGO_(MAKEFLAGS|HOME|TARGET_DIR|ENCODED_RUSTFLAGS|INCREMENTAL|LOG|CACHE_RUSTC_INFO|BUILD_.*|REGISTRIES_.*|REGISTRY_.*|TERM_.*|NET_.*|HTTP_.*|PROFILE_.*|ALIAS_.*)$/;
// Variables rustc itself reads.
const KEY_ENV = ['RUSTC_BOOTSTRAP', 'RUST_TARGET_PATH', 'RUSTC_FORCE_RUSTC_VERSION'];

export class RustFrontend implements Frontend<RustPending> {
  readonly name = 'rust';
  private readonly manifests: ManifestUpdates;
  private writing = new Map<string, Promise<void>>();
  private deferredFiles = 0;
  private closing?: Promise<void>;

  constructor(private readonly d: RustDeps) {
    this.manifests = new ManifestUpdates(d.store, 'rust');
  }

  // By name, or, for a `RUSTC` wrapper of any name, by what no C compiler takes: cargo names
  // every crate it compiles (and its probes) with --crate-name.
  handles(argv0: string, exe: string, args: string[]): boolean {
    const rustc = (n: string) => /^rustc(-[\w.]+)?$/.test(path.basename(n));
    return rustc(argv0) || rustc(exe) || args.includes('--crate-name');
  }

  async lookup(req: CompileRequest, env: Record<string, string>): Promise<Outcome> {
    const { cwd, exe } = req;
    const args = req.argv.slice(1);
    const parsed = parseRustcArgs(args);
    if (parsed.kind === 'pass') return parsed;

    const outDir = path.resolve(cwd, parsed.outDir);
    const outside = rustOutsideScope(outDir, parsed.crateTypes, parsed.emits, env, this.d.project(cwd, env));
    if (outside) return { kind: 'pass', reason: outside };
    const paths = new RustPaths(cwd, this.d.project(cwd, env).base_dir, targetDirOf(outDir), this.d.forms);
    const srcAbs = path.resolve(cwd, parsed.source);
    const src = this.d.hashes.get(srcAbs);
    if (!src) return { kind: 'pass', reason: 'source_missing' };
    let ident: Awaited<ReturnType<typeof this.d.ids.identity>>;
    try {
      ident = await this.d.ids.identity(exe, parsed.target, env, cwd);
    } catch (err) {
      this.d.log.debug('rustc identity failed', { err, exe });
      return { kind: 'pass', reason: 'rustc_identity' };
    }

    const h = new KeyHasher('vrift-rust-direct-v1').str(ident.id).str(parsed.target ?? ident.host);
    // What went into the key, for the log line of a miss: two misses of one crate can be
    // compared to see which input moved.
    const parts: string[] = [];
    const externs = new Map<string, string>();
    for (const it of parsed.items) {
      if (it.k === 'plain') h.str(it.s), parts.push(it.s);
      else if (it.k === 'path') h.str(it.opt + paths.key(it.path)), parts.push(it.opt + paths.key(it.path));
      else if (it.k === 'extern' && it.path === null) h.str(it.opt), parts.push(it.opt);
      else {
        // The content of the crate (or profile, target spec) decides, not where it lies.
        const abs = path.resolve(cwd, it.path!);
        const fh = this.d.hashes.get(abs);
        if (!fh) return { kind: 'pass', reason: it.k === 'extern' ? 'extern_missing' : 'input_missing' };
        if (it.k === 'extern') externs.set(abs, fh.hash);
        const name = it.k === 'extern' ? it.opt : it.opt + paths.key(it.path!);
        h.str(name).str(fh.hash);
        parts.push(`${name}=${fh.hash.slice(0, 12)}`);
      }
    }
    h.str(paths.key(parsed.source)).str(src.hash);
    parts.push(`${paths.key(parsed.source)}=${src.hash.slice(0, 12)}`);
    for (const k of Object.keys(env).sort()) {
      if (k.startsWith('CARGO_') && !IGNORED_CARGO_ENV.test(k)) h.str(k).str(paths.envValue(env[k])), parts.push(`${k}=${paths.envValue(env[k])}`);
    }
    for (const k of KEY_ENV) h.str(k).str(env[k] ?? '\u0000');
    let libSearch: string[] | undefined;
    if (parsed.linked) {
      const li = await this.d.linkers.info(parsed.linker ?? 'cc', env, cwd);
      if (typeof li === 'string') return { kind: 'pass', reason: li };
      h.str('linker').str(li.id);
      parts.push(`linker=${li.id.slice(0, 12)}`);
      // Search lists (cargo puts its target dir in LD_LIBRARY_PATH): each entry normalized.
      for (const k of LINK_ENV)
        h.str(k).str(
          env[k] === undefined
            ? '\u0000'
            : env[k]
                .split(':')
                .map((d) => paths.envValue(d))
                .join(':'),
        );
      libSearch = [...parsed.libDirs.map((d) => path.resolve(cwd, d)), ...li.searchDirs];
    }
    const directKey = h.digest();

    await this.d.deferred?.run(directKey);
    await this.writing.get(directKey)?.catch(() => {});
    const why: string[] = [];
    const hit = await this.tryHit(directKey, parsed, paths, outDir, env, why);
    if (hit) return hit;

    this.d.log.info('rust miss', { crate: parsed.crateName, key: directKey.slice(0, 16), parts, stale: why });
    const id = crypto.randomBytes(8).toString('hex');
    const own = path.join(this.d.tmpDir, `${id}.rs.d`);
    const linkDeps = parsed.linked ? path.join(this.d.tmpDir, `${id}.ld.d`) : undefined;
    const m = argsForMiss(parsed, args, own, linkDeps);
    return {
      kind: 'miss',
      argv: [exe, ...m.argv],
      pending: {
        cwd,
        env,
        parsed,
        paths,
        outDir,
        directKey,
        start: this.d.now(),
        fsStart: this.d.fsNow(),
        depInfo: m.depInfoOwn ? own : path.join(outDir, `${parsed.crateName}${parsed.extraFilename}.d`),
        ownDepInfo: m.depInfoOwn,
        linkDeps,
        libSearch,
        mark: this.d.hashes.mark(),
        externs,
      },
    };
  }

  // Why an entry does not apply here (undefined: it does); the reason goes in the miss's log line.
  private invalid(e: RustManifestEntry, paths: RustPaths, env: Record<string, string>): string | undefined {
    if (!anchorValid(e.anchor, paths.cwd)) return 'another checkout';
    if (e.tdir !== null && e.tdir !== paths.tdir) return 'another target dir';
    if (e.ws && e.ws !== paths.ws) return 'another workspace';
    for (const [name, val] of e.envs) {
      const cur = env[name];
      if (val === null ? cur !== undefined : cur === undefined || paths.envValue(escapeEnvValue(cur)) !== val) return `env ${name} changed`;
    }
    for (const [form, hash] of e.files) {
      if (this.d.hashes.get(paths.toAbs(form))?.hash !== hash) return `file ${form} changed`;
    }
    if (e.absent?.length) {
      this.d.dirs.beginRound();
      for (const [dir, names] of e.absent) {
        const abs = paths.toAbs(dir);
        for (const n of names) if (this.d.dirs.has(abs, n)) return `library ${n} appeared in ${dir}`;
      }
    }
    return undefined;
  }

  private async tryHit(
    directKey: string,
    parsed: RustCompile,
    paths: RustPaths,
    outDir: string,
    env: Record<string, string>,
    why: string[],
  ): Promise<Outcome | undefined> {
    const manifest = decodeManifest(await this.d.store.getEntry(directKey));
    if (!manifest) return undefined;
    for (const e of manifest.entries) {
      const bad = this.invalid(e, paths, env);
      if (bad) {
        why.push(bad);
        continue;
      }
      const result = decodeResult(await this.d.store.getEntry(e.result));
      if (!result) {
        why.push('result entry missing');
        continue;
      }
      // Large binary outputs (a 30 MB rlib) are streamed from the store into place below;
      // the rest is read first (all at once: from a remote, in parallel requests), so that a
      // missing blob is found before anything is written.
      const read = await Promise.all(
        result.outputs.map(async (o): Promise<[RustOutput, Buffer | null] | undefined> => {
          if (!o.text && o.size >= STREAM_MIN) return [o, null];
          const data = await this.d.store.getBlob(o.digest);
          if (!data) return undefined; // evicted or corrupt: a miss, and the next store heals it
          return [o, o.text ? paths.fromStored(data) : data];
        }),
      );
      const blobs = read.filter((b): b is [RustOutput, Buffer | null] => b !== undefined);
      if (blobs.length !== result.outputs.length) {
        why.push('output blob missing');
        continue;
      }
      // Dep-info last: cargo reads it after rustc exits and compares its mtime with the inputs'.
      blobs.sort((a, b) => Number(a[0].name.endsWith('.d')) - Number(b[0].name.endsWith('.d')));
      let bytes = 0;
      let missing = false;
      try {
        // The large ones stream in together (all settled before going on: none may still be
        // writing when rustc runs instead); then each output in order (dep-info last).
        const large = blobs.filter(([, data]) => !data).map(([o]) => o);
        const copied = await Promise.allSettled(large.map((o) => this.d.store.copyBlobTo(o.digest, path.join(outDir, o.name), o.exec ? 0o755 : 0o644, o.size)));
        const streamed = new Map<RustOutput, number | undefined>();
        copied.forEach((r, i) => {
          if (r.status === 'rejected') throw r.reason;
          streamed.set(large[i], r.value);
        });
        for (const [o, data] of blobs) {
          const dest = path.join(outDir, o.name);
          const mode = o.exec ? 0o755 : 0o644;
          let n = data ? undefined : streamed.get(o);
          if (n === undefined) {
            // Small, or still waiting to be written (the store has not seen it yet).
            const d = data ?? (await this.d.store.getBlob(o.digest));
            if (!d) {
              missing = true;
              break;
            }
            writeFileAtomic(dest, d, mode);
            n = d.length;
          }
          bytes += n;
        }
      } catch (err) {
        // e.g. the output directory does not exist: let rustc fail (or not) the way it would.
        this.d.log.debug('materialize failed', { err, crate: parsed.crateName });
        return { kind: 'pass', reason: 'materialize_failed' };
      }
      if (missing) {
        why.push('output blob missing');
        continue; // what was written is overwritten by the next entry or by rustc
      }
      return { kind: 'hit', out: paths.fromStored(result.out), err: paths.fromStored(result.err), code: 0, bytes };
    }
    return undefined;
  }

  abandon(p: RustPending): void {
    if (p.ownDepInfo) fs.rm(p.depInfo, { force: true }, () => {});
    if (p.linkDeps) fs.rm(p.linkDeps, { force: true }, () => {});
  }

  async finish(p: RustPending, done: Done): Promise<Finish> {
    try {
      return await this.finishInner(p, done);
    } finally {
      if (p.ownDepInfo) fs.rm(p.depInfo, { force: true }, () => {});
      if (p.linkDeps) fs.rm(p.linkDeps, { force: true }, () => {});
    }
  }

  private async finishInner(p: RustPending, done: Done): Promise<Finish> {
    const { paths, parsed } = p;
    if (done.code !== 0) return { stored: false, reason: 'compile_failed' };
    if (done.nocache) return { stored: false, reason: 'output_too_big' };

    // The outputs are opened now and read when the entry is built (perhaps at the build's
    // pause): the descriptors keep these very files, whatever a clean or a rebuild does to
    // the names, and their stat proves them unwritten since.
    let depText: string;
    const outputs: KeptOutput[] = [];
    let linkText: string | undefined;
    try {
      depText = fs.readFileSync(p.depInfo, 'utf8');
      if (p.linkDeps) linkText = fs.readFileSync(p.linkDeps, 'utf8');
      for (const ent of fs.readdirSync(p.outDir, { withFileTypes: true })) {
        if (!ent.isFile() || !isOutput(parsed, ent.name)) continue;
        const fd = fs.openSync(path.join(p.outDir, ent.name), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
        const kept: KeptOutput = { name: ent.name, fd, st: undefined as unknown as fs.Stats, exec: false };
        outputs.push(kept); // closed on every path from here
        kept.st = fs.fstatSync(fd);
        kept.exec = (kept.st.mode & 0o111) !== 0;
        if (writtenBefore(p.fsStart, kept.st.dev, kept.st.mtimeMs) || !kept.st.isFile()) {
          outputs.pop(); // an older output of another emit set
          closeKept([kept]);
        }
      }
    } catch {
      closeKept(outputs);
      return { stored: false, reason: 'output_missing' };
    }
    if (outputs.length === 0) return { stored: false, reason: 'output_missing' };
    let inputs: RustInputs | { reason: NotStoredReason };
    try {
      inputs = this.collectInputs(p, depText, linkText);
    } catch (err) {
      closeKept(outputs);
      throw err;
    }
    const out = paths.toStored(done.out);
    const err = paths.toStored(done.err);
    if ('reason' in inputs || !out || !err) {
      closeKept(outputs);
      return { stored: false, reason: 'reason' in inputs ? inputs.reason : 'output_has_marker' };
    }

    const build = (): Finish => {
      try {
        return this.store(p, inputs, outputs, out, err);
      } finally {
        closeKept(outputs);
      }
    };
    // Reading, scanning and hashing the outputs (255 MB in a cold ripgrep build) waits for
    // the build to pause, as the C front-end's entries do; a lookup of the same key builds
    // it first.
    const deferred = this.d.deferred;
    if (!deferred || this.deferredFiles + outputs.length > DEFERRED_FILES) return build();
    this.deferredFiles += outputs.length;
    return finishLater(
      deferred,
      p.directKey,
      build,
      () => (this.deferredFiles -= outputs.length),
      (err) => this.d.log.warn('building a cache entry failed', { err, crate: parsed.crateName }),
    );
  }

  // Timestamps this close to the compile's start can't tell before from during; the watcher
  // can, as in the C front-end: cargo hard-links a crate's rlib into place (a new ctime) and
  // starts the next rustc, which reads it, a few milliseconds later.
  // The watcher cannot vouch for a file with a second link, and that is what an uplifted
  // rlib is: one whose content is what the lookup hashed, written before the compile, and
  // linked again since (only its ctime new) is taken as read.
  private tooNew(abs: string, fh: { hash: string; mtimeMs: number; ctimeMs: number; dev: number }, p: RustPending): boolean {
    if (changedBefore(p.fsStart, fh) || this.d.hashes.unchangedSince(abs, p.mark)) return false;
    if (fh.mtimeMs < sinceMs(p.fsStart, fh.dev) && p.externs?.get(abs) === fh.hash && (fs.statSync(abs, { throwIfNoEntry: false })?.nlink ?? 1) > 1)
      return false;
    this.d.log.info('not stored: an input changed during or just before the compile', {
      file: abs,
      crate: p.parsed.crateName,
      mtimeMs: fh.mtimeMs,
      ctimeMs: fh.ctimeMs,
      startMs: p.fsStart.ms,
      sameClock: fh.dev === p.fsStart.dev,
      watched: p.mark !== undefined,
    });
    return true;
  }

  // The sources rustc read (its dep-info) and, for a link, what the linker read, with their
  // hashes as of now: anything changed since the compile's start refuses the entry.
  private collectInputs(p: RustPending, depText: string, linkText: string | undefined): RustInputs | { reason: NotStoredReason } {
    const { paths } = p;
    const info = parseDepInfo(depText);
    if (info.deps.length === 0) return { reason: 'no_dependencies' };
    const files: [string, string][] = [];
    for (const dep of info.deps) {
      const abs = path.resolve(p.cwd, dep);
      const fh = this.d.hashes.get(abs);
      if (!fh) return { reason: 'input_missing' };
      if (this.tooNew(abs, fh, p)) return { reason: 'input_too_new' };
      files.push([paths.key(dep), fh.hash]);
    }
    let absent: [string, string[]][] | undefined;
    if (linkText !== undefined) {
      // Everything the link read that is still there: the temporaries rustc linked (its own
      // object files, symbols.o) are gone by now.
      const seen = new Set(files.map(([f]) => f));
      const found: string[] = [];
      for (const dep of parseDepfile(linkText).deps) {
        const abs = path.resolve(p.cwd, dep);
        if (!fs.existsSync(abs)) continue;
        const fh = this.d.hashes.get(abs);
        if (!fh) continue; // a directory
        if (this.tooNew(abs, fh, p)) return { reason: 'input_too_new' };
        found.push(abs);
        const form = paths.key(abs);
        if (seen.has(form)) continue;
        seen.add(form);
        files.push([form, fh.hash]);
      }
      if (found.length === 0) return { reason: 'no_link_dependencies' };
      this.d.dirs.beginRound();
      absent = [];
      for (const [dir, names] of shadowCandidates(found, p.libSearch ?? [])) {
        const gone = [...names].filter((n) => !this.d.dirs.has(dir, n));
        if (gone.length) absent.push([paths.key(dir), gone]);
      }
    }
    const envs: [string, string | null][] = info.envs.map(([n, v]) => [n, v === null ? null : paths.envValue(v)]);
    return { files, absent, envs };
  }

  // Reads the kept outputs, builds the entry and starts its writes (through the write-behind store).
  private store(p: RustPending, inputs: RustInputs, outputs: KeptOutput[], out: Buffer, err: Buffer): Finish {
    const { paths } = p;
    const { files, absent, envs } = inputs;
    const stored: { name: string; data: Buffer; text: boolean; exec: boolean }[] = [];
    for (const o of outputs) {
      const raw = readKept(o);
      if (!raw) {
        this.d.log.info('not stored: an output changed after the compile', { file: path.join(p.outDir, o.name) });
        return { stored: false, reason: 'output_changed' };
      }
      const text = o.name.endsWith('.d');
      const data = text ? paths.toStored(raw) : raw;
      if (!data) return { stored: false, reason: 'output_has_marker' };
      stored.push({ name: o.name, data, text, exec: o.exec });
    }

    // Outputs that embed the checkout (debug info's comp_dir, metadata's working dir,
    // env!("CARGO_MANIFEST_DIR")) are only served there; the same for the target directory.
    const anchor = paths.rel.anchor();
    const tdirBuf = Buffer.from(paths.tdir);
    const blobs = [...stored.map((s) => s.data), out, err];
    const entryAnchor = blobs.some((b) => embedsAnchor(b, anchor[1])) ? anchor : null;
    const entryTdir = stored.some((s) => !s.text && s.data.indexOf(tdirBuf) !== -1) ? paths.tdir : null;
    const entryWs = paths.ws !== null && blobs.some((b) => b.indexOf(paths.ws!) !== -1) ? paths.ws : null;

    const rk = new KeyHasher('vrift-rust-result-v1').str(p.directKey);
    for (const [f, hsh] of files) rk.str(f).str(hsh);
    for (const [n, v] of envs) rk.str(n).str(v ?? '\u0000');
    rk.str(entryAnchor ? entryAnchor.join('\u0000') : '')
      .str(entryTdir ?? '')
      .str(entryWs ?? '');
    for (const [d, ns] of absent ?? []) rk.str(d).str(ns.join('/'));
    const resultKey = rk.digest();

    const entry: RustManifestEntry = {
      files,
      envs,
      anchor: entryAnchor,
      tdir: entryTdir,
      ws: entryWs,
      ...(absent ? { absent } : {}),
      result: resultKey,
      time: p.start,
    };
    const bytes = stored.reduce((n, s) => n + s.data.length, 0);
    // A large binary output waits for its write as a descriptor of its file, not as a copy in
    // the spool (IdleWriter.addFile): a second descriptor, since the kept ones close now.
    const puts = stored.map((s, i) => {
      if (!s.text && s.data.length >= KEEP_FILE_MIN) {
        try {
          return this.d.store.putBlobOf(s.data, fs.openSync(`/proc/self/fd/${outputs[i].fd}`, fs.constants.O_RDONLY));
        } catch {
          // no /proc: the bytes wait
        }
      }
      return this.d.store.putBlob(s.data);
    });
    const write = (async () => {
      const outs: RustOutput[] = [];
      for (let i = 0; i < stored.length; i++) {
        const s = stored[i];
        outs.push({ name: s.name, digest: await puts[i], size: s.data.length, text: s.text, ...(s.exec ? { exec: true } : {}) });
      }
      const result: RustResult = { v: 1, kind: 'rust', outputs: outs, out, err };
      await this.d.store.putEntry(resultKey, encodeEntry(result));
      await this.manifests.add(p.directKey, entry);
    })();
    const settled = write
      .catch(() => {})
      .finally(() => {
        if (this.writing.get(p.directKey) === settled) this.writing.delete(p.directKey);
      });
    this.writing.set(p.directKey, settled);
    return { stored: true, bytes, write };
  }

  /** Waits for the entries being written; called at the daemon's shutdown. */
  close(): Promise<void> {
    this.closing ??= Promise.all(this.writing.values()).then(() => {});
    return this.closing;
  }
}
