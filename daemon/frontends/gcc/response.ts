// @file expansion as gcc's driver (libiberty expandargv/buildargv) and clang's
// GNU tokenizer do it; both agree on everything tested here (see test/gcc-response.test.ts).
import path from 'node:path';

/** Bounds runaway recursion (a file that includes itself); libiberty uses the same limit. */
const MAX_EXPANSIONS = 2000;

const isSpace = (c: string): boolean => c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\v' || c === '\f';

/**
 * Splits response-file text into arguments. A backslash takes the next character
 * literally everywhere, even inside quotes and even a newline; quotes group without
 * being kept; `''` yields an empty argument.
 */
export function splitResponseFile(text: string): string[] {
  const out: string[] = [];
  let i = 0;
  const n = text.length;
  while (i < n) {
    while (i < n && isSpace(text[i]!)) i++;
    if (i >= n) break;
    let arg = '';
    let squote = false;
    let dquote = false;
    while (i < n) {
      const c = text[i]!;
      if (c === '\\' && i + 1 < n) {
        arg += text[i + 1];
        i += 2;
        continue;
      }
      if (squote) {
        if (c === "'") squote = false;
        else arg += c;
      } else if (dquote) {
        if (c === '"') dquote = false;
        else arg += c;
      } else if (isSpace(c)) {
        break;
      } else if (c === "'") {
        squote = true;
      } else if (c === '"') {
        dquote = true;
      } else {
        arg += c;
      }
      i++;
    }
    out.push(arg);
  }
  return out;
}

export type ExpandResult = { ok: true; args: string[]; usedResponseFile: boolean } | { ok: false; file: string };

/**
 * Expands every `@file` in place, nested ones included (paths relative to cwd, not to the
 * including file, as both drivers do). An unreadable file is an error here although
 * the drivers then treat `@file` as an input and fail: we let them fail on their own.
 */
export function expandResponseFiles(args: string[], cwd: string, readFile: (p: string) => string): ExpandResult {
  const out = args.slice();
  let expansions = 0;
  let used = false;
  for (let i = 0; i < out.length; ) {
    const a = out[i]!;
    if (a.length < 2 || a[0] !== '@') {
      i++;
      continue;
    }
    if (++expansions > MAX_EXPANSIONS) return { ok: false, file: a.slice(1) };
    let text: string;
    try {
      text = readFile(path.resolve(cwd, a.slice(1)));
    } catch {
      return { ok: false, file: a.slice(1) };
    }
    used = true;
    out.splice(i, 1, ...splitResponseFile(text));
  }
  return { ok: true, args: out, usedResponseFile: used };
}
