import fs from 'node:fs';
import path from 'node:path';
import type { Finish, Outcome } from '../daemon/frontends/types.js';
import type { PassReply } from '../ipc/messages/compile.js';
import { NOT_STORED, REASONS, SHIM_FALLBACKS, UNCACHEABLE } from '../ipc/reasons.js';
import { formatStats } from '../shim/format.js';
import { docSection, REASONS_DOC, reasonsMarkdown } from './helpers/doc-tables.js';
import { instance, ROOT } from './helpers/instance.js';
import test from './helpers/test.js';

// Compile-time: a reason outside the registry does not compile where a reason is carried
// (`npm run build` fails when one of these @ts-expect-error lines compiles).
export const typos: [Outcome<never>, Finish, PassReply] = [
  // @ts-expect-error a pass reason that is not in ipc/reasons.ts
  { kind: 'pass', reason: 'unsuported_option' },
  // @ts-expect-error a not-stored reason that is not in ipc/reasons.ts
  { stored: false, reason: 'input_to_new' },
  // @ts-expect-error a pass reply's reason that is not in ipc/reasons.ts
  { t: 'pass', reason: 'nope' },
];

test('docs/reasons.md lists the registry and the error codes, each with its meaning', (t) => {
  t.is(docSection(REASONS_DOC, 'reasons'), reasonsMarkdown(), 'rewrite it: node dist/test/helpers/doc-tables.js --write');
});

test('reason names are stable-looking snake_case with one line of meaning each', (t) => {
  for (const [group, registry] of Object.entries(REASONS)) {
    for (const [k, meaning] of Object.entries(registry as Record<string, string>)) {
      t.regex(k, /^[a-z][a-z0-9_]*$/, `${group}.${k}`);
      t.true(meaning.length > 10 && !meaning.includes('\n'), `${group}.${k}`);
    }
  }
});

test('every reason the native shim, the interceptor and the TypeScript shim write to fallback.ndjson is registered', (t) => {
  const found = new Set<string>();
  const dirs: [string, RegExp][] = [
    [path.join(ROOT, 'native'), /\b(?:fallback|note_fallback)\((?:[a-z]+, )?(?:[^;]*?\? )?"([a-z_0-9]+)"(?: : "([a-z_0-9]+)")?\)/g],
    [path.join(ROOT, 'shim'), /noteFallback\([^,]+, (?:[^;]*?\? )?'([a-z_0-9]+)'(?: : '([a-z_0-9]+)')?\)/g],
  ];
  for (const [dir, re] of dirs) {
    for (const f of fs.readdirSync(dir).filter((n) => /\.(c|ts)$/.test(n))) {
      for (const m of fs.readFileSync(path.join(dir, f), 'utf8').matchAll(re)) for (const r of m.slice(1)) if (r) found.add(r);
    }
  }
  t.true(found.size >= 8, [...found].join(' '));
  for (const r of found) t.true(Object.hasOwn(SHIM_FALLBACKS, r), `${r} is not in SHIM_FALLBACKS`);
});

test("stats --explain prints a reason's meaning under it, from the registry; an unknown one gets none", (t) => {
  const raw = {
    requests: 3,
    hits: 0,
    misses: 1,
    compile_failed: 0,
    stored: 0,
    stored_bytes: 0,
    since: new Date().toISOString(),
    uncacheable: { preprocess_only: 1, from_an_older_build: 1 },
    not_stored: { input_too_new: 1 },
    errors: { EBADMSG: 2 },
    shim_fallbacks: { timeout: 1 },
  };
  const lines = formatStats(raw, '/h', true).split('\n');
  const under = (label: string) => lines[lines.findIndex((l) => l.trim().startsWith(label + ' ')) + 1]?.trim();
  t.is(under('preprocess_only'), UNCACHEABLE.preprocess_only);
  t.is(under('input_too_new'), NOT_STORED.input_too_new);
  t.is(under('timeout'), SHIM_FALLBACKS.timeout);
  t.regex(under('EBADMSG') ?? '', /malformed/);
  t.true(/^\s*compiled, not stored/.test(under('from_an_older_build') ?? ''), 'no meaning line for an unknown reason');
  t.false(formatStats(raw, '/h', false).includes(UNCACHEABLE.preprocess_only), 'only with --explain');
});

test('vrift stats --explain, with a real daemon: the reason a call passed through and what it means', async (t) => {
  const v = instance(t);
  v.write('a.c', 'int a(void) { return 1; }\n');
  t.is((await v.cc(['-E', 'a.c', '-o', 'a.i'])).code, 0);
  t.like((await v.stats()).uncacheable, { preprocess_only: 1 });
  const out = (await v.vrift(['stats', '--explain'])).out.split('\n');
  const i = out.findIndex((l) => l.trim().startsWith('preprocess_only '));
  t.true(i >= 0, out.join('\n'));
  t.is(out[i + 1]?.trim(), UNCACHEABLE.preprocess_only);
});
