import fs from 'node:fs';
import path from 'node:path';
import type { CompileRequest } from '../../../ipc/messages/compile.js';
import { writtenBefore } from '../../hot/fs-clock.js';
import { absentItem, encodeEntry, type ManifestEntry, type Result } from '../entries.js';
import type { GccDeps } from '../gcc/args.js';
import { parseDepfile } from '../gcc/depfile.js';
import { filterSystemDeps, sysdirFlags } from '../gcc/sysdirs.js';
import { writeFileAtomic } from '../materialize.js';
import { runCompiler } from '../preprocess.js';
import { embedsAnchor, Relativizer } from '../relativize.js';
import { finishLater } from '../deferred.js';
import type { Done, Finish, Frontend, Outcome } from '../types.js';
import type { InputsOf } from './inputs.js';
import { depsKey, resultKeyOf } from './keys.js';
import type { CcParts, DepsPending } from './types.js';

// ---- dependency generation: `$(CC) -MM *.c > Makefile.dep` (GccDeps) ----
//
// One entry for the whole call: the key has every argument and every source's content
// (paths keyed as a compile's are); the result is what the call printed. Its inputs are every file the
// preprocessor read for any of the sources, system headers included, with the same checks
// as a compile's (hashes, same-named headers earlier on the path, timestamps against the
// call's start). -MM lists no system headers, so after a -MM miss the daemon runs the call
// once more with -M when the build pauses (deferred, like a compile's entry) and takes the
// inputs from that; an input changed since the call started refuses the entry.
export class DepsMode {
  // Finishes the calls it looked up (a miss names it as their front-end).
  private readonly frontend: Frontend<DepsPending> = {
    name: 'cc-deps',
    handles: () => false,
    lookup: () => Promise.resolve({ kind: 'pass', reason: 'not_a_lookup' }),
    finish: (p, done) => this.finish(p, done),
    close: () => Promise.resolve(), // its state is the C front-end's (CcParts)
  };

  constructor(private readonly cx: CcParts) {}

  async lookup(req: CompileRequest, env: Record<string, string>, parsed: GccDeps): Promise<Outcome<DepsPending>> {
    const { d, entries } = this.cx;
    const { cwd, exe } = req;
    const args = req.argv.slice(1);
    // Keyed like a compile (paths relative to the cwd under base_dir, so that two checkouts
    // share entries; an output naming the checkout is anchored to it, see entry()).
    const rel = new Relativizer(cwd, d.project(cwd, env).base_dir, d.forms);
    const directKey = depsKey(d, exe, parsed, cwd, rel, env);
    if (directKey === undefined) return { kind: 'pass', reason: 'source_missing' };

    await this.cx.writes.settle(directKey);
    const start = d.now();
    const manifest = await entries.readManifest(directKey);
    for (const e of manifest && !manifest.pp ? manifest.entries : []) {
      if (!this.cx.validity.valid(e, cwd)) continue;
      const result = await entries.readResult(e.result);
      const file = result?.outputs.find((o) => o.role === 'deps');
      if (!result || (parsed.outFile === null) !== (file === undefined)) continue;
      if (!file) return { kind: 'hit', out: result.out, err: result.err, code: 0, bytes: result.out.length, latency: 'deps_hit' };
      const data = await d.store.getBlob(file.digest);
      if (!data) {
        entries.forgetResult(e.result);
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
      frontend: this.frontend as Frontend,
      pending: { args, cwd, exe, env, parsed, rel, directKey, start, fsStart: d.fsNow(), mark: d.hashes.mark() },
    };
  }

  private async finish(p: DepsPending, done: Done): Promise<Finish> {
    const { d } = this.cx;
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
    const build = () => this.entry(p, done, file);
    if (!d.deferred || p.mark === undefined) return { stored: 'later', result: build() };
    return finishLater(
      d.deferred,
      p.directKey,
      build,
      () => {},
      (err) => d.log.warn('building a cache entry failed', { err, sources: p.parsed.sources.length }),
    );
  }

  private async entry(p: DepsPending, done: Done, file: Buffer | undefined): Promise<Finish> {
    const { d, entries } = this.cx;
    const { parsed, cwd } = p;
    let text = (file ?? done.out).toString('latin1');
    if (parsed.mode === 'MM') {
      const full = await runForDeps(p.exe, depsWithSystemHeaders(p.args, parsed), cwd, p.env);
      if (full === undefined) return { stored: false, reason: 'deps_rerun_failed' };
      text = full;
    }
    const rules = splitDepRules(text, parsed.sources.length);
    if (!rules || rules.some((r, i) => r[0] !== parsed.sources[i])) return { stored: false, reason: 'deps_unparsed' };
    const builtin = await d.systemDirs(p.exe, parsed.lang, sysdirFlags(parsed));
    const files = new Map<string, string>();
    const absent = new Map<string, Set<string>>();
    const stamps: [string, string][] = [];
    let date: string | null = null;
    for (let i = 0; i < rules.length; i++) {
      // Each source checked as its own compile would be (its directory leads the search).
      // __TIME__ and __DATE__ change no dependency list: as if SOURCE_DATE_EPOCH were set.
      const one: InputsOf = {
        cwd,
        env: { ...p.env, SOURCE_DATE_EPOCH: '0' },
        rel: p.rel,
        start: p.start,
        fsStart: p.fsStart,
        mark: p.mark,
        parsed: { source: parsed.sources[i], includeDirs: parsed.includeDirs },
      };
      const { system } = filterSystemDeps(rules[i], parsed.includeDirs, builtin);
      const inputs = this.cx.inputs.collect(one, rules[i], builtin, system);
      if ('reason' in inputs) return { stored: false, reason: inputs.reason };
      if (inputs.needPp) return { stored: false, reason: 'needs_preprocessor' };
      for (const [f, hsh] of inputs.files) files.set(f, hsh);
      for (const [dir, ns] of inputs.absent) {
        const set = absent.get(dir) ?? new Set<string>();
        for (const n of ns) set.add(n);
        absent.set(dir, set);
      }
      stamps.push(...inputs.stamps);
      date ??= inputs.date;
    }
    const anchor = p.rel.anchor();
    const entryAnchor =
      embedsAnchor(done.out, anchor[1]) || embedsAnchor(done.err, anchor[1]) || (file !== undefined && embedsAnchor(file, anchor[1])) ? anchor : null;
    const resultKey = resultKeyOf('vrift-cc-deps-result-v1', p.directKey, files, entryAnchor, date, stamps);
    const entry: ManifestEntry = {
      files: [...files].flat(),
      absent: [...absent].map(([dir, ns]) => absentItem(dir, ns)),
      anchor: entryAnchor,
      date,
      stamps,
      result: resultKey,
      time: p.start,
    };
    const write = (async () => {
      const digest = file && (await d.store.putBlob(file));
      const outputs: Result['outputs'] = file ? [{ role: 'deps', digest: digest!, size: file.length }] : [];
      const result: Result = { v: 2, outputs, out: done.out, err: done.err, deps: [], sys: '' };
      await d.store.putEntry(resultKey, encodeEntry(result));
      entries.rememberResult(resultKey, result);
      await entries.addToManifest(p.directKey, entry, false, { entries: [resultKey], blobs: digest ? [digest] : [] });
    })();
    this.cx.writes.track(p.directKey, write);
    return { stored: true, bytes: (file ?? done.out).length, write };
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
