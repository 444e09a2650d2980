// Commands with several sources (`cc -c a.c b.c c.c`, `cc -O2 a.c b.c -o prog`): ccache and
// sccache pass them through. Split, each source becomes an ordinary compile (cached, with its
// own pass-through reasons), and a compile-and-link becomes those compiles into a private
// directory and then the link of their objects (cached by the link front-end). The shim runs
// them (native/split.c): the compiler runs in the build's process tree.
//
// What makes a split exactly the one command: gcc and clang compile one source after the
// other with the same options (cc1 sees nothing of the other sources), keep going after one
// fails and then do not link; a temporary object's name reaches neither the object nor the
// executable (checked: gcc 12 and clang 14, with -g). Whatever could tell the difference
// passes the whole command through: options that make one file of several sources (-o with
// -c, -MF, -MT), languages that differ per file or switch (-x), a source on stdin,
// inputs a compile would only warn about (an object with -c), response files.
import path from 'node:path';
import type { UncacheableReason } from '../../../ipc/reasons.js';
import { matchJoinedOrSeparate, parseGccArgs, sourceStem } from './args.js';
import { languageOfFile } from './languages.js';
import { LONG_OPTIONS, SEPARATE_ONLY } from './options.js';
import type { ParseEnv } from './types.js';

/** An argument that starts with this is a path in the shim's private directory: it puts the directory + '/' in its place. */
export const SPLIT_TMP = '\u0001';

export interface SplitPlan {
  kind: 'split';
  /** The arguments (argv[0] left out) of each source's compile, in command-line order. */
  compiles: string[][];
  /** The link of their objects, when the command links. */
  link: string[] | null;
}

export interface SplitRefusal {
  kind: 'pass';
  reason: UncacheableReason;
  detail?: string;
}

// What an argument (with its value, if separate) is to the split.
type Role = 'source' | 'input' | 'output' | 'ldonly' | 'keep';
interface Item {
  args: string[];
  role: Role;
}

// Options that only the link reads: left out of the compiles, as clang warns of each one
// ("argument unused during compilation") where gcc's cc1 arguments stay the same without them.
const LD_FLAGS = new Set([
  '-shared',
  '-pie',
  '-no-pie',
  '-static-pie',
  '-static',
  '-rdynamic',
  '-s',
  '-static-libgcc',
  '-static-libstdc++',
  '-shared-libgcc',
  '-nostartfiles',
  '-nodefaultlibs',
  '-nostdlib',
  '-nolibc',
  '-nostdlib++',
]);
// Joined link-only options: kept in a compile, clang warns (with -Werror: fails) where the one command does not.
const LD_PREFIX = /^(-fuse-ld=|--ld-path=|--?rtlib=|--?unwindlib=|-Wl,)/;
const LD_SEPARATE = new Set(['-Xlinker', '-u', '-T', '-z', '-e']);
const LD_JOINED = new Set(['-l', '-L']);
// With several sources, each of these names one file or target for all of them.
const ONE_FILE = new Set(['-MF', '-MT', '-MQ']);
// Whole-program: what the compiles write is not what the split's compiles would have to be.
const WHOLE_PROGRAM = /^-(flto|fwhole-program|fuse-linker-plugin)/;

const refuse = (reason: UncacheableReason, detail?: string): SplitRefusal =>
  detail === undefined ? { kind: 'pass', reason } : { kind: 'pass', reason, detail };

/**
 * Splits a call with several sources (`-c`/`-S` without -o), or a link with sources among its
 * inputs, into one compile per source (and the link); or says why the call passes through.
 */
export function planSplit(args: string[], penv: ParseEnv): SplitPlan | SplitRefusal {
  let mode: 'compile' | 'link' = 'link';
  const items: Item[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const item = (role: Role, n = 1): Item => {
      const it = { args: args.slice(i, i + n), role };
      i += n - 1;
      return it;
    };
    if (arg.includes(SPLIT_TMP)) return refuse('multiple_sources', 'a control character in an argument');
    if (arg === '-') return refuse('stdin_source');
    if (arg.startsWith('@')) return refuse('multiple_sources', 'response file');
    if (!arg.startsWith('-') || arg.length === 1) {
      items.push(item(languageOfFile(arg) === null ? 'input' : 'source'));
      continue;
    }
    if (arg === '-c' || arg === '-S' || arg === '--compile' || arg === '--assemble') mode = 'compile';
    if (arg === '-pass-exit-codes') return refuse('multiple_sources', arg);
    if (arg.startsWith('-Wp,-M')) return refuse('multiple_sources', arg);
    if (SEPARATE_ONLY.has(arg)) {
      if (i + 1 >= args.length) return refuse('unsupported_option', `${arg} without a value`);
      items.push(item(LD_SEPARATE.has(arg) ? 'ldonly' : 'keep', 2));
      continue;
    }
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const spec = LONG_OPTIONS[eq < 0 ? arg : arg.slice(0, eq)];
      if (spec?.takesArg) {
        const n = eq < 0 ? 2 : 1;
        if (i + n > args.length) return refuse('unsupported_option', `${arg} without a value`);
        if (spec.short === '-x') return refuse('multiple_sources', '-x');
        if (ONE_FILE.has(spec.short)) return refuse('multiple_sources', arg);
        items.push(item(spec.short === '-o' ? 'output' : LD_JOINED.has(spec.short) || LD_SEPARATE.has(spec.short) ? 'ldonly' : 'keep', n));
        continue;
      }
      items.push(item(LD_PREFIX.test(arg) ? 'ldonly' : 'keep'));
      continue;
    }
    const js = matchJoinedOrSeparate(arg);
    if (js && arg !== '-I-') {
      const n = js.joined === null ? 2 : 1;
      if (i + n > args.length) return refuse('unsupported_option', `${arg} without a value`);
      if (js.name === '-x') return refuse('multiple_sources', '-x');
      if (ONE_FILE.has(js.name)) return refuse('multiple_sources', js.name);
      items.push(item(js.name === '-o' ? 'output' : LD_JOINED.has(js.name) ? 'ldonly' : 'keep', n));
      continue;
    }
    items.push(item(LD_PREFIX.test(arg) || LD_FLAGS.has(arg) ? 'ldonly' : 'keep'));
  }

  const sources = items.filter((it) => it.role === 'source');
  if (sources.length === 0) return refuse('no_source');
  if (mode === 'compile') {
    if (items.some((it) => it.role === 'output')) return refuse('multiple_sources', '-o with several sources');
    if (items.some((it) => it.role === 'input')) return refuse('multiple_sources', `not a source: ${items.find((it) => it.role === 'input')!.args[0]}`);
    // clang warns of each once per call: once per split compile would be more.
    if (penv.compiler === 'clang' && items.some((it) => it.role === 'ldonly')) return refuse('multiple_sources', 'link options');
    if (sources.length < 2) return refuse('multiple_sources', `${items.length} inputs`);
  } else if (items.some((it) => WHOLE_PROGRAM.test(it.args[0]!))) {
    return refuse('link_with_sources', 'link-time optimization');
  }

  const compiles: string[][] = [];
  const link: string[] = [];
  const outputs = new Set<string>();
  let lang: string | undefined;
  for (const [k, src] of sources.entries()) {
    const obj = `${SPLIT_TMP}${k}-${sourceStem(src.args[0]!)}.o`;
    const sub: string[] = [];
    for (const it of items) {
      if (it === src) sub.push(...it.args);
      else if (it.role === 'keep' || (mode === 'compile' && it.role === 'ldonly')) sub.push(...it.args);
    }
    if (mode === 'link') sub.push('-c', '-o', obj);
    const parsed = parseGccArgs(sub, penv);
    if (parsed.kind !== 'compile')
      return refuse(parsed.kind === 'pass' ? parsed.reason : 'multiple_sources', parsed.kind === 'pass' ? parsed.detail : undefined);
    if (lang !== undefined && parsed.lang !== lang) return refuse('multiple_sources', `languages ${lang} and ${parsed.lang}`);
    lang = parsed.lang;
    // gcc 11 and later name a compile-and-link's depfiles after the executable.
    if (mode === 'link' && parsed.depfile) return refuse('link_with_sources', 'dependency output');
    // Two sources of one name write one object: the last one wins, in order only.
    const out = path.resolve(penv.cwd, parsed.output);
    if (outputs.has(out) || (parsed.depfile && outputs.has(path.resolve(penv.cwd, parsed.depfile.file))))
      return refuse('multiple_sources', `two sources write ${parsed.output}`);
    outputs.add(out);
    if (parsed.depfile) outputs.add(path.resolve(penv.cwd, parsed.depfile.file));
    compiles.push(sub);
  }
  if (mode === 'compile') return { kind: 'split', compiles, link: null };
  let k = 0;
  for (const it of items) {
    if (it.role === 'source') link.push(`${SPLIT_TMP}${k}-${sourceStem(it.args[0]!)}.o`), k++;
    else link.push(...it.args);
  }
  return { kind: 'split', compiles, link };
}
