// Make-style depfiles: reading what gcc/clang wrote, and writing exactly what they
// would have written (gcc 12 libcpp/mkdeps.cc; clang 14 DependencyFile.cpp).
import type { CompilerFlavor, DepTarget } from './types.js';

export interface Depfile {
  /** Targets of the first rule. */
  targets: string[];
  /** Prerequisites of every rule, in order (the -MP phony rules have none). */
  deps: string[];
}

/**
 * Parses make syntax as the compilers write it: `\ ` and the 2N+1-backslash rule for
 * blanks, `\#`, `$$`, backslash-newline continuations, several rules; a `#` comment only
 * at the start of a line.
 */
export function parseDepfile(text: string): Depfile {
  return parsePlain(text) ?? parseMake(text);
}

// What a compiler writes for paths without blanks, `$`, `#` or backslashes (nearly every
// depfile): words split on blanks, rules on newlines, the only backslashes continuations.
// Same result as parseMake, at a fraction of its cost (it builds each name a character at
// a time; a cold build parses a depfile of ~100 headers per compile).
const NOT_PLAIN = /[$#\r]|\\(?!\n)/;
const BLANKS = /[ \t]+/;
const RULE_COLON = /:(?=[ \t]|$)/;

function parsePlain(text: string): Depfile | undefined {
  if (NOT_PLAIN.test(text)) return undefined;
  let targets: string[] | null = null;
  const deps: string[] = [];
  for (const line of text.replaceAll('\\\n', ' ').split('\n')) {
    const colon = RULE_COLON.exec(line);
    if (!colon) continue; // words outside a rule: parseMake drops them too
    if (targets === null) targets = words(line.slice(0, colon.index));
    for (const w of line.slice(colon.index + 1).split(BLANKS)) if (w !== '') deps.push(w);
  }
  return { targets: targets ?? [], deps };
}

const words = (s: string): string[] => s.split(BLANKS).filter((w) => w !== '');

/** The whole of make's syntax (exported for the tests: parseDepfile's plain path must agree). */
export function parseMake(text: string): Depfile {
  let targets: string[] | null = null;
  const deps: string[] = [];
  let lineTargets: string[] = [];
  let afterColon = false;
  let word = '';
  let inWord = false;

  const endWord = (): void => {
    if (!inWord) return;
    if (afterColon) deps.push(word);
    else lineTargets.push(word);
    word = '';
    inWord = false;
  };
  const endLine = (): void => {
    endWord();
    if (afterColon && targets === null) targets = lineTargets;
    lineTargets = [];
    afterColon = false;
  };
  const add = (s: string): void => {
    word += s;
    inWord = true;
  };

  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text[i]!;
    if (c === '\\') {
      let k = 0;
      while (i < n && text[i] === '\\') {
        k++;
        i++;
      }
      const next = text[i];
      if (next === ' ' || next === '\t') {
        // GNU make: 2N+1 backslashes and a blank are N backslashes and a literal blank;
        // 2N backslashes end the name with N backslashes.
        if (k % 2 === 1) add('\\'.repeat((k - 1) / 2) + next);
        else {
          add('\\'.repeat(k / 2));
          endWord();
        }
      } else if (next === '#') {
        add('\\'.repeat(k - 1) + '#');
      } else if (next === '\n' || (next === '\r' && text[i + 1] === '\n')) {
        if (k > 1) add('\\'.repeat(k - 1));
        endWord();
        if (next === '\r') i++;
      } else {
        if (k > 0) add('\\'.repeat(k));
        i--; // let the loop see `next` itself
      }
      continue;
    }
    if (c === '$') {
      add('$');
      if (text[i + 1] === '$') i++;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\r') {
      endWord();
      continue;
    }
    if (c === '\n') {
      endLine();
      continue;
    }
    // Compilers never write comments, but they write -MT targets verbatim, `#` included.
    if (c === '#' && !inWord && lineTargets.length === 0 && !afterColon) {
      while (i + 1 < n && text[i + 1] !== '\n') i++;
      continue;
    }
    if (c === ':' && !afterColon) {
      const next = text[i + 1];
      if (
        next === undefined ||
        next === ' ' ||
        next === '\t' ||
        next === '\n' ||
        next === '\r' ||
        (next === '\\' && /^\\\r?\n/.test(text.slice(i + 1, i + 4)))
      ) {
        endWord();
        afterColon = true;
        continue;
      }
    }
    add(c);
  }
  endLine();
  return { targets: targets ?? [], deps };
}

/** gcc's munge(): make-quoting of a target (-MQ) or a prerequisite. */
export function mungeGcc(s: string): string {
  let out = '';
  let slashes = 0;
  for (const c of s) {
    switch (c) {
      case '\\':
        slashes++;
        break;
      case '$':
        out += '$';
        slashes = 0;
        break;
      case ' ':
      case '\t':
        out += '\\'.repeat(slashes) + '\\';
        slashes = 0;
        break;
      case '#':
        out += '\\';
        slashes = 0;
        break;
      default:
        slashes = 0;
    }
    out += c;
  }
  return out;
}

/** clang's PrintFilename() for prerequisites: like gcc's but a tab stays as it is. */
function quoteClangDep(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '#') out += '\\';
    else if (c === ' ') {
      out += '\\';
      for (let j = i; j > 0 && s[--j] === '\\'; ) out += '\\';
    } else if (c === '$') out += '$';
    out += c;
  }
  return out;
}

/** libcpp's apply_vpath without a VPATH: drop leading `./` (and the slashes after it). */
function stripDotSlash(t: string): string {
  while (t[0] === '.' && t[1] === '/') {
    t = t.slice(2);
    while (t[0] === '/') t = t.slice(1);
  }
  return t;
}

/** llvm::sys::path::remove_leading_dotslash. */
function stripDotSlashLlvm(t: string): string {
  while (t.length > 2 && t[0] === '.' && t[1] === '/') {
    t = t.slice(2);
    while (t[0] === '/') t = t.slice(1);
  }
  return t;
}

/**
 * The order in which gcc's cc1 holds the targets: the driver passes every -MQ before every
 * -MT, and mkdeps moves each unquoted target in front of the quoted ones by swapping it
 * with the first quoted one (so quoted targets do not keep their order).
 */
export function gccTargetOrder(targets: DepTarget[]): { list: string[]; quoteFrom: number } {
  const list: string[] = [];
  let lwm = 0;
  for (const t of [...targets.filter((x) => x.quoted), ...targets.filter((x) => !x.quoted)]) {
    let v = stripDotSlash(t.value);
    if (!t.quoted) {
      if (lwm !== list.length) {
        const lowest = list[lwm]!;
        list[lwm] = v;
        v = lowest;
      }
      lwm++;
    }
    list.push(v);
  }
  return { list, quoteFrom: lwm };
}

export interface WriteOptions {
  /** Whose layout to reproduce; default 'gcc'. */
  compiler?: CompilerFlavor;
}

/**
 * The depfile the compiler would write for these targets (-MT/-MQ in command-line order;
 * pass the default target as `{ value, quoted: true }` when there were none) and these
 * prerequisites (main source first), byte for byte.
 */
export function writeDepfile(targets: DepTarget[], deps: string[], phony: boolean, opts: WriteOptions = {}): string {
  return (opts.compiler ?? 'gcc') === 'clang' ? writeClang(targets, deps, phony) : writeGcc(targets, deps, phony);
}

/** The targets as gcc writes them, in its order (what the native shim writes for -MMD: native/depfile.h). */
export function gccTargetWords(targets: DepTarget[]): string[] {
  const { list, quoteFrom } = gccTargetOrder(targets);
  return list.map((t, i) => (i >= quoteFrom ? mungeGcc(t) : t));
}

function writeGcc(targets: DepTarget[], deps: string[], phony: boolean): string {
  const colmax = 72;
  if (deps.length === 0) return '';
  const ds = deps.map((d) => mungeGcc(stripDotSlash(d)));
  let out = '';
  let col = 0;
  const writeName = (name: string): void => {
    if (col) {
      if (col + name.length > colmax) {
        out += ' \\\n';
        col = 0;
      }
      col++;
      out += ' ';
    }
    col += name.length;
    out += name;
  };
  gccTargetWords(targets).forEach(writeName);
  out += ':';
  col++;
  for (const d of ds) writeName(d);
  out += '\n';
  if (phony) for (let i = 1; i < ds.length; i++) out += `${ds[i]}:\n`;
  return out;
}

function writeClang(targets: DepTarget[], deps: string[], phony: boolean): string {
  const maxColumns = 75;
  const files: string[] = [];
  const seen = new Set<string>();
  for (const d of deps.map(stripDotSlashLlvm)) {
    if (d === '<stdin>' || seen.has(d)) continue;
    seen.add(d);
    files.push(d);
  }
  let out = '';
  let columns = 0;
  for (const t of targets) {
    const v = t.quoted ? mungeGcc(t.value) : t.value;
    const n = v.length;
    if (columns === 0) columns += n;
    else if (columns + n + 2 > maxColumns) {
      columns = n + 2;
      out += ' \\\n  ';
    } else {
      columns += n + 1;
      out += ' ';
    }
    out += v;
  }
  out += ':';
  columns += 1;
  for (const f of files) {
    const n = f.length;
    if (columns + (n + 1) + 2 > maxColumns) {
      out += ' \\\n ';
      columns = 2;
    }
    out += ' ' + quoteClangDep(f);
    columns += n + 1;
  }
  out += '\n';
  if (phony) for (let i = 1; i < files.length; i++) out += `\n${quoteClangDep(files[i]!)}:\n`;
  return out;
}

/** What gcc and clang name the rule after when there is no -MT/-MQ but there is an output: the output itself. */
export function defaultTarget(output: string): string {
  return output;
}
