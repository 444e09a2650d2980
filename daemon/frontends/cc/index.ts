import fs from 'node:fs';
import path from 'node:path';
import type { CompileRequest } from '../../../ipc/messages/compile.js';
import { compilerFlavor, parseGccArgs } from '../gcc/args.js';
import { planSplit } from '../gcc/split.js';
import type { Done, Finish, Frontend, LookupOptions } from '../types.js';
import { CompileMode } from './compile.js';
import { DepsMode } from './deps-mode.js';
import { CcEntries } from './entry-cache.js';
import { EntryValidity } from './entry-valid.js';
import { EntryStrings } from '../entry-strings.js';
import { Hits } from './hit.js';
import { InputCollector } from './inputs.js';
import { KeyWrites } from './key-writes.js';
import type { CcDeps, CcParts, CcPending, Outcome } from './types.js';

export type { CcDeps, CcPending, CcSeen, Outcome } from './types.js';

// The C/C++ front-end (gcc, clang): classify, key, look up, and store after a miss.
// A call is a compile (compile.ts: direct mode, validated by entry-valid.ts, with a
// preprocessor fallback), a dependency-generation call (deps-mode.ts), a command with
// several sources (split into one call per source by the shim), or a link (handed to
// link.ts); anything else passes through with a reason.
export class CcFrontend implements Frontend<CcPending> {
  readonly name = 'cc';

  private readonly parts: CcParts;
  private readonly compile: CompileMode;
  private readonly depsMode: DepsMode;
  private readonly hits: Hits;
  private readonly strings = new EntryStrings();
  private closing?: Promise<void>;

  constructor(private readonly d: CcDeps) {
    const entries = new CcEntries(d.store, this.strings);
    this.parts = { d, entries, writes: new KeyWrites(d.deferred), validity: new EntryValidity(d, this.strings), inputs: new InputCollector(d) };
    this.hits = new Hits(d, entries);
    this.compile = new CompileMode(this.parts, this.hits);
    this.depsMode = new DepsMode(this.parts);
  }

  /** Waits until what a compile of this direct key is storing is in place (its entry built now if it waited for a pause). */
  settle(directKey: string): Promise<void> {
    return this.parts.writes.settle(directKey);
  }

  forgetResult(key: string) {
    this.parts.entries.forgetResult(key);
  }

  // Like ccache, any compiler we do not know by name is assumed to take gcc's options: a
  // wrapper script named "mycc" is still a C compiler. Calls that don't parse as a compile
  // pass through with a reason.
  handles(argv0: string, exe: string): boolean {
    const notC = (n: string) => /^(rustc|rustdoc|cargo|clippy-driver)(-.*)?$/.test(path.basename(n));
    return !notC(argv0) && !notC(exe);
  }

  async lookup(req: CompileRequest, env: Record<string, string>, o?: LookupOptions): Promise<Outcome> {
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
    if (parsed.kind === 'deps') return (await this.depsMode.lookup(req, env, parsed)) as Outcome;
    return this.compile.lookup(req, env, args, parsed, o);
  }

  finish(p: CcPending, done: Done): Promise<Finish> {
    return this.compile.finish(p, done);
  }

  /** Waits for the entries being written, then lets go of every cache and kept file. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.parts.writes.close();
      await this.parts.entries.close();
      this.hits.close();
      this.parts.inputs.close();
      this.compile.close();
      this.strings.clear();
    })();
    return this.closing;
  }
}
