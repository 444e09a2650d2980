import fs from 'node:fs';
import path from 'node:path';
import type { LiveSkip } from '../../ipc/reasons.js';
import { compilerFlavor, parseGccArgs, type GccCompile } from '../frontends/gcc/args.js';

// A recorded compile rewritten so that everything it writes lands in a private directory:
// the object (-o) and the depfile (-MF, -Wp,-MD,file, or the one -MD derives from -o). The
// options that decide where these go are not part of the cache key (frontends/gcc/args.ts),
// so the rewritten call has the same key as the build's; that is checked, not assumed: the
// rewritten call is parsed again and must give the same key arguments, with every output
// inside the directory. Anything that writes another file is not warmed at all.

export type Redirected = { args: string[]; output: string; depfile: string | null } | { skip: LiveSkip; detail: string };

const COVERAGE = new Set(['--coverage', '-ftest-coverage', '-fprofile-arcs', '-fcondition-coverage', '-fpath-coverage', '-fcoverage-mapping']);

// Options that write a file of their own, or may (a plugin, a flag handed to clang's cc1 or the
// assembler): the cache refuses most of them already; listed here so that a call is never run
// in the background because the parser let one through.
const EXTRA_OUTPUT = [
  /^-save-(temps|stats)/,
  /^-fdump-/,
  /^-fstack-usage$/,
  /^-fcallgraph-info/,
  /^-fopt-info.*=/,
  /^-f(save-optimization-record|optimization-record-file)/,
  /^-ftime-(trace|report)/,
  /^-fdiagnostics-format=.*-file$/,
  /^-fdiagnostics-(add|set)-output/,
  /^-fplugin/,
  /^-(Xclang|Xassembler|Xpreprocessor|mllvm|MJ|aux-info|dumpdir|dumpbase|dumpbase-ext|wrapper|-?serialize-diagnostics)$/,
];

/** Why a call with these arguments cannot be warmed (it writes files by path), or undefined. */
export function unsafeOption(args: readonly string[]): { skip: LiveSkip; detail: string } | undefined {
  for (const a of args) {
    if (a === '-gsplit-dwarf' || a.startsWith('-gsplit-dwarf=')) return { skip: 'split_dwarf', detail: a };
    if (COVERAGE.has(a)) return { skip: 'coverage', detail: a };
    if (/^-f(profile-|auto-profile|cs-profile-generate)/.test(a)) return { skip: 'profile', detail: a };
    if (EXTRA_OUTPUT.some((r) => r.test(a))) return { skip: 'extra_outputs', detail: a };
    if (
      a.startsWith('-Wa,') &&
      a
        .slice(4)
        .split(',')
        .some((p) => p.startsWith('-a') || p === '--MD')
    )
      return { skip: 'extra_outputs', detail: a };
  }
  return undefined;
}

function parse(args: string[], cwd: string, exe: string, env: Record<string, string>) {
  return parseGccArgs(args, { cwd, env, compiler: compilerFlavor(exe), readFile: (p) => fs.readFileSync(path.resolve(cwd, p), 'utf8') });
}

const inside = (dir: string, file: string) => path.dirname(file) === dir;

/**
 * `args` (the compiler's arguments as the build gave them) with the object and depfile written
 * into `dir` (absolute, existing, empty) instead; or why not.
 */
export function redirectOutputs(args: string[], cwd: string, exe: string, env: Record<string, string>, dir: string): Redirected {
  // Checked before the parse too: the cache refuses most of these, and the reason said should be live mode's.
  const early = unsafeOption(args);
  if (early) return early;
  const first = parse(args, cwd, exe, env);
  if (first.kind !== 'compile') return { skip: 'uncacheable', detail: first.kind === 'pass' ? first.reason : 'dependency listing' };
  const unsafe = unsafeOption(first.expandedArgs);
  if (unsafe) return unsafe;
  const out = path.join(dir, path.basename(first.output));
  const depBase = first.depfile ? path.basename(first.depfile.file) : '';
  const dep = first.depfile ? path.join(dir, depBase === path.basename(out) ? `_${depBase}` : depBase) : null;

  // The expanded arguments: an -o or -MF inside a response file is rewritten too.
  const a = first.expandedArgs;
  const next: string[] = [];
  let sawOutput = false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    if (x === '-o' || x === '--output') {
      next.push('-o', out);
      i++;
      sawOutput = true;
    } else if (x.startsWith('--output=') || (x.startsWith('-o') && x.length > 2)) {
      next.push('-o', out);
      sawOutput = true;
    } else if (x === '-MF') {
      next.push('-MF', dep ?? out + '.d');
      i++;
    } else if (x.startsWith('-MF')) next.push('-MF', dep ?? out + '.d');
    else if (/^-Wp,-MM?D,/.test(x)) next.push(x.slice(0, x.indexOf(',', 4) + 1) + (dep ?? out + '.d'));
    else next.push(x);
  }
  if (!sawOutput) next.push('-o', out);

  const again = parse(next, cwd, exe, env);
  const same = (g: GccCompile) =>
    g.source === first.source &&
    g.lang === first.lang &&
    g.outputKind === first.outputKind &&
    JSON.stringify([g.keyArgs, g.pathArgs, g.extraInputs]) === JSON.stringify([first.keyArgs, first.pathArgs, first.extraInputs]);
  if (again.kind !== 'compile' || !same(again)) return { skip: 'not_redirectable', detail: 'the rewritten call keys differently' };
  const gotOut = path.resolve(cwd, again.output);
  const gotDep = again.depfile && path.resolve(cwd, again.depfile.file);
  if (gotOut !== out || (first.depfile === null) !== (gotDep === null) || (gotDep !== null && !inside(dir, gotDep)))
    return { skip: 'not_redirectable', detail: 'an output stays outside the private directory' };
  return { args: next, output: out, depfile: gotDep };
}
