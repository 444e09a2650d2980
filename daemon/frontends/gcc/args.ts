// gcc/clang command-line classification: is this call a single cacheable compile,
// and if so, what goes into the key and which files it reads and writes.
import path from 'node:path';
import { canonicalLanguage, isCacheableLanguage, isHeaderLanguage, isPreprocessedLanguage, languageOfFile } from './languages.js';
import {
  EQ_PATH,
  EXTRA_INPUT,
  JOINED_OR_SEPARATE,
  LONG_OPTIONS,
  PATH_VALUED,
  SEPARATE_CANONICAL,
  SEPARATE_ONLY,
  refusalFor,
  refusalForValue,
} from './options.js';
import { expandResponseFiles } from './response.js';
import type { CompilerFlavor, DepTarget, GccCompile, GccDeps, GccParse, GccPass, IncludeDirs, ParseEnv, PassReason } from './types.js';

export type { CompilerFlavor, DepTarget, DepfileSpec, GccCompile, GccDeps, GccParse, GccPass, IncludeDirs, ParseEnv, PassReason } from './types.js';

const pass = (reason: PassReason, detail?: string): GccPass => (detail === undefined ? { kind: 'pass', reason } : { kind: 'pass', reason, detail });

/** Guess the driver family from its executable name (`clang-14`, `x86_64-linux-gnu-g++-12`, `cc`). */
export function compilerFlavor(exe: string): CompilerFlavor {
  return /clang/.test(path.basename(exe)) ? 'clang' : 'gcc';
}

/** `dir/foo.tar.c` → `foo.tar`: the driver's %b. */
export function sourceStem(source: string): string {
  const base = path.posix.basename(source);
  const dot = base.lastIndexOf('.');
  return dot < 0 ? base : base.slice(0, dot);
}

/** gcc's `%.d%*` / llvm's replace_extension: swap the suffix of the last path component. */
export function replaceSuffix(file: string, suffix: string): string {
  const slash = file.lastIndexOf('/');
  const dot = file.lastIndexOf('.');
  return (dot > slash ? file.slice(0, dot) : file) + suffix;
}

interface KeyArg {
  arg: string;
  path?: boolean;
  /** A dependency-output option: left out of the key unless the compiler ignores it. */
  dep?: boolean;
}

/** Splits `-Ifoo`/`-I foo` style options; returns null when `arg` is not one. */
export function matchJoinedOrSeparate(arg: string): { name: string; joined: string | null } | null {
  for (const name of JOINED_OR_SEPARATE) {
    if (!arg.startsWith(name)) continue;
    return { name, joined: arg.length > name.length ? arg.slice(name.length) : null };
  }
  return null;
}

/** Rewrites gcc's long spellings (`--output=x`, `--include-directory x`) into short ones. */
function canonicalizeLong(args: string[]): string[] {
  const out: string[] = [];
  for (const a of args) {
    if (!a.startsWith('--')) {
      out.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const name = eq < 0 ? a : a.slice(0, eq);
    const spec = LONG_OPTIONS[name];
    if (!spec) {
      out.push(a);
      continue;
    }
    if (!spec.takesArg) out.push(spec.short);
    else if (eq >= 0) out.push(spec.short, a.slice(eq + 1));
    else out.push(spec.short);
  }
  return out;
}

const envList = (v: string | undefined): string[] => (v === undefined || v === '' ? [] : v.split(':').map((d) => (d === '' ? '.' : d)));

export function parseGccArgs(args: string[], penv: ParseEnv): GccParse {
  const compiler: CompilerFlavor = penv.compiler ?? 'gcc';
  if ((penv.env['DEPENDENCIES_OUTPUT'] ?? '') !== '' || (penv.env['SUNPRO_DEPENDENCIES'] ?? '') !== '')
    return pass('env_depfile', penv.env['DEPENDENCIES_OUTPUT'] ? 'DEPENDENCIES_OUTPUT' : 'SUNPRO_DEPENDENCIES');

  const expanded = expandResponseFiles(args, penv.cwd, penv.readFile);
  if (!expanded.ok) return pass('bad_response_file', expanded.file);
  const expandedArgs = expanded.args;
  const a = canonicalizeLong(expandedArgs);

  const keyArgs: KeyArg[] = [];
  const dirs: IncludeDirs = { quote: [], angle: [], system: [], after: [] };
  const sources: { file: string; lang: string | null }[] = [];
  const extraInputs: string[] = [];
  let dashI: string[] = [];
  let sawIDash = false;
  let sawC = false;
  let sawS = false;
  let sawE = false;
  let sawM = false;
  let sawMM = false;
  let sawMOnly = false;
  let md = false;
  let mmd = false;
  let wp: { mode: 'MD' | 'MMD'; file: string } | null = null;
  let mf = null as string | null;
  let phony = false;
  const targets: DepTarget[] = [];
  let output = null as string | null;
  let xLang = null as string | null;
  let debug = false;
  let color: 'always' | 'never' | 'auto' = 'auto';
  let hasPrefixMap = false;

  const keep = (arg: string, extra: Partial<KeyArg> = {}): void => {
    keyArgs.push({ arg, ...extra });
  };

  for (let i = 0; i < a.length; i++) {
    const arg = a[i]!;

    if (arg === '-' || !arg.startsWith('-') || arg.length === 1) {
      sources.push({ file: arg, lang: xLang });
      continue;
    }

    // Options with a value that is always the next argument.
    if (SEPARATE_ONLY.has(arg)) {
      if (i + 1 >= a.length) return pass('unsupported_option', `${arg} without a value`);
      const value = a[++i]!;
      const refusal = refusalForValue(arg, value);
      if (refusal) return pass(refusal.reason, refusal.detail);
      if (arg === '--param') keep(`--param=${value}`);
      else keepPathOption(SEPARATE_CANONICAL[arg] ?? arg, value);
      continue;
    }

    const eqPath = Object.keys(EQ_PATH).find((p) => arg.startsWith(p));
    if (eqPath) {
      keepPathOption(EQ_PATH[eqPath]!, arg.slice(eqPath.length));
      continue;
    }

    const js = matchJoinedOrSeparate(arg);
    if (js && !(js.name === '-I' && arg === '-I-')) {
      let value: string;
      if (js.joined !== null) value = js.joined;
      else {
        if (i + 1 >= a.length) return pass('unsupported_option', `${arg} without a value`);
        value = a[++i]!;
      }
      const r = handleValue(js.name, value);
      if (r) return r;
      continue;
    }

    if (arg === '-I-') {
      if (sawIDash) return pass('unsupported_option', '-I- given twice');
      sawIDash = true;
      dirs.quote.push(...dashI);
      dashI = [];
      keep(arg);
      continue;
    }

    const refusal = refusalFor(arg);
    if (refusal) return pass(refusal.reason, refusal.detail);

    switch (arg) {
      case '-c':
        sawC = true;
        continue;
      case '-S':
        sawS = true;
        continue;
      case '-E':
        sawE = true;
        continue;
      case '-M':
      case '-MM':
        sawM = true;
        if (arg === '-MM') sawMM = true;
        else sawMOnly = true;
        continue;
      case '-MD':
        md = true;
        keep(arg, { dep: true });
        continue;
      case '-MMD':
        mmd = true;
        keep(arg, { dep: true });
        continue;
      case '-MP':
        phony = true;
        keep(arg, { dep: true });
        continue;
    }

    if (arg.startsWith('-Wp,')) {
      const m = /^-Wp,-(MD|MMD),([^,]+)$/.exec(arg);
      if (!m) return pass('unsupported_option', arg);
      if (wp) return pass('unsupported_option', 'several -Wp,-MD/-MMD');
      wp = { mode: m[1] as 'MD' | 'MMD', file: m[2]! };
      keep(arg, { dep: true });
      continue;
    }

    if (arg.startsWith('-g')) noteDebug(arg);
    else if (arg === '-fdiagnostics-color' || arg === '-fcolor-diagnostics') color = 'always';
    else if (arg === '-fno-diagnostics-color' || arg === '-fno-color-diagnostics') color = 'never';
    else if (arg.startsWith('-fdiagnostics-color=')) {
      const v = arg.slice('-fdiagnostics-color='.length);
      color = v === 'always' || v === 'never' ? v : 'auto';
    } else if (/^-f(debug|file|macro|coverage|profile)-prefix-map=/.test(arg)) hasPrefixMap = true;
    keep(arg);
  }

  // Helpers close over the loop state; declared as functions so they hoist.
  function keepPathOption(name: string, value: string): void {
    keep(name);
    keep(value, { path: PATH_VALUED.has(name) });
    if (EXTRA_INPUT.has(name)) extraInputs.push(value);
  }

  function handleValue(name: string, value: string): GccPass | null {
    switch (name) {
      case '-o':
        output = value;
        return null;
      case '-x':
        xLang = value === 'none' ? null : canonicalLanguage(value);
        keep('-x');
        keep(value);
        return null;
      case '-MF':
        mf = value;
        keep('-MF', { dep: true });
        keep(value, { dep: true });
        return null;
      case '-MT':
      case '-MQ':
        targets.push({ value, quoted: name === '-MQ' });
        keep(name, { dep: true });
        keep(value, { dep: true });
        return null;
      case '-I':
        dashI.push(value);
        break;
      case '-iquote':
        dirs.quote.push(value);
        break;
      case '-isystem':
        dirs.system.push(value);
        break;
      case '-idirafter':
        dirs.after.push(value);
        break;
    }
    keep(name);
    keep(value, { path: PATH_VALUED.has(name) });
    return null;
  }

  function noteDebug(arg: string): void {
    if (arg === '-g') debug = true;
    else if (/^-g(gdb|stabs\+?|xcoff\+?|vms|ctf|coff)?[0-9]$/.test(arg)) debug = !arg.endsWith('0');
    else if (
      /^-g(gdb|stabs\+?|xcoff\+?|vms|btf|ctf|coff|dwarf|dwarf-[0-9]+|line-tables-only|line-directives-only|full|used|lldb|sce|dbx|codeview|modules)$/.test(arg)
    )
      debug = true;
  }

  // CPATH behaves like trailing -I, the language-specific ones like trailing -isystem.
  function includeDirsFor(lang: string): IncludeDirs {
    const angle = [...dashI, ...envList(penv.env['CPATH'])];
    const langEnv = lang.startsWith('objective-c++')
      ? 'OBJCPLUS_INCLUDE_PATH'
      : lang.startsWith('objective-c')
        ? 'OBJC_INCLUDE_PATH'
        : lang.startsWith('c++')
          ? 'CPLUS_INCLUDE_PATH'
          : 'C_INCLUDE_PATH';
    return { quote: dirs.quote, angle, system: [...dirs.system, ...envList(penv.env[langEnv])], after: dirs.after };
  }

  // -M or -MM alone (to stdout, -MF or -o), over sources of one language (see GccDeps).
  function depsOnly(): GccDeps | null {
    if (sawE || sawC || sawS || (sawMM && sawMOnly) || md || mmd || wp || (mf !== null && output !== null) || output === '-' || sources.length === 0)
      return null;
    const langs = sources.map((s) => (s.file === '-' ? null : (s.lang ?? languageOfFile(s.file))));
    const lang = langs[0];
    if (!lang || langs.some((l) => l !== lang) || !isCacheableLanguage(lang) || isHeaderLanguage(lang) || isPreprocessedLanguage(lang)) return null;
    if (lang === 'assembler' || lang === 'c++-module') return null;
    const pathArgs: number[] = [];
    keyArgs.forEach((k, i) => void (k.path && pathArgs.push(i)));
    return {
      kind: 'deps',
      compiler,
      lang,
      mode: sawMM ? 'MM' : 'M',
      sources: sources.map((s) => s.file),
      outFile: mf ?? output,
      keyArgs: keyArgs.map((k) => k.arg),
      pathArgs,
      includeDirs: includeDirsFor(lang),
      extraInputs,
      expandedArgs,
    };
  }

  if (sawM) {
    const d = depsOnly();
    if (d) return d;
  }
  if (sawE || sawM) return pass('preprocess_only', sawE ? '-E' : '-M/-MM');
  if (!sawC && !sawS) return pass('link');

  const stdin = sources.find((s) => s.file === '-');
  if (stdin) return pass('stdin_source');
  const compiled = sources.filter((s) => s.lang !== null || languageOfFile(s.file) !== null);
  if (compiled.length === 0) return pass('no_source', sources.length ? `not a source: ${sources[0]!.file}` : undefined);
  if (compiled.length > 1 || sources.length > 1) return pass('multiple_sources', `${sources.length} inputs`);
  const src = compiled[0]!;
  const lang = src.lang ?? languageOfFile(src.file)!;
  if (isHeaderLanguage(lang)) return pass('pch_output', lang);
  if (lang === 'c++-module') return pass('modules', lang);
  if (lang === 'assembler') return pass('unsupported_language', 'assembler (.include/.incbin are not tracked)');
  // Preprocessed input makes both drivers skip the depfile, which the miss path relies on.
  if (isPreprocessedLanguage(lang)) return pass('unsupported_language', `${lang} (no depfile is written)`);
  if (!isCacheableLanguage(lang)) return pass('unsupported_language', lang);

  const outputKind = sawS ? 'assembly' : 'object';
  if (output === '-') return pass('output_stdout');
  if (output?.endsWith('/')) return pass('output_to_dir', output);
  const finalOutput = output ?? `${sourceStem(src.file)}${outputKind === 'assembly' ? '.s' : '.o'}`;

  if (wp && (md || mmd || mf !== null)) return pass('unsupported_option', '-Wp,-MD/-MMD mixed with -MD/-MMD/-MF');

  let depfile: GccCompile['depfile'] = null;
  if (md || mmd || wp) {
    const mode: 'MD' | 'MMD' = wp ? wp.mode : mmd ? 'MMD' : 'MD';
    // gcc's driver only adds `-MQ <output>` for its own -MD/-MMD; cc1 reached through -Wp falls
    // back to the source stem. clang rewrites -Wp,-MD,f into -MD -MF f, so -o still wins.
    const fromOutput = output !== null && (compiler === 'clang' || !wp);
    depfile = {
      mode,
      file: wp ? wp.file : (mf ?? (output !== null ? replaceSuffix(output, '.d') : `${sourceStem(src.file)}.d`)),
      targets,
      defaultTarget: fromOutput ? output! : `${sourceStem(src.file)}.o`,
      phony,
      viaWp: wp !== null,
    };
  }

  const includeDirs = includeDirsFor(lang);

  const finalKey: string[] = [];
  const pathArgs: number[] = [];
  for (const k of keyArgs) {
    if (k.dep) continue;
    if (k.path) pathArgs.push(finalKey.length);
    finalKey.push(k.arg);
  }

  return {
    kind: 'compile',
    compiler,
    lang,
    outputKind,
    source: src.file,
    output: finalOutput,
    depfile,
    keyArgs: finalKey,
    pathArgs,
    includeDirs,
    extraInputs,
    debug,
    coverage: false,
    splitDwarf: false,
    colorDiagnostics: color,
    hasPrefixMap,
    execArgs: args.slice(),
    expandedArgs: expanded.args,
  };
}

export interface MissArgs {
  argv: string[];
  depfileToRead: string;
  filterSystem: boolean;
}

/**
 * Arguments for a cache miss that make the compiler write a depfile listing every header,
 * system ones included. `args` are the caller's original arguments (`parsed.execArgs`).
 */
export function argsForMiss(parsed: GccCompile, args: string[], tmpDepfile: string): MissArgs {
  const dep = parsed.depfile;
  if (dep === null) return { argv: [...args, '-MD', '-MF', tmpDepfile], depfileToRead: tmpDepfile, filterSystem: false };
  if (dep.mode === 'MD') return { argv: args.slice(), depfileToRead: dep.file, filterSystem: false };
  // Both drivers let -MMD win over -MD wherever it appears, so every -MMD must go,
  // including one inside a response file (then the driver gets the expanded list).
  const isMmd = (x: string): boolean => x === '-MMD' || x === '--write-user-dependencies' || x.startsWith('-Wp,-MMD,');
  const rewrite = (xs: string[]): string[] =>
    xs.map((x) =>
      x === '-MMD' ? '-MD' : x === '--write-user-dependencies' ? '--write-dependencies' : x.startsWith('-Wp,-MMD,') ? `-Wp,-MD,${x.slice(9)}` : x,
    );
  const hidden = parsed.expandedArgs.filter(isMmd).length !== args.filter(isMmd).length;
  const argv = rewrite(hidden ? parsed.expandedArgs : args);
  return { argv, depfileToRead: dep.file, filterSystem: true };
}
