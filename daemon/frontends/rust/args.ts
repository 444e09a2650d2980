import type { UncacheableReason } from '../../../ipc/reasons.js';

// rustc command lines as cargo writes them, parsed into what the key needs, or a reason
// to pass the call through untouched (sccache's exclusions: anything that links, writes
// outside --out-dir, reads stdin, or keeps incremental state).

// One argument as it enters the key. Paths are normalized by the caller; `extern` and
// `file` values are replaced by the content of the file they name.
export type KeyItem =
  | { k: 'plain'; s: string }
  | { k: 'path'; opt: string; path: string }
  | { k: 'file'; opt: string; path: string }
  | { k: 'extern'; opt: string; name: string; path: string | null };

export interface RustCompile {
  kind: 'compile';
  crateName: string;
  source: string; // as given (relative to cwd or absolute)
  outDir: string; // as given
  extraFilename: string;
  crateTypes: string[];
  emits: string[]; // kinds, without paths
  emitGiven: boolean; // an --emit was on the command line
  target: string | null;
  items: KeyItem[];
  linked: boolean; // bin or proc-macro: rustc runs the linker
  linker: string | null; // -C linker
  libDirs: string[]; // -L values, as given, in order (the link's first search dirs)
}
export type Parsed = RustCompile | { kind: 'pass'; reason: UncacheableReason };

// Options that take a value, either joined with `=` (long), glued (short) or as the next argument.
const LONG_VALUE = new Set([
  '--crate-name',
  '--crate-type',
  '--edition',
  '--emit',
  '--out-dir',
  '--extern',
  '--cfg',
  '--check-cfg',
  '--cap-lints',
  '--target',
  '--print',
  '--error-format',
  '--json',
  '--color',
  '--sysroot',
  '--remap-path-prefix',
  '--codegen',
  '--allow',
  '--warn',
  '--deny',
  '--forbid',
  '--force-warn',
  '--explain',
  '--diagnostic-width',
  '--env-set',
  '--crate-attr',
  '--extern-location',
  '--unpretty',
]);
const SHORT_VALUE = new Set(['-L', '-l', '-C', '-Z', '-A', '-W', '-D', '-F', '-o']);
const PROBES = new Set(['-V', '-vV', '--version', '-h', '--help', '--explain', '--print']);
const CACHEABLE_TYPES = new Set(['lib', 'rlib']);
// The crate types rustc knows that are neither: each counted by name.
const OTHER_TYPES: Record<string, UncacheableReason> = { dylib: 'crate_type_dylib', cdylib: 'crate_type_cdylib', staticlib: 'crate_type_staticlib' };
// Crates rustc links itself: cached with the linker's inputs in the key (linker.ts).
const LINKED_TYPES = new Set(['bin', 'proc-macro']);
const EMIT_KINDS = new Set(['asm', 'llvm-bc', 'llvm-ir', 'obj', 'metadata', 'link', 'dep-info', 'mir']);

function pass(reason: UncacheableReason): Parsed {
  return { kind: 'pass', reason };
}

// Splits the command line into [option, value] pairs and positionals.
function tokenize(args: string[]): { opts: [string, string | null][]; positional: string[] } | UncacheableReason {
  const opts: [string, string | null][] = [];
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a.startsWith('@')) return 'response_file';
    if (a === '-' || !a.startsWith('-')) {
      positional.push(a);
      continue;
    }
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = eq === -1 ? a : a.slice(0, eq);
      if (eq !== -1) opts.push([name, a.slice(eq + 1)]);
      else if (LONG_VALUE.has(name)) {
        if (i + 1 >= args.length) return 'missing_value';
        opts.push([name, args[++i]]);
      } else opts.push([name, null]);
      continue;
    }
    const short = a.slice(0, 2);
    if (SHORT_VALUE.has(short)) {
      if (a.length > 2) opts.push([short, a.slice(2)]);
      else if (i + 1 >= args.length) return 'missing_value';
      else opts.push([short, args[++i]]);
      continue;
    }
    opts.push([a, null]);
  }
  return { opts, positional };
}

export function parseRustcArgs(args: string[]): Parsed {
  const t = tokenize(args);
  if (typeof t === 'string') return pass(t);
  const { opts, positional } = t;

  let crateName: string | undefined;
  let outDir: string | undefined;
  let extraFilename = '';
  let target: string | null = null;
  let emitGiven = false;
  const crateTypes: string[] = [];
  const emits: string[] = [];
  const items: KeyItem[] = [];
  const libDirs: string[] = [];
  let linker: string | null = null;
  let linkerChanged = false; // link args or a linker flavor: the link is not one we can list

  for (const [o, v] of opts) {
    if (PROBES.has(o)) return pass('probe');
    switch (o) {
      case '--crate-name':
        crateName = v!;
        items.push({ k: 'plain', s: `${o}=${v}` });
        break;
      case '--crate-type':
        crateTypes.push(...v!.split(',').filter(Boolean));
        items.push({ k: 'plain', s: `${o}=${v}` });
        break;
      case '--emit':
        emitGiven = true;
        for (const e of v!.split(',').filter(Boolean)) {
          const eq = e.indexOf('=');
          if (eq !== -1) return pass(e.slice(eq + 1) === '-' ? 'emit_stdout' : 'emit_path');
          if (!EMIT_KINDS.has(e)) return pass('emit_unknown');
          emits.push(e);
        }
        items.push({ k: 'plain', s: `${o}=${v}` });
        break;
      case '--out-dir':
        outDir = v!;
        items.push({ k: 'path', opt: `${o}=`, path: v! });
        break;
      case '-o':
        return pass(v === '-' ? 'output_stdout' : 'output_file');
      case '--test':
        return pass('test_harness');
      case '--target':
        target = v!;
        items.push(v!.endsWith('.json') ? { k: 'file', opt: `${o}=`, path: v! } : { k: 'plain', s: `${o}=${v}` });
        break;
      case '--extern': {
        // [modifiers:]name[=path]
        const eq = v!.indexOf('=');
        const spec = eq === -1 ? v! : v!.slice(0, eq);
        items.push({ k: 'extern', opt: `${o}=${spec}`, name: spec.slice(spec.lastIndexOf(':') + 1), path: eq === -1 ? null : v!.slice(eq + 1) });
        break;
      }
      case '-L': {
        const eq = v!.indexOf('=');
        const kind = eq !== -1 && /^(dependency|crate|native|framework|all)$/.test(v!.slice(0, eq)) ? v!.slice(0, eq + 1) : '';
        items.push({ k: 'path', opt: `-L${kind}`, path: v!.slice(kind.length) });
        libDirs.push(v!.slice(kind.length));
        break;
      }
      case '--sysroot':
        items.push({ k: 'path', opt: `${o}=`, path: v! });
        break;
      case '--remap-path-prefix': {
        const eq = v!.lastIndexOf('=');
        if (eq === -1) items.push({ k: 'plain', s: `${o}=${v}` });
        else items.push({ k: 'path', opt: `${o}=`, path: v!.slice(0, eq) }, { k: 'plain', s: `=>${v!.slice(eq + 1)}` });
        break;
      }
      case '-C':
      case '--codegen': {
        const eq = v!.indexOf('=');
        const name = (eq === -1 ? v! : v!.slice(0, eq)).replace(/_/g, '-');
        const val = eq === -1 ? null : v!.slice(eq + 1);
        if (name === 'incremental') return pass('incremental');
        if (name === 'save-temps' && val !== 'no' && val !== 'n' && val !== 'off' && val !== 'false') return pass('save_temps');
        if (name === 'profile-generate') return pass('profile_generate');
        if (name === 'extra-filename') extraFilename = val ?? '';
        if (name === 'linker') linker = val;
        if (/^(link-args?|pre-link-args?|linker-flavor|link-self-contained)$/.test(name)) linkerChanged = true;
        if (name === 'profile-use' && val) items.push({ k: 'file', opt: '-Cprofile-use=', path: val });
        else items.push({ k: 'plain', s: `-C${name}${val === null ? '' : '=' + val}` });
        break;
      }
      default:
        items.push({ k: 'plain', s: v === null ? o : `${o}=${v}` });
    }
  }

  if (positional.length === 0) return pass('no_input');
  if (positional.length > 1) return pass('multiple_inputs');
  if (positional[0] === '-') return pass('stdin_input');
  if (crateTypes.length === 0) return pass('crate_type_implicit');
  const other = crateTypes.find((c) => !CACHEABLE_TYPES.has(c) && !LINKED_TYPES.has(c));
  if (other) return pass(OTHER_TYPES[other] ?? 'crate_type_other');
  const linked = crateTypes.some((c) => LINKED_TYPES.has(c));
  if (linked && linkerChanged) return pass('link_args');
  if (!crateName) return pass('no_crate_name');
  if (outDir === undefined) return pass('no_out_dir');
  return {
    kind: 'compile',
    crateName,
    source: positional[0],
    outDir,
    extraFilename,
    crateTypes,
    emits: emitGiven ? emits : ['link'],
    emitGiven,
    target,
    items,
    linked,
    linker,
    libDirs,
  };
}

// The arguments for the miss: as given, plus a dep-info emission to a path of ours when
// the build asked for none (without it we can't know what rustc read).
// A linked crate also gets ld's own list of what it read (linkDeps; rustc does not treat
// link arguments as part of the crate, so the output is the same).
export function argsForMiss(parsed: RustCompile, args: string[], ownDepInfo: string, linkDeps?: string): { argv: string[]; depInfoOwn: boolean } {
  const link = parsed.linked && linkDeps ? [`-Clink-arg=-Wl,--dependency-file=${linkDeps}`] : [];
  if (parsed.emits.includes('dep-info')) return { argv: [...args, ...link], depInfoOwn: false };
  const extra = parsed.emitGiven ? `--emit=dep-info=${ownDepInfo}` : `--emit=link,dep-info=${ownDepInfo}`;
  return { argv: [...args, extra, ...link], depInfoOwn: true };
}

// The stem of every file rustc writes for this crate into --out-dir.
export function outputStems(parsed: RustCompile): string[] {
  const base = parsed.crateName + parsed.extraFilename;
  return [`lib${base}.`, `${base}.`];
}

/** Whether `name` in --out-dir is one of this crate's outputs (a bin's has no extension). */
export function isOutput(parsed: RustCompile, name: string): boolean {
  const base = parsed.crateName + parsed.extraFilename;
  if (parsed.linked && name === base) return true;
  return outputStems(parsed).some((s) => name.startsWith(s)) && !/\.rcgu\.o$|\.rcgu\.(bc|ll|s)$/.test(name);
}
