import path from 'node:path';
import type { NotStoredReason } from '../../../ipc/reasons.js';
import { F_DATE, F_HAS_INCLUDE, F_INCBIN, F_TIME, F_TIMESTAMP, type FileHash, type FileHashes } from '../../hot/file-hashes.js';
import type { DirCache } from '../../hot/dir-cache.js';
import { changedBefore } from '../../hot/fs-clock.js';
import type { ChannelLogger } from '../../log.js';
import type { GccCompile } from '../gcc/args.js';
import { DepPlans } from './dep-plans.js';
import { probeHasIncludes } from './has-include.js';
import type { CcPending } from './types.js';

// A compile's inputs as an entry records them: every file it read with its hash as of now,
// every place where a same-named header would have won (which must stay absent), and what
// pins the entry to a date or a file's timestamp.

export function localDate(ms: number): string {
  const d = new Date(ms);
  return `${d.getFullYear()}-${d.getMonth() + 1}-${d.getDate()}`;
}

// The source as the compile's report found it, for an entry built later: its hash, and
// whether the watcher vouched then that it had not changed since the lookup (a probe
// written just before its compile and deleted right after, as configure scripts and
// redis's Makefile do, is gone by the time the entry is built).
export interface Known {
  abs: string;
  fh: FileHash;
  unchanged: boolean;
}

// What collect needs of a compile: a C compile's pending state, or one source of a
// dependency-generation call.
export type InputsOf = Pick<CcPending, 'cwd' | 'rel' | 'env' | 'start' | 'fsStart' | 'mark'> & { parsed: Pick<GccCompile, 'source' | 'includeDirs'> };

export interface Inputs {
  files: [string, string][]; // key form, hash
  absent: Map<string, Set<string>>; // dir's key form -> names that must stay absent there
  stamps: [string, string][];
  depForms: string[];
  sys: string; // '1' per system dependency, '0' otherwise
  date: string | null;
  needPp: boolean;
}

export class InputCollector {
  private plans = new DepPlans();

  constructor(private readonly d: { hashes: FileHashes; dirs: DirCache; log: ChannelLogger }) {}

  // Every input's hash as of now (the compile ended, perhaps a while ago: anything changed
  // since its start refuses the entry), and every place where a same-named header would
  // have won.
  collect(p: InputsOf, deps: string[], builtin: string[], system: string[], known?: Known): Inputs | { reason: NotStoredReason } {
    const { parsed, cwd, rel } = p;
    const systemSet = new Set(system);

    // Search order for quote includes, a superset of the angle one: any earlier directory
    // in which a same-named header could appear later.
    const srcAbs = path.resolve(cwd, parsed.source);
    const search = [path.dirname(srcAbs), ...parsed.includeDirs.quote, ...parsed.includeDirs.angle, ...parsed.includeDirs.system]
      .map((d) => path.resolve(cwd, d))
      .concat(
        builtin,
        parsed.includeDirs.after.map((d) => path.resolve(cwd, d)),
      );
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
        this.d.log.info('not stored: an input changed during or just before the compile', {
          file: abs,
          source: parsed.source,
          mtimeMs: fh.mtimeMs,
          ctimeMs: fh.ctimeMs,
          startMs: p.fsStart.ms,
          sameClock: fh.dev === p.fsStart.dev,
          watched: p.mark !== undefined,
        });
        return { reason: 'input_too_new' };
      }
      if (fh.flags !== 0) {
        if (fh.flags & F_TIME && !p.env.SOURCE_DATE_EPOCH) return { reason: 'time_macro' };
        if (fh.flags & F_INCBIN) return { reason: 'incbin' };
        if (fh.flags & F_HAS_INCLUDE && !isSys) {
          const probed = probeHasIncludes(this.d, abs, search.slice(1 + parsed.includeDirs.quote.length), search.slice(1), p.fsStart, rel, files, absent);
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
            this.d.log.info('not stored: a header appeared on the include path during or after the compile', {
              file: c[k] + '/' + c[k + 1],
              source: parsed.source,
            });
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

  close(): void {
    this.plans.clear();
  }
}
