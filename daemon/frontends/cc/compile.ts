import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { CompileRequest } from '../../../ipc/messages/compile.js';
import { F_INCBIN, F_TIME } from '../../hot/file-hashes.js';
import type { Manifest, ManifestEntry } from '../entries.js';
import { argsForMiss, type GccCompile } from '../gcc/args.js';
import { gccTargetWords } from '../gcc/depfile.js';
import { searchDirsForShim, sysdirFlags } from '../gcc/sysdirs.js';
import { writeFileAtomic } from '../materialize.js';
import { preprocessHash } from '../preprocess.js';
import { objectOutsideScope } from '../project-scope.js';
import { Relativizer } from '../relativize.js';
import { finishLater } from '../deferred.js';
import type { Done, Finish, LookupOptions, MmdWrite } from '../types.js';
import type { Hits } from './hit.js';
import type { Known } from './inputs.js';
import { compileKey, ppKeyOf } from './keys.js';
import { depfileText, depsOf, readOutputs, sentOutputs, type Deps } from './outputs.js';
import { storeEntry } from './store-entry.js';
import type { CcParts, CcPending, Outcome } from './types.js';

// Emptied depfile names kept for reuse (CompileMode.freeDepfiles): more than a build runs at once.
const DEPFILES_KEPT = 64;
// Misses whose entries wait for the build to pause (finishInner): at most this many, holding
// at most this many object bytes; beyond, an entry is built at once, as without a watcher.
// Each holds its compile's state (arguments, environment, dependency list), which adds up
// in the daemon's memory when a build never pauses.
const DEFERRED_MAX = 500;
const DEFERRED_BYTES = 32 * 1024 * 1024;

/**
 * One C/C++ compile (GccCompile): keyed, looked up in direct mode (or preprocessor mode when
 * direct mode cannot vouch for the key), and after a miss its entry built, at once or when
 * the build pauses.
 */
export class CompileMode {
  private misses = 0;
  // Depfile names of finished compiles, emptied, for the next misses: gcc truncates an
  // existing file instead of making an inode (slow on ext4 once many were deleted recently,
  // and each deletion makes the next creates slower: write.ts).
  // Emptied, a name whose next compile writes nothing reads as no dependencies (not stored).
  private freeDepfiles: string[] = [];
  private readonly tag = crypto.randomBytes(6).toString('hex');
  // Entries waiting to be built (filed under their direct key: a lookup builds them first).
  private deferredBytes = 0;
  private deferredCount = 0;

  constructor(
    private readonly cx: CcParts,
    private readonly hits: Hits,
  ) {}

  async lookup(req: CompileRequest, env: Record<string, string>, args: string[], parsed: GccCompile, o?: LookupOptions): Promise<Outcome> {
    const { d, entries } = this.cx;
    const { cwd, exe } = req;
    const outside = objectOutsideScope(parsed.output, parsed.outputKind, d.project(cwd, env));
    if (outside) return { kind: 'pass', reason: outside };

    const srcAbs = path.resolve(cwd, parsed.source);
    const src = d.hashes.get(srcAbs);
    if (!src) return { kind: 'pass', reason: 'source_missing' };
    if (src.flags & F_TIME && !env.SOURCE_DATE_EPOCH) return { kind: 'pass', reason: 'time_macro' };
    if (src.flags & F_INCBIN) return { kind: 'pass', reason: 'incbin' };

    const rel = new Relativizer(cwd, d.project(cwd, env).base_dir, d.forms);
    const directKey = compileKey(d, exe, parsed, cwd, rel, env, src.hash);

    await d.warming?.(directKey, path.resolve(cwd, parsed.output));
    await this.cx.writes.settle(directKey);
    const start = d.now();
    const manifest = await entries.readManifest(directKey);
    let ppKey: string | undefined;
    const seen = (result: string, inputs?: [string, string][]) =>
      d.observe?.({ kind: 'hit', cwd, exe, args, env, output: parsed.output, directKey, result, inputs });
    if (manifest?.pp) {
      const ppHash = await preprocessHash(exe, args, cwd, env);
      if (!ppHash) return { kind: 'pass', reason: 'preprocessor_failed' };
      ppKey = ppKeyOf(directKey, ppHash);
      const result = await entries.readResult(ppKey);
      const hit = result && (await this.hits.materialize(ppKey, result, parsed, cwd, req.wf));
      if (hit?.kind === 'hit') seen(ppKey);
      if (hit) return hit;
    } else if (manifest) {
      const hit = await this.tryHit(manifest, parsed, cwd, req.wf, seen);
      if (hit) return hit;
      const shared = o?.shared ? await entries.readSharedManifest(directKey) : undefined;
      if (shared && !shared.pp) {
        // Kept in the local manifest, so that the build's own lookup finds it.
        const hit = await this.tryHit(shared, parsed, cwd, req.wf, seen, (e) => entries.mergeShared(directKey, e, shared));
        if (hit) return hit;
      }
    }

    // Unique by this daemon's tag and a counter (random bytes per miss cost more than the name is worth).
    const ownDepfile = this.freeDepfiles.pop() ?? path.join(d.tmpDir, `${this.tag}-${(this.misses++).toString(36)}.d`);
    const m = argsForMiss(parsed, args, ownDepfile);
    const depfileToRead = m.depfileToRead === null ? null : path.resolve(cwd, m.depfileToRead);
    const obj = path.resolve(cwd, parsed.output);
    // All finish() reads before the build goes on. -MMD's depfile (the full one filtered)
    // must be there before the build may read it: the native shim writes it (gcc's layout
    // only; for clang's the report waits for the daemon to write it).
    let mmd: MmdWrite | undefined;
    if (m.filterSystem && parsed.depfile && parsed.compiler !== 'clang' && depfileToRead !== null) {
      const builtin = await d.systemDirs(exe, parsed.lang, sysdirFlags(parsed)).catch(() => undefined);
      const df = parsed.depfile;
      const targets = df.targets.length ? df.targets : [{ value: df.defaultTarget, quoted: true }];
      if (builtin) mmd = [depfileToRead, path.resolve(cwd, df.file), df.phony, gccTargetWords(targets), searchDirsForShim(parsed.includeDirs, builtin)];
    }
    return {
      kind: 'miss',
      argv: [exe, ...m.argv],
      collect: m.filterSystem && !mmd ? undefined : depfileToRead === null ? [obj] : [obj, depfileToRead],
      mmd,
      pending: {
        args,
        ppKey,
        cwd,
        exe,
        env,
        parsed,
        rel,
        directKey,
        start,
        fsStart: d.fsNow(),
        depfileToRead,
        ownDepfile: depfileToRead === ownDepfile ? ownDepfile : undefined,
        filterSystem: m.filterSystem,
        mark: d.hashes.mark(),
      },
    };
  }

  private async tryHit(
    manifest: Manifest,
    parsed: GccCompile,
    cwd: string,
    shimWrites: boolean,
    seen: (result: string, inputs: [string, string][]) => void,
    used?: (e: ManifestEntry) => Promise<void>,
  ): Promise<Outcome | undefined> {
    for (const e of manifest.entries) {
      if (!this.cx.validity.valid(e, cwd)) continue;
      const result = await this.cx.entries.readResult(e.result);
      const hit = result && (await this.hits.materialize(e.result, result, parsed, cwd, shimWrites));
      if (hit?.kind === 'hit') await used?.(e);
      if (hit?.kind === 'hit' && this.cx.d.observe) seen(e.result, entryInputs(e.files, cwd));
      if (hit) return hit;
    }
    return undefined;
  }

  // Called when the shim reports the compile it ran. Everything the build could change
  // next (object, depfiles, inputs' hashes) is read before this returns; the store writes
  // continue in the background.
  async finish(p: CcPending, done: Done): Promise<Finish> {
    const { d } = this.cx;
    d.observe?.({ kind: 'ran', cwd: p.cwd, exe: p.exe, args: p.args, env: p.env, output: p.parsed.output, directKey: p.directKey, ms: d.now() - p.start });
    // A one-way report's sender does not wait for this: the build's next call for the same key
    // can come while it runs (the first compile's system include dirs take a gcc run), and
    // waits for it (settle) instead of missing.
    let taken!: () => void;
    const gate = new Promise<void>((r) => (taken = r));
    const before = this.cx.writes.current(p.directKey);
    this.cx.writes.track(p.directKey, before ? Promise.all([before, gate]).then(() => {}) : gate);
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

  private async finishInner(p: CcPending, done: Done): Promise<Finish> {
    const { d } = this.cx;
    if (done.code !== 0) return { stored: false, reason: 'compile_failed' };
    if (done.nocache) return { stored: false, reason: 'output_too_big' };
    const outputs = done.files ? sentOutputs(p, done.files) : readOutputs(p);
    if ('reason' in outputs) return { stored: false, reason: outputs.reason };
    const { parsed, cwd } = p;
    // Parsing the dependency list and sorting out the system headers wait with the rest of
    // the entry (a noticeable share of the daemon's CPU in a cold build), unless the build
    // reads a depfile from us next: -MMD's, written now without the system headers (by the
    // native shim before a one-way report: RunReply.mmd). The compiler's own include dirs
    // are asked for now (it runs the compiler once per compiler and flags).
    const builtin = d.systemDirs(p.exe, parsed.lang, sysdirFlags(parsed));
    builtin.catch(() => {}); // the entry's build sees the failure
    let now: Deps | undefined;
    if (p.filterSystem && parsed.depfile && !done.files) {
      const deps = await depsOf(p, outputs.depText, builtin);
      if ('reason' in deps) return { stored: false, reason: deps.reason };
      const sys = new Set(deps.system);
      writeFileAtomic(
        path.resolve(cwd, parsed.depfile.file),
        depfileText(
          parsed,
          deps.deps.filter((x) => !sys.has(x)),
        ),
      );
      now = deps;
    }
    const build = async (known?: Known): Promise<Finish> => {
      const deps = now ?? (await depsOf(p, outputs.depText, builtin));
      if ('reason' in deps) return { stored: false, reason: deps.reason };
      const inputs = this.cx.inputs.collect(p, deps.deps, deps.builtin, deps.system, known);
      if ('reason' in inputs) return { stored: false, reason: inputs.reason };
      return storeEntry(this.cx, p, done, outputs.obj, inputs);
    };
    // Everything the build could change next is in memory now (object, dependency list), so
    // the entry can wait for the build to pause: on two cores, hashing the inputs and building
    // the manifest was a large share of the daemon's CPU in a cold build. Only with the
    // watcher: what collect sees later must be what the compiler saw, and the input checks
    // already prove that (a file changed since the compile's start is refused, by its
    // timestamps or its events), and so does presentBefore for a shadowing header that
    // appeared since.
    const obj = outputs.obj;
    const deferred = d.deferred;
    if (!deferred || p.mark === undefined || !obj || this.deferredCount >= DEFERRED_MAX || this.deferredBytes + obj.length > DEFERRED_BYTES) return build();
    // The source as the compile left it: configure-style probes delete theirs right away.
    const srcAbs = path.resolve(cwd, parsed.source);
    const src = d.hashes.get(srcAbs);
    const known = src && { abs: srcAbs, fh: src, unchanged: d.hashes.unchangedSince(srcAbs, p.mark) };
    this.deferredCount++;
    this.deferredBytes += obj.length;
    return finishLater(
      deferred,
      p.directKey,
      () => {
        d.hashes.sync();
        return build(known);
      },
      () => {
        this.deferredCount--;
        this.deferredBytes -= obj.length;
      },
      (err) => d.log.warn('building a cache entry failed', { err, source: parsed.source }),
    );
  }

  /** The emptied depfile names kept for reuse are removed. */
  close(): void {
    for (const f of this.freeDepfiles.splice(0)) fs.rmSync(f, { force: true });
  }
}

/** A manifest entry's files (key form, hash, ...) as [absolute path, hash]. */
function entryInputs(files: string[], cwd: string): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i + 1 < files.length; i += 2) out.push([Relativizer.toAbs(files[i], cwd), files[i + 1]]);
  return out;
}
