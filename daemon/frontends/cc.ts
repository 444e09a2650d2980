import crypto from 'node:crypto';
import { LRUCache } from 'lru-cache';
import fs from 'node:fs';
import path from 'node:path';
import type { CompileRequest } from '../../ipc/messages/compile.js';
import type { CompilerIds } from '../compilers.js';
import { KeyHasher } from '../hash.js';
import { F_DATE, F_HAS_INCLUDE, F_INCBIN, F_TIME, F_TIMESTAMP, type FileHash, type FileHashes } from '../hot/file-hashes.js';
import type { DirCache } from '../hot/dir-cache.js';
import { changedBefore, writtenBefore, type FsTime } from '../hot/fs-clock.js';
import type { WatchMark } from '../hot/watcher.js';
import type { Attach, StoreLike } from '../store/contract.js';
import type { ChannelLogger } from '../log.js';
import { absentItem, absentParts, decodedCost, decodeManifest, decodeResult, encodeEntry, internManifest, internResult, MAX_MANIFEST_ENTRIES, type Manifest, type ManifestEntry, type Result } from './entries.js';
import { argsForMiss, compilerFlavor, parseGccArgs, type GccCompile, type GccDeps } from './gcc/args.js';
import { planSplit } from './gcc/split.js';
import { gccTargetWords, parseDepfile, writeDepfile } from './gcc/depfile.js';
import { filterSystemDeps, searchDirsForShim, sysdirFlags } from './gcc/sysdirs.js';
import { anchorValid, embedsAnchor, Relativizer } from './relativize.js';
import { writeFileAtomic } from './materialize.js';
import { chunkSearcher, STREAM_MIN } from '../store/blob-stream.js';
import { preprocessHash, runCompiler } from './preprocess.js';
import { finishLater, type Deferred } from './deferred.js';
import type { Done, Finish, Frontend, MmdWrite, Outcome as FrontendOutcome } from './types.js';
import type { ProjectSettings } from '../../config/config.js';
import { objectOutsideScope } from './project-scope.js';
import type { DoneFile } from '../../ipc/messages/done.js';

// The C/C++ front-end (gcc, clang): classify, key, look up, and store after a miss.
//
// Direct mode, validated: the direct key covers compiler identity, normalized arguments,
// the environment that changes output and the source's content. It names a manifest whose
// entries list every file the compile read (from the compiler's own dependency output) with
// its hash, plus the include-path candidates that did not exist. An entry is valid when all
// hashes still match (the daemon's hot table makes that a stat per file) and none of the
// absent candidates appeared, so a header shadowing another one earlier on the path is a miss.

const HAS_INCLUDE = /__has_include(_next)?\s*\(\s*(?:<([^>\n]+)>|"([^"\n]+)")?/g;

/** The literal arguments of every `__has_include(...)` in a file; null if any is not a literal. */
export function hasIncludeArgs(text: string): { name: string; quoted: boolean }[] | null {
  const out: { name: string; quoted: boolean }[] = [];
  for (const m of text.matchAll(HAS_INCLUDE)) {
    if (m[1]) return null;
    const name = m[2] ?? m[3];
    if (name === undefined || path.isAbsolute(name) || name.split('/').includes('..')) return null;
    out.push({ name, quoted: m[3] !== undefined });
  }
  return out;
}

const NEEDS_RESOLVE = /\/\.{1,2}(\/|$)|\/\/|.\/$/;

/** path.resolve(cwd, p), without its cost for the common case: p already absolute and normal. */
function resolveIn(cwd: string, p: string): string {
  return p.charCodeAt(0) === 47 && !NEEDS_RESOLVE.test(p) ? p : path.resolve(cwd, p);
}

export interface CcDeps {
  store: StoreLike;
  hashes: FileHashes;
  dirs: DirCache;
  compilers: CompilerIds;
  systemDirs: (exe: string, lang: string, flags: string[]) => Promise<string[]>;
  project: (cwd: string, env: Record<string, string>) => ProjectSettings;  // base_dir, cache_extensions of this compile
  log: ChannelLogger;
  now: () => number;
  /** The filesystems' clock: a compile's start as files are stamped (hot/fs-clock.ts). */
  fsNow: () => FsTime;
  tmpDir: string;
  deferred?: Deferred;
  /** Where the calls that are links go (link.ts). */
  links?: Frontend<unknown>;
}

export type Outcome = FrontendOutcome<CcPending>;

export interface CcPending {
  args: string[];            // the call as the build made it (for preprocessor mode)
  ppKey?: string;            // set when the lookup used preprocessor mode: store the result there
  cwd: string;
  exe: string;
  env: Record<string, string>;
  parsed: GccCompile;
  rel: Relativizer;
  directKey: string;
  start: number;                 // wall clock: the entry's time, __DATE__
  fsStart: FsTime;               // the filesystems' clock, as late as possible before the compiler ran
  depfileToRead: string | null;   // null: preprocessed input, the source is the only input
  ownDepfile: string | undefined;
  filterSystem: boolean;
  mark: WatchMark | undefined;   // the watcher at the end of the lookup (before the compiler ran)
}

// The source as the compile's report found it, for an entry built later: its hash, and
// whether the watcher vouched then that it had not changed since the lookup (a probe
// written just before its compile and deleted right after, as configure scripts and
// redis's Makefile do, is gone by the time the entry is built).
interface Known { abs: string; fh: FileHash; unchanged: boolean }

// What collectInputs needs of a compile: a C compile's pending state, or one source of a
// dependency-generation call.
type InputsOf = Pick<CcPending, 'cwd' | 'rel' | 'env' | 'start' | 'fsStart' | 'mark'> & { parsed: Pick<GccCompile, 'source' | 'includeDirs'> };

// A `-M`/`-MM` call (GccDeps), run by the shim as the build made it.
interface DepsPending {
  args: string[];
  cwd: string;
  exe: string;
  env: Record<string, string>;
  parsed: GccDeps;
  rel: Relativizer;
  directKey: string;
  start: number;
  fsStart: FsTime;
  mark: WatchMark | undefined;
}


// Environment that changes what the compiler produces or prints.
const KEY_ENV = [
  'CPATH', 'C_INCLUDE_PATH', 'CPLUS_INCLUDE_PATH', 'OBJC_INCLUDE_PATH', 'OBJCPLUS_INCLUDE_PATH',
  'GCC_EXEC_PREFIX', 'COMPILER_PATH', 'SOURCE_DATE_EPOCH', 'GCC_COMPARE_DEBUG', 'CCC_OVERRIDE_OPTIONS',
  'LANG', 'LC_ALL', 'LC_CTYPE', 'LC_MESSAGES', 'LANGUAGE', 'GCC_COLORS', 'TZ',
];

// Options whose value is a path, in joined form (the parser hands them to us as they were).
const PATH_PREFIXES = ['-isystem', '-idirafter', '-iquote', '-include', '-imacros', '-isysroot', '-iprefix', '-iwithprefixbefore', '-iwithprefix', '--sysroot=', '-specs=', '-fprofile-use=', '-fprofile-instr-use=', '-fsanitize-blacklist=', '-fsanitize-ignorelist=', '-I', '-L', '-B'];

function splitPathArg(arg: string): [string, string] {
  if (!arg.startsWith('-')) return ['', arg];
  for (const p of PATH_PREFIXES) if (arg.startsWith(p) && arg.length > p.length) return [p, arg.slice(p.length)];
  return [arg, ''];
}

function localDate(ms: number): string {
  const d = new Date(ms);
  return `${d.getFullYear()}-${d.getMonth() + 1}-${d.getDate()}`;
}

// -MT/-MQ as given, else what the compiler writes by default, in the compiler's own layout.
function depfileText(parsed: GccCompile, deps: string[]): Buffer {
  const d = parsed.depfile!;
  const targets = d.targets.length ? d.targets : [{ value: d.defaultTarget, quoted: true }];
  return Buffer.from(writeDepfile(targets, deps, d.phony, { compiler: parsed.compiler }));
}



// Decoded manifests and results stay in memory: a hit then reads only the object's blob
// from disk. The daemon is the only writer of both. Their strings are shared (entries.ts
// intern), so what is counted is their own arrays and pointers (decodedCost).
const ENTRY_CACHE_BYTES = 32 * 1024 * 1024;
// Depfiles rendered for hits, by result and the call's depfile options: a rebuild of the
// same tree writes the same text again.
const DEPFILE_CACHE_BYTES = 8 * 1024 * 1024;
// Emptied depfile names kept for reuse (CcFrontend.freeDepfiles): more than a build runs at once.
const DEPFILES_KEPT = 64;
// Misses whose entries wait for the build to pause (finishInner): at most this many, holding
// at most this many object bytes; beyond, an entry is built at once, as without a watcher.
// Each holds its compile's state (arguments, environment, dependency list): with 2000, RSS
// after 10 000 compiles without a pause was 216 MiB (161 with none waiting).
const DEFERRED_MAX = 500;
const DEFERRED_BYTES = 32 * 1024 * 1024;

interface Deps { deps: string[]; builtin: string[]; system: string[] }

interface Inputs {
  files: [string, string][];          // key form, hash
  absent: Map<string, Set<string>>;   // dir's key form -> names that must stay absent there
  stamps: [string, string][];
  depForms: string[];
  sys: string;                        // '1' per system dependency, '0' otherwise
  date: string | null;
  needPp: boolean;
}

// What finishing a compile works out for one dependency as the depfile spells it, for one
// search path and one (cwd, base dir): its absolute path, key form, and the same name in
// every earlier search directory, as flat [dir, name, dir's key form] triples. The same for
// every compile of a tree (a cold libuv build works out ~25 000 of them, ~50 distinct), so
// it is worked out once; whether the candidates exist is asked on every compile.
interface DepPlan { abs: string; form: string; common: string; cands: string[] }
const PLANS_MAX = 20_000;

class DepPlans {
  private byContext = new Map<string, Map<string, DepPlan>>();
  private count = 0;

  for(context: string, search: string[]): { get(d: string, cwd: string, rel: Relativizer): DepPlan; once(d: string, cwd: string, rel: Relativizer): DepPlan } {
    let plans = this.byContext.get(context);
    if (!plans) {
      if (this.count >= PLANS_MAX) {
        this.byContext.clear();
        this.count = 0;
      }
      this.byContext.set(context, (plans = new Map()));
    }
    const m = plans;
    const searchPrefix = search.map((d) => (d === '/' ? '/' : d + '/'));
    return {
      get: (d, cwd, rel) => {
        let plan = m.get(d);
        if (!plan) {
          plan = planDep(d, cwd, rel, search, searchPrefix);
          m.set(d, plan);
          this.count++;
        }
        return plan;
      },
      once: (d, cwd, rel) => m.get(d) ?? planDep(d, cwd, rel, search, searchPrefix),
    };
  }
}

function planDep(d: string, cwd: string, rel: Relativizer, search: string[], searchPrefix: string[]): DepPlan {
  const abs = resolveIn(cwd, d);
  const [form, common] = rel.keyed(d);
  const cands: string[] = [];
  const i = searchPrefix.findIndex((pre) => abs.startsWith(pre));
  if (i > 0) {
    // search dirs and abs are normalized, so plain concatenation is path.join here
    const relName = abs.slice(searchPrefix[i].length);
    const slash = relName.lastIndexOf('/');
    const base = relName.slice(slash + 1);
    for (let j = 0; j < i; j++) {
      if (searchPrefix[j] + relName === abs) continue;
      const dir = slash < 0 ? search[j] : searchPrefix[j] + relName.slice(0, slash);
      cands.push(dir, base, rel.keyed(dir)[0]);
    }
  }
  return { abs, form, common, cands };
}

export class CcFrontend implements Frontend<CcPending> {
  readonly name = 'cc';

  private manifestLocks = new Map<string, Promise<void>>();
  private misses = 0;
  // Depfile names of finished compiles, emptied, for the next misses: gcc truncates an
  // existing file instead of making an inode (0.1-0.7 ms on the benchmark VM's ext4 once
  // many were deleted recently, and each deletion makes the next creates slower: write.ts).
  // Emptied, a name whose next compile writes nothing reads as no dependencies (not stored).
  private freeDepfiles: string[] = [];
  private readonly tag = crypto.randomBytes(6).toString('hex');
  // Stores still being written, by direct key: a lookup for the same key waits for them, so
  // the second of two identical compiles in a row hits even while the first is being stored.
  private writing = new Map<string, Promise<void>>();
  private entries = new LRUCache<string, { value: Manifest | Result }>({ maxSize: ENTRY_CACHE_BYTES });
  private absOf = new WeakMap<ManifestEntry, { cwd: string; files: string[]; absent: string[] }>();
  private depfiles = new LRUCache<string, Buffer>({ maxSize: DEPFILE_CACHE_BYTES, sizeCalculation: (b) => b.length + 64 });
  private plans = new DepPlans();
  // Entries waiting to be built (filed under their direct key: a lookup builds them first).
  private deferredBytes = 0;
  private deferredCount = 0;

  constructor(private readonly d: CcDeps) {}

  private async readManifest(key: string): Promise<Manifest | undefined> {
    const hit = this.entries.get('m' + key);
    if (hit) return hit.value as Manifest;
    const buf = await this.d.store.getEntry(key);
    const m = decodeManifest(buf);
    if (m) this.remember('m' + key, m);
    return m;
  }

  private async readResult(key: string): Promise<Result | undefined> {
    const hit = this.entries.get('r' + key);
    if (hit) return hit.value as Result;
    const buf = await this.d.store.getEntry(key);
    const r = decodeResult(buf);
    if (r) this.remember('r' + key, r);
    return r;
  }

  private remember(k: string, value: Manifest | Result) {
    this.entries.set(k, { value }, { size: decodedCost(value) });
  }

  forgetResult(key: string) {
    this.entries.delete('r' + key);
  }

  // Like ccache, any compiler we do not know by name is assumed to take gcc's options: a
  // wrapper script named "mycc" is still a C compiler. Calls that don't parse as a compile
  // pass through with a reason.
  handles(argv0: string, exe: string): boolean {
    const notC = (n: string) => /^(rustc|rustdoc|cargo|clippy-driver)(-.*)?$/.test(path.basename(n));
    return !notC(argv0) && !notC(exe);
  }

  async lookup(req: CompileRequest, env: Record<string, string>): Promise<Outcome> {
    const { cwd, exe } = req;
    const args = req.argv.slice(1);
    const penv = { cwd, env, compiler: compilerFlavor(exe), readFile: (p: string) => fs.readFileSync(path.resolve(cwd, p), 'utf8') };
    const parsed = parseGccArgs(args, penv);
    if (parsed.kind === 'pass') {
      // Several sources, or sources in a link: one compile per source (split.ts), when the shim can.
      if (req.sx && (parsed.reason === 'multiple_sources' || parsed.reason === 'link')) {
        const plan = planSplit(args, penv);
        if (plan.kind === 'split') return { kind: 'split', compiles: plan.compiles, link: plan.link };
        if (parsed.reason === 'multiple_sources') return { kind: 'pass', reason: plan.reason };
      }
      if (parsed.reason === 'link' && this.d.links) {
        const o = await this.d.links.lookup(req, env);
        return (o.kind === 'miss' ? { ...o, frontend: this.d.links } : o) as Outcome;
      }
      return { kind: 'pass', reason: parsed.reason };
    }
    if (parsed.kind === 'deps') return (await this.depsLookup(req, env, parsed)) as Outcome;
    const outside = objectOutsideScope(parsed.output, parsed.outputKind, this.d.project(cwd, env));
    if (outside) return { kind: 'pass', reason: outside };

    const srcAbs = path.resolve(cwd, parsed.source);
    const src = this.d.hashes.get(srcAbs);
    if (!src) return { kind: 'pass', reason: 'source_missing' };
    if (src.flags & F_TIME && !env.SOURCE_DATE_EPOCH) return { kind: 'pass', reason: 'time_macro' };
    if (src.flags & F_INCBIN) return { kind: 'pass', reason: 'incbin' };

    const rel = new Relativizer(cwd, this.d.project(cwd, env).base_dir);
    const h = new KeyHasher('vrift-cc-direct-v1');
    h.str(this.d.compilers.identity(exe)).str(parsed.lang);
    this.hashArgs(h, parsed, cwd, rel);
    h.str(rel.key(parsed.source)).str(src.hash);
    for (const k of KEY_ENV) h.str(k).str(env[k] ?? '\u0000');
    const directKey = h.digest();

    await this.settle(directKey);
    const start = this.d.now();
    const manifest = await this.readManifest(directKey);
    let ppKey: string | undefined;
    if (manifest?.pp) {
      const ppHash = await preprocessHash(exe, args, cwd, env);
      if (!ppHash) return { kind: 'pass', reason: 'preprocessor_failed' };
      ppKey = new KeyHasher('vrift-cc-pp-v1').str(directKey).str(ppHash).digest();
      const result = await this.readResult(ppKey);
      const hit = result && (await this.materialize(ppKey, result, parsed, cwd, req.wf));
      if (hit) return hit;
    } else if (manifest) {
      const hit = await this.tryHit(manifest, parsed, cwd, req.wf);
      if (hit) return hit;
    }

    // Unique by this daemon's tag and a counter (random bytes per miss cost more than the name is worth).
    const ownDepfile = this.freeDepfiles.pop() ?? path.join(this.d.tmpDir, `${this.tag}-${(this.misses++).toString(36)}.d`);
    const m = argsForMiss(parsed, args, ownDepfile);
    const depfileToRead = m.depfileToRead === null ? null : path.resolve(cwd, m.depfileToRead);
    const obj = path.resolve(cwd, parsed.output);
    // All finish() reads before the build goes on. -MMD's depfile (the full one filtered)
    // must be there before the build may read it: the native shim writes it (gcc's layout
    // only; for clang's the report waits for the daemon to write it).
    let mmd: MmdWrite | undefined;
    if (m.filterSystem && parsed.depfile && parsed.compiler !== 'clang' && depfileToRead !== null) {
      const builtin = await this.d.systemDirs(exe, parsed.lang, sysdirFlags(parsed)).catch(() => undefined);
      const d = parsed.depfile;
      const targets = d.targets.length ? d.targets : [{ value: d.defaultTarget, quoted: true }];
      if (builtin) mmd = [depfileToRead, path.resolve(cwd, d.file), d.phony, gccTargetWords(targets), searchDirsForShim(parsed.includeDirs, builtin)];
    }
    return {
      kind: 'miss',
      argv: [exe, ...m.argv],
      collect: m.filterSystem && !mmd ? undefined : depfileToRead === null ? [obj] : [obj, depfileToRead],
      mmd,
      pending: {
        args, ppKey, cwd, exe, env, parsed, rel, directKey,
        start,
        fsStart: this.d.fsNow(),
        depfileToRead,
        ownDepfile: depfileToRead === ownDepfile ? ownDepfile : undefined,
        filterSystem: m.filterSystem,
        mark: this.d.hashes.mark(),
      },
    };
  }

  // The key's arguments: path-valued ones in their cwd-relative form, and the content of any
  // file an option names (-include, -specs=...) or that changes the result (extraInputs).
  private hashArgs(h: KeyHasher, parsed: { keyArgs: string[]; pathArgs: number[]; extraInputs: string[] }, cwd: string, rel: Relativizer): void {
    const pathIdx = new Set(parsed.pathArgs);
    for (let i = 0; i < parsed.keyArgs.length; i++) {
      const a = parsed.keyArgs[i];
      if (!pathIdx.has(i)) {
        h.str(a);
        continue;
      }
      const [opt, p] = splitPathArg(a);
      h.str(opt + rel.key(p));
      const fh = p ? this.d.hashes.get(path.resolve(cwd, p)) : undefined;
      if (fh) h.str(fh.hash);
    }
    for (const f of parsed.extraInputs) h.str(rel.key(f)).str(this.d.hashes.get(path.resolve(cwd, f))?.hash ?? '\u0000missing');
  }

  // ---- dependency generation: `$(CC) -MM *.c > Makefile.dep` (GccDeps) ----
  //
  // One entry for the whole call: the key has every argument and every source's content
  // (paths keyed as a compile's are); the result is what the call printed. Its inputs are every file the
  // preprocessor read for any of the sources, system headers included, with the same checks
  // as a compile's (hashes, same-named headers earlier on the path, timestamps against the
  // call's start). -MM lists no system headers, so after a -MM miss the daemon runs the call
  // once more with -M when the build pauses (deferred, like a compile's entry) and takes the
  // inputs from that; an input changed since the call started refuses the entry.

  private depsFrontend: Frontend<DepsPending> = {
    name: 'cc-deps',
    handles: () => false,
    lookup: () => Promise.resolve({ kind: 'pass', reason: 'not_a_lookup' }),
    finish: (p, done) => this.depsFinish(p, done),
  };

  private async depsLookup(req: CompileRequest, env: Record<string, string>, parsed: GccDeps): Promise<FrontendOutcome<DepsPending>> {
    const { cwd, exe } = req;
    const args = req.argv.slice(1);
    // Keyed like a compile (paths relative to the cwd under base_dir, so that two checkouts
    // share entries; an output naming the checkout is anchored to it, see store()).
    const rel = new Relativizer(cwd, this.d.project(cwd, env).base_dir);
    const h = new KeyHasher('vrift-cc-deps-v1');
    h.str(this.d.compilers.identity(exe)).str(parsed.lang).str(parsed.mode);
    this.hashArgs(h, parsed, cwd, rel);
    for (const src of parsed.sources) {
      const fh = this.d.hashes.get(path.resolve(cwd, src));
      if (!fh) return { kind: 'pass', reason: 'source_missing' };
      h.str(rel.key(src)).str(fh.hash);
    }
    for (const k of KEY_ENV) h.str(k).str(env[k] ?? '\u0000');
    h.str(parsed.outFile === null ? '\u0000stdout' : rel.key(parsed.outFile));
    const directKey = h.digest();

    await this.settle(directKey);
    const start = this.d.now();
    const manifest = await this.readManifest(directKey);
    for (const e of manifest && !manifest.pp ? manifest.entries : []) {
      if (!this.valid(e, cwd)) continue;
      const result = await this.readResult(e.result);
      const file = result?.outputs.find((o) => o.role === 'deps');
      if (!result || (parsed.outFile === null) !== (file === undefined)) continue;
      if (!file) return { kind: 'hit', out: result.out, err: result.err, code: 0, bytes: result.out.length, latency: 'deps_hit' };
      const data = await this.d.store.getBlob(file.digest);
      if (!data) {
        this.forgetResult(e.result);
        continue;
      }
      const dest = path.resolve(cwd, parsed.outFile!);
      if (req.wf) return { kind: 'hit', out: result.out, err: result.err, code: 0, bytes: data.length, files: [[dest, data]], latency: 'deps_hit' };
      try {
        writeFileAtomic(dest, data);
      } catch {
        break; // e.g. no such directory: let the compiler say so
      }
      return { kind: 'hit', out: result.out, err: result.err, code: 0, bytes: data.length, latency: 'deps_hit' };
    }
    return {
      kind: 'miss',
      argv: [exe, ...args],
      frontend: this.depsFrontend as Frontend,
      pending: { args, cwd, exe, env, parsed, rel, directKey, start, fsStart: this.d.fsNow(), mark: this.d.hashes.mark() },
    };
  }

  private async depsFinish(p: DepsPending, done: Done): Promise<Finish> {
    if (done.code !== 0) return { stored: false, reason: 'compile_failed' };
    if (done.nocache) return { stored: false, reason: 'output_too_big' };
    // The rules written to a file: read now, before the build can change it.
    let file: Buffer | undefined;
    if (p.parsed.outFile !== null) {
      try {
        const abs = path.resolve(p.cwd, p.parsed.outFile);
        const st = fs.statSync(abs);
        if (writtenBefore(p.fsStart, st.dev, st.mtimeMs)) return { stored: false, reason: 'output_not_written' };
        file = fs.readFileSync(abs);
      } catch {
        return { stored: false, reason: 'output_missing' };
      }
    }
    const build = () => this.depsEntry(p, done, file);
    if (!this.d.deferred || p.mark === undefined) return { stored: 'later', result: build() };
    return finishLater(this.d.deferred, p.directKey, build, () => {}, (err) => this.d.log.warn('building a cache entry failed', { err, sources: p.parsed.sources.length }));
  }

  private async depsEntry(p: DepsPending, done: Done, file: Buffer | undefined): Promise<Finish> {
    const { parsed, cwd } = p;
    let text = (file ?? done.out).toString('latin1');
    if (parsed.mode === 'MM') {
      const full = await runForDeps(p.exe, depsWithSystemHeaders(p.args, parsed), cwd, p.env);
      if (full === undefined) return { stored: false, reason: 'deps_rerun_failed' };
      text = full;
    }
    const rules = splitDepRules(text, parsed.sources.length);
    if (!rules || rules.some((r, i) => r[0] !== parsed.sources[i])) return { stored: false, reason: 'deps_unparsed' };
    const builtin = await this.d.systemDirs(p.exe, parsed.lang, sysdirFlags(parsed));
    const files = new Map<string, string>();
    const absent = new Map<string, Set<string>>();
    const stamps: [string, string][] = [];
    let date: string | null = null;
    for (let i = 0; i < rules.length; i++) {
      // Each source checked as its own compile would be (its directory leads the search).
      // __TIME__ and __DATE__ change no dependency list: as if SOURCE_DATE_EPOCH were set.
      const one: InputsOf = {
        cwd, env: { ...p.env, SOURCE_DATE_EPOCH: '0' }, rel: p.rel, start: p.start, fsStart: p.fsStart, mark: p.mark,
        parsed: { source: parsed.sources[i], includeDirs: parsed.includeDirs },
      };
      const { system } = filterSystemDeps(rules[i], parsed.includeDirs, builtin);
      const inputs = this.collectInputs(one, rules[i], builtin, system);
      if ('reason' in inputs) return { stored: false, reason: inputs.reason };
      if (inputs.needPp) return { stored: false, reason: 'needs_preprocessor' };
      for (const [f, hsh] of inputs.files) files.set(f, hsh);
      for (const [d, ns] of inputs.absent) {
        const set = absent.get(d) ?? new Set<string>();
        for (const n of ns) set.add(n);
        absent.set(d, set);
      }
      stamps.push(...inputs.stamps);
      date ??= inputs.date;
    }
    const anchor = p.rel.anchor();
    const entryAnchor = embedsAnchor(done.out, anchor[1]) || embedsAnchor(done.err, anchor[1]) || (file !== undefined && embedsAnchor(file, anchor[1])) ? anchor : null;
    const rk = new KeyHasher('vrift-cc-deps-result-v1').str(p.directKey);
    for (const [f, hsh] of files) rk.str(f).str(hsh);
    rk.str(entryAnchor ? entryAnchor.join('\u0000') : '').str(date ?? '');
    for (const [f, m] of stamps) rk.str(f).str(m);
    const resultKey = rk.digest();
    const entry: ManifestEntry = { files: [...files].flat(), absent: [...absent].map(([d, ns]) => absentItem(d, ns)), anchor: entryAnchor, date, stamps, result: resultKey, time: p.start };
    const write = (async () => {
      const digest = file && (await this.d.store.putBlob(file));
      const outputs: Result['outputs'] = file ? [{ role: 'deps', digest: digest!, size: file.length }] : [];
      const result: Result = { v: 2, outputs, out: done.out, err: done.err, deps: [], sys: '' };
      await this.d.store.putEntry(resultKey, encodeEntry(result));
      this.remember('r' + resultKey, internResult(result));
      await this.addToManifest(p.directKey, entry, false, { entries: [resultKey], blobs: digest ? [digest] : [] });
    })();
    this.track(p.directKey, write);
    return { stored: true, bytes: (file ?? done.out).length, write };
  }

  // A store of `key` in progress: lookups of the same key wait for it (`writing`).
  private track(key: string, write: Promise<void>): void {
    const settled = write.catch(() => {}).finally(() => {
      if (this.writing.get(key) === settled) this.writing.delete(key);
    });
    this.writing.set(key, settled);
  }

  // An entry's paths resolved for the cwd it was last checked from.
  private resolvedPaths(e: ManifestEntry, cwd: string): { files: string[]; absent: string[] } {
    let r = this.absOf.get(e);
    if (!r || r.cwd !== cwd) {
      const files: string[] = [];
      for (let i = 0; i < e.files.length; i += 2) files.push(Relativizer.toAbs(e.files[i], cwd));
      r = { cwd, files, absent: e.absent.map((a) => Relativizer.toAbs(absentParts(a)[0], cwd)) };
      this.absOf.set(e, r);
    }
    return r;
  }

  private valid(e: ManifestEntry, cwd: string): boolean {
    if (!anchorValid(e.anchor, cwd)) return false;
    this.d.dirs.beginRound();
    if (e.date && e.date !== localDate(this.d.now())) return false;
    const abs = this.resolvedPaths(e, cwd);
    for (let i = 0; i < abs.files.length; i++) {
      if (this.d.hashes.get(abs.files[i])?.hash !== e.files[2 * i + 1]) return false;
    }
    for (let i = 0; i < e.absent.length; i++) {
      for (const n of absentParts(e.absent[i])[1]) if (this.d.dirs.has(abs.absent[i], n)) return false;
    }
    for (const [form, mtime] of e.stamps) if (String(this.d.hashes.get(Relativizer.toAbs(form, cwd))?.mtimeMs) !== mtime) return false;
    return true;
  }

  private async tryHit(manifest: Manifest, parsed: GccCompile, cwd: string, shimWrites: boolean): Promise<Outcome | undefined> {
    for (const e of manifest.entries) {
      if (!this.valid(e, cwd)) continue;
      const result = await this.readResult(e.result);
      const hit = result && (await this.materialize(e.result, result, parsed, cwd, shimWrites));
      if (hit) return hit;
    }
    return undefined;
  }

  // Puts a result's outputs where this call wants them (or hands them to a shim that writes
  // them itself); undefined when the blob is gone.
  private async materialize(resultKey: string, result: Result, parsed: GccCompile, cwd: string, shimWrites: boolean): Promise<Outcome | undefined> {
    const obj = result.outputs.find((o) => o.role === 'obj');
    const objAbs = path.resolve(cwd, parsed.output);
    const files: [string, Buffer][] = [];
    let bytes: number | undefined;
    if (obj && obj.size >= STREAM_MIN) {
      // Large: streamed from the store (or the remote) straight into place, never held whole.
      try {
        bytes = await this.d.store.copyBlobTo(obj.digest, objAbs, undefined, obj.size);
      } catch (err) {
        this.d.log.debug('materialize failed', { err, output: parsed.output });
        return { kind: 'pass', reason: 'materialize_failed' };
      }
    } else {
      const data = obj && (await this.d.store.getBlob(obj.digest));
      if (data) files.push([objAbs, data]);
      bytes = data?.length;
    }
    if (bytes === undefined) {
      this.forgetResult(resultKey); // evicted or corrupt blob: a miss, and the next store heals it
      return undefined;
    }
    if (parsed.depfile) {
      const d = parsed.depfile;
      const k = [resultKey, cwd, d.mode, d.phony, d.defaultTarget, parsed.compiler, ...d.targets.map((t) => (t.quoted ? 'Q' : 'T') + t.value)].join('\u0000');
      let text = this.depfiles.get(k);
      if (!text) {
        const deps = result.deps.filter((_, i) => d.mode === 'MD' || result.sys[i] !== '1').map((form) => Relativizer.toPath(form, cwd));
        text = depfileText(parsed, deps);
        this.depfiles.set(k, text);
      }
      files.push([path.resolve(cwd, d.file), text]);
    }
    if (shimWrites) return { kind: 'hit', out: result.out, err: result.err, code: 0, bytes, files };
    try {
      for (const [f, d] of files) writeFileAtomic(f, d);
    } catch (err) {
      // e.g. the output directory does not exist: let the compiler fail the way it would.
      this.d.log.debug('materialize failed', { err, output: parsed.output });
      return { kind: 'pass', reason: 'materialize_failed' };
    }
    return { kind: 'hit', out: result.out, err: result.err, code: 0, bytes };
  }

  // Called when the shim reports the compile it ran. Everything the build could change
  // next (object, depfiles, inputs' hashes) is read before this returns; the store writes
  // continue in the background.
  async finish(p: CcPending, done: Done): Promise<Finish> {
    // A one-way report's sender does not wait for this: the build's next call for the same key
    // can come while it runs (the first compile's system include dirs take a gcc run), and
    // waits for it (settle) instead of missing.
    let taken!: () => void;
    const gate = new Promise<void>((r) => (taken = r));
    const before = this.writing.get(p.directKey);
    this.track(p.directKey, before ? Promise.all([before, gate]).then(() => {}) : gate);
    try {
      return await this.finishInner(p, done);
    } finally {
      taken();
      if (p.ownDepfile) this.recycle(p.ownDepfile);
    }
  }

  private recycle(file: string): void {
    if (this.freeDepfiles.length >= DEPFILES_KEPT) return void fs.rm(file, { force: true }, () => {});
    fs.truncate(file, 0, (err) => {
      if (!err) this.freeDepfiles.push(file);
      else fs.rm(file, { force: true }, () => {});
    });
  }

  // Before a lookup reads a key's manifest: a report of that key being taken in, then its
  // entry waiting for the build's pause, then its store write.
  private async settle(key: string): Promise<void> {
    await this.writing.get(key)?.catch(() => {});
    await this.d.deferred?.run(key);
    await this.writing.get(key)?.catch(() => {});
  }

  private async finishInner(p: CcPending, done: Done): Promise<Finish> {
    if (done.code !== 0) return { stored: false, reason: 'compile_failed' };
    if (done.nocache) return { stored: false, reason: 'output_too_big' };
    const outputs = done.files ? this.sentOutputs(p, done.files) : this.readOutputs(p);
    if ('reason' in outputs) return { stored: false, reason: outputs.reason };
    const { parsed, cwd } = p;
    // Parsing the dependency list and sorting out the system headers wait with the rest of
    // the entry (a tenth of the daemon's CPU in a cold build), unless the build reads a
    // depfile from us next: -MMD's, written now without the system headers (by the native
    // shim before a one-way report: RunReply.mmd). The compiler's own include dirs are
    // asked for now (it runs the compiler once per compiler and flags).
    const builtin = this.d.systemDirs(p.exe, parsed.lang, sysdirFlags(parsed));
    builtin.catch(() => {}); // the entry's build sees the failure
    let now: Deps | undefined;
    if (p.filterSystem && parsed.depfile && !done.files) {
      const d = await this.depsOf(p, outputs.depText, builtin);
      if ('reason' in d) return { stored: false, reason: d.reason };
      const sys = new Set(d.system);
      writeFileAtomic(path.resolve(cwd, parsed.depfile.file), depfileText(parsed, d.deps.filter((x) => !sys.has(x))));
      now = d;
    }
    const build = async (known?: Known): Promise<Finish> => {
      const d = now ?? (await this.depsOf(p, outputs.depText, builtin));
      if ('reason' in d) return { stored: false, reason: d.reason };
      const inputs = this.collectInputs(p, d.deps, d.builtin, d.system, known);
      if ('reason' in inputs) return { stored: false, reason: inputs.reason };
      return this.store(p, done, outputs.obj, inputs);
    };
    // Everything the build could change next is in memory now (object, dependency list), so
    // the entry can wait for the build to pause: on two cores, hashing the inputs and building
    // the manifest was half the daemon's CPU in a cold build. Only with the watcher: what
    // collectInputs sees later must be what the compiler saw, and the input checks already
    // prove that (a file changed since the compile's start is refused, by its timestamps or
    // its events), and so does presentBefore for a shadowing header that appeared since.
    const obj = outputs.obj;
    const deferred = this.d.deferred;
    if (!deferred || p.mark === undefined || !obj || this.deferredCount >= DEFERRED_MAX || this.deferredBytes + obj.length > DEFERRED_BYTES) return build();
    // The source as the compile left it: configure-style probes delete theirs right away.
    const srcAbs = path.resolve(cwd, parsed.source);
    const src = this.d.hashes.get(srcAbs);
    const known = src && { abs: srcAbs, fh: src, unchanged: this.d.hashes.unchangedSince(srcAbs, p.mark) };
    this.deferredCount++;
    this.deferredBytes += obj.length;
    return finishLater(
      deferred,
      p.directKey,
      () => {
        this.d.hashes.sync();
        return build(known);
      },
      () => {
        this.deferredCount--;
        this.deferredBytes -= obj.length;
      },
      (err) => this.d.log.warn('building a cache entry failed', { err, source: parsed.source }),
    );
  }

  // The same, as the shim read them when the compiler exited (a one-way report, done.ts).
  private sentOutputs(p: CcPending, files: DoneFile[]): { obj: Buffer | undefined; depText: string | undefined } | { reason: string } {
    const objAbs = path.resolve(p.cwd, p.parsed.output);
    const obj = files.find((f) => f.path === objAbs);
    const dep = p.depfileToRead === null ? undefined : files.find((f) => f.path === p.depfileToRead);
    if (!obj || (p.depfileToRead !== null && !dep)) return { reason: 'output_missing' };
    // Which clock stamped it: its directory's device (unknown: compared with the slack).
    const dev = fs.statSync(path.dirname(objAbs), { throwIfNoEntry: false })?.dev ?? -2;
    if (writtenBefore(p.fsStart, dev, obj.mtimeMs)) return { reason: 'output_not_written' };
    return { obj: obj.data, depText: dep?.data.toString('utf8') };
  }

  // The object (unless large: streamed into the store later) and the dependency list the
  // compiler wrote, read before the build can change them.
  private readOutputs(p: CcPending): { obj: Buffer | undefined; depText: string | undefined } | { reason: string } {
    const objAbs = path.resolve(p.cwd, p.parsed.output);
    let obj: Buffer | undefined;
    let depText: string | undefined;
    try {
      const st = fs.statSync(objAbs);
      if (writtenBefore(p.fsStart, st.dev, st.mtimeMs)) return { reason: 'output_not_written' };
      if (st.size < STREAM_MIN) obj = fs.readFileSync(objAbs);
      depText = p.depfileToRead === null ? undefined : fs.readFileSync(p.depfileToRead, 'utf8');
    } catch {
      return { reason: 'output_missing' };
    }
    return { obj, depText };
  }

  // The dependencies as the depfile spells them (the source alone without one), and which
  // of them are system headers.
  private async depsOf(p: CcPending, depText: string | undefined, systemDirs: Promise<string[]>): Promise<Deps | { reason: string }> {
    const deps = depText === undefined ? [p.parsed.source] : parseDepfile(depText).deps;
    if (deps.length === 0) return { reason: 'no_dependencies' };
    const builtin = await systemDirs;
    return { deps, builtin, system: filterSystemDeps(deps, p.parsed.includeDirs, builtin).system };
  }

  // Every input's hash as of now (the compile ended, perhaps a while ago: anything changed
  // since its start refuses the entry), and every place where a same-named header would
  // have won.
  private collectInputs(p: InputsOf, deps: string[], builtin: string[], system: string[], known?: Known): Inputs | { reason: string } {
    const { parsed, cwd, rel } = p;
    const systemSet = new Set(system);

    // Search order for quote includes, a superset of the angle one: any earlier directory
    // in which a same-named header could appear later.
    const srcAbs = path.resolve(cwd, parsed.source);
    const search = [path.dirname(srcAbs), ...parsed.includeDirs.quote, ...parsed.includeDirs.angle, ...parsed.includeDirs.system]
      .map((d) => path.resolve(cwd, d))
      .concat(builtin, parsed.includeDirs.after.map((d) => path.resolve(cwd, d)));
    const plans = this.plans.for(rel.formsKey + '\u0001' + search.join('\u0000'), search);

    this.d.dirs.beginRound();
    const files: [string, string][] = [];
    const absent = new Map<string, Set<string>>();
    const stamps: [string, string][] = [];
    const depForms: string[] = [];
    let sys = '';
    let date: string | null = null;
    let needPp = false;
    const seen = new Set<string>();
    for (let n = 0; n < deps.length; n++) {
      const d = deps[n];
      // The source (first) is this compile's own: not worth remembering.
      const plan = n === 0 ? plans.once(d, cwd, rel) : plans.get(d, cwd, rel);
      rel.track(plan.common);
      const isSys = systemSet.has(d);
      depForms.push(plan.form);
      sys += isSys ? '1' : '0';
      const abs = plan.abs;
      if (seen.has(abs)) continue;
      seen.add(abs);
      const k = known?.abs === abs ? known : undefined;
      const fh = k ? k.fh : this.d.hashes.get(abs);
      if (!fh) {
        this.d.log.info('not stored: an input is gone', { file: abs, source: parsed.source });
        return { reason: 'input_missing' };
      }
      // Stamped at or after the start: written during the compile, or in the very tick
      // before it (can't tell); the watcher can.
      if (!changedBefore(p.fsStart, fh) && !(k ? k.unchanged : this.d.hashes.unchangedSince(abs, p.mark))) {
        this.d.log.info('not stored: an input changed during or just before the compile', { file: abs, source: parsed.source, mtimeMs: fh.mtimeMs, ctimeMs: fh.ctimeMs, startMs: p.fsStart.ms, sameClock: fh.dev === p.fsStart.dev, watched: p.mark !== undefined });
        return { reason: 'input_too_new' };
      }
      if (fh.flags !== 0) {
        if (fh.flags & F_TIME && !p.env.SOURCE_DATE_EPOCH) return { reason: 'time_macro' };
        if (fh.flags & F_INCBIN) return { reason: 'incbin' };
        if (fh.flags & F_HAS_INCLUDE && !isSys) {
          const probed = this.probeHasIncludes(abs, search.slice(1 + parsed.includeDirs.quote.length), search.slice(1), p.fsStart, rel, files, absent);
          if (probed === 'too_new') return { reason: 'input_too_new' };
          if (!probed) needPp = true;
        }
        if (fh.flags & F_DATE && !p.env.SOURCE_DATE_EPOCH) date = localDate(p.start);
        if (fh.flags & F_TIMESTAMP) stamps.push([plan.form, String(fh.mtimeMs)]);
      }
      files.push([plan.form, fh.hash]);
      if (abs === srcAbs) continue;
      // The same name in every earlier search directory must stay absent.
      const c = plan.cands;
      for (let k = 0; k < c.length; k += 3) {
        if (this.d.dirs.has(c[k], c[k + 1])) {
          // Present, so not required absent (an earlier directory the compiler searched and
          // did not take it from: #include_next, <> past the source's directory). It must
          // have been there for the compile too, or it would be a shadowing header missed.
          if (!this.d.hashes.presentBefore(c[k], c[k + 1], p.fsStart, p.mark)) {
            this.d.log.info('not stored: a header appeared on the include path during or after the compile', { file: c[k] + '/' + c[k + 1], source: parsed.source });
            return { reason: 'input_too_new' };
          }
          continue;
        }
        let names = absent.get(c[k + 2]);
        if (!names) absent.set(c[k + 2], (names = new Set()));
        names.add(c[k + 1]);
      }
    }
    return { files, absent, stamps, depForms, sys, date, needPp };
  }


  // Builds the entry and starts its writes (through the write-behind store).
  private async store(p: CcPending, done: Done, obj: Buffer | undefined, inputs: Inputs): Promise<Finish> {
    const { parsed, cwd, rel } = p;
    const { files, absent, stamps, date, needPp } = inputs;
    const objAbs = path.resolve(cwd, parsed.output);
    const anchor = rel.anchor();
    let big: { digest: string; size: number } | undefined;
    let bigEmbeds = false;
    if (!obj) {
      const seen = chunkSearcher(anchor[1]);
      try {
        big = await this.d.store.putBlobFile(objAbs, { onChunk: seen.feed });
      } catch (err) {
        this.d.log.warn('large object not stored', { output: parsed.output, err });
        return { stored: false, reason: 'store_failed' };
      }
      bigEmbeds = anchor[1] === '/' || seen.found();
    }
    const embedded = (obj ? embedsAnchor(obj, anchor[1]) : bigEmbeds) || embedsAnchor(done.out, anchor[1]) || embedsAnchor(done.err, anchor[1]);
    const entryAnchor = embedded ? anchor : null;

    const rk = new KeyHasher('vrift-cc-result-v1').str(p.directKey);
    for (const [f, hsh] of files) rk.str(f).str(hsh);
    rk.str(entryAnchor ? entryAnchor.join('\u0000') : '').str(date ?? '');
    for (const [f, m] of stamps) rk.str(f).str(m);
    const resultKey = rk.digest();

    const entry: ManifestEntry = { files: files.flat(), absent: [...absent].map(([d, ns]) => absentItem(d, ns)), anchor: entryAnchor, date, stamps, result: resultKey, time: p.start };
    const storeResult = async (key: string): Promise<Attach> => {
      const { digest, size } = big ?? { digest: await this.d.store.putBlob(obj!), size: obj!.length };
      const result: Result = { v: 2, outputs: [{ role: 'obj', digest, size }], out: done.out, err: done.err, deps: inputs.depForms, sys: inputs.sys };
      const buf = encodeEntry(result);
      await this.d.store.putEntry(key, buf);
      this.remember('r' + key, internResult(result));
      return { entries: [key], blobs: big ? [] : [digest] };
    };
    const write = (async () => {
      if (p.ppKey) return void (await storeResult(p.ppKey));
      if (!needPp) {
        const attach = await storeResult(resultKey);
        return this.addToManifest(p.directKey, entry, false, attach);
      }
      // Direct mode can't vouch for this include set: from now on this key goes through the
      // preprocessor. Store this compile under its preprocessed hash if the inputs the
      // preprocessor reads now are still the ones the compiler read.
      await this.addToManifest(p.directKey, entry, true);
      const ppHash = await preprocessHash(p.exe, p.args, cwd, p.env);
      const unchanged = files.every(([f, hsh]) => this.d.hashes.get(Relativizer.toAbs(f, cwd))?.hash === hsh);
      if (ppHash && unchanged) await storeResult(new KeyHasher('vrift-cc-pp-v1').str(p.directKey).str(ppHash).digest());
    })();
    this.track(p.directKey, write);
    return { stored: true, bytes: obj?.length ?? big!.size, write };
  }

  // `__has_include(<x>)` answers from the include path, and a header it did not find is in
  // no depfile. With literal arguments the answer is pinned like an include: the directories
  // searched before the one that has it are absent candidates, the file found is an input.
  // Anything else (a macro argument, __has_include_next) is left to preprocessor mode.
  private probeHasIncludes(header: string, angle: string[], quote: string[], start: FsTime, rel: Relativizer,
    files: [string, string][], absent: Map<string, Set<string>>): boolean | 'too_new' {
    let text: string;
    try {
      text = fs.readFileSync(header, 'latin1');
    } catch {
      return false;
    }
    const names = hasIncludeArgs(text);
    if (!names) return false;
    for (const { name, quoted } of names) {
      const dirs = quoted ? [path.dirname(header), ...quote] : angle;
      for (const dir of dirs) {
        const cand = path.join(dir, name);
        if (this.d.dirs.exists(cand)) {
          const fh = this.d.hashes.get(cand);
          if (!fh) return false; // a directory, or gone meanwhile
          if (!changedBefore(start, fh)) return 'too_new';
          files.push([rel.key(cand), fh.hash]);
          break;
        }
        const d = rel.key(path.dirname(cand), false);
        let set = absent.get(d);
        if (!set) absent.set(d, (set = new Set()));
        set.add(path.basename(cand));
      }
    }
    return true;
  }

  // Read-modify-write of one manifest, serialized per key inside the daemon.
  private addToManifest(key: string, entry: ManifestEntry, pp = false, attach?: Attach): Promise<void> {
    const prev = this.manifestLocks.get(key) ?? Promise.resolve();
    const next = prev.then(async () => {
      const m: Manifest = (await this.readManifest(key)) ?? { v: 3, entries: [] };
      const entries = pp ? [] : [entry, ...m.entries.filter((e) => e.result !== entry.result)].slice(0, MAX_MANIFEST_ENTRIES);
      const next: Manifest = { v: 3, entries, ...(pp || m.pp ? { pp: true } : {}) };
      const buf = encodeEntry(next);
      await this.d.store.putEntry(key, buf, attach);
      this.remember('m' + key, internManifest(next));
    });
    const tail = next.catch(() => {});
    this.manifestLocks.set(key, tail);
    void tail.then(() => {
      if (this.manifestLocks.get(key) === tail) this.manifestLocks.delete(key);
    });
    return next;
  }
}

// -MM → -M (every header, system ones too), to stdout (never over the build's file), in the
// call as the driver sees it when a response file hides an option.
function depsWithSystemHeaders(args: string[], parsed: GccDeps): string[] {
  const isMM = (x: string) => x === '-MM' || x === '--user-dependencies';
  const src = parsed.outFile !== null || parsed.expandedArgs.filter(isMM).length !== args.filter(isMM).length ? parsed.expandedArgs : args;
  const out: string[] = [];
  for (let i = 0; i < src.length; i++) {
    const x = src[i];
    if (x === '-MF' || x === '-o' || x === '--output') {
      i++;
      continue;
    }
    if (/^(-MF|-o|--output=).+/.test(x)) continue;
    out.push(isMM(x) ? '-M' : x);
  }
  return out;
}

/** The call's stdout, or undefined when it fails. */
async function runForDeps(exe: string, args: string[], cwd: string, env: Record<string, string>): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  return (await runCompiler(exe, args, cwd, env, (d) => chunks.push(d), 600_000)) ? Buffer.concat(chunks).toString('latin1') : undefined;
}

/**
 * The prerequisites of each source's rule in `-M` output, in order: a rule starts on a line
 * that does not begin with a blank; rules without prerequisites (-MP's phony targets) are
 * skipped. Undefined unless there is exactly one rule per source.
 */
export function splitDepRules(text: string, sources: number): string[][] | undefined {
  const rules: string[][] = [];
  let chunk = '';
  const flush = () => {
    if (chunk === '') return;
    const deps = parseDepfile(chunk).deps;
    if (deps.length > 0) rules.push(deps);
    chunk = '';
  };
  for (const line of text.split(/(?<=\n)/)) {
    if (line !== '' && line[0] !== ' ' && line[0] !== '\t' && line !== '\n') flush();
    chunk += line;
  }
  flush();
  return rules.length === sources ? rules : undefined;
}
