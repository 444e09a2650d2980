import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ERROR_CODES } from '../../ipc/errors.js';
import { LEGEND } from '../../ipc/messages/legend.js';
import { LIVE_SKIPPED, NOT_STORED, SHIM_FALLBACKS, UNCACHEABLE } from '../../ipc/reasons.js';

// Tables in docs/ that are rendered from a registry in the code, between
// `<!-- NAME:begin -->` and `<!-- NAME:end -->`. Tests compare them; `node
// dist/test/helpers/doc-tables.js --write` rewrites them from the code.

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const DESIGN = path.join(ROOT, 'docs', 'design.md');
export const REASONS_DOC = path.join(ROOT, 'docs', 'reasons.md');

const cell = (s: string) => s.replace(/\|/g, '\\|');

type Rows = Record<string, readonly [string, string]>;
const rows = (message: string, legend: Rows) =>
  Object.entries(legend).map(([k, [name, meaning]]) => `| ${message} | \`${k}\` | ${name === k ? '' : name} | ${cell(meaning)} |`);

/** The protocol legend (ipc/messages/legend.ts) as docs/design.md shows it. */
export function legendMarkdown(): string {
  const out = ['| message | key | long name | meaning |', '|---|---|---|---|', ...rows('(all)', LEGEND.common)];
  for (const [k, l] of Object.entries(LEGEND.requests)) out.push(...rows(`\`${k}\` request`, l as Rows));
  for (const [k, l] of Object.entries(LEGEND.replies)) out.push(...rows(`\`${k}\` reply`, l as Rows));
  return out.join('\n') + '\n';
}

const GROUPS: [title: string, what: string, registry: Record<string, string>][] = [
  ['uncacheable', 'the daemon passed the call through: the compiler ran as without vrift', UNCACHEABLE],
  ['not_stored', '"compiled, not stored": a miss whose result was not kept', NOT_STORED],
  ['errors', 'daemon errors by code; the call ran the compiler as without vrift', ERROR_CODES],
  ['shim_fallbacks', '"shim went around the cache": the shim ran the compiler without an answer it could use', SHIM_FALLBACKS],
  ['live_skipped', '`vrift live status`: compiles live mode does not warm in the background (docs/live.md)', LIVE_SKIPPED],
];

/** The reason registry (ipc/reasons.ts) and the error codes as docs/reasons.md lists them. */
export function reasonsMarkdown(): string {
  const out: string[] = [];
  for (const [title, what, registry] of GROUPS) {
    out.push(`## \`${title}\``, '', `${what[0].toUpperCase()}${what.slice(1)}.`, '', '| reason | meaning |', '|---|---|');
    for (const [k, meaning] of Object.entries(registry)) out.push(`| \`${k}\` | ${cell(meaning)} |`);
    out.push('');
  }
  return out.join('\n');
}

export const SECTIONS: Record<string, { file: string; render: () => string }> = {
  legend: { file: DESIGN, render: legendMarkdown },
  reasons: { file: REASONS_DOC, render: reasonsMarkdown },
};

const markers = (name: string) => [`<!-- ${name}:begin -->\n`, `<!-- ${name}:end -->`] as const;

/** What the doc holds between the markers (undefined: no such section). */
export function docSection(file: string, name: string): string | undefined {
  const text = fs.readFileSync(file, 'utf8');
  const [b, e] = markers(name);
  const i = text.indexOf(b);
  const j = text.indexOf(e);
  return i < 0 || j < i ? undefined : text.slice(i + b.length, j);
}

function writeSection(file: string, name: string, body: string): void {
  const text = fs.readFileSync(file, 'utf8');
  const [b, e] = markers(name);
  const i = text.indexOf(b);
  const j = text.indexOf(e);
  if (i < 0 || j < i) throw new Error(`${file} has no ${b.trim()} … ${e} section`);
  fs.writeFileSync(file, text.slice(0, i + b.length) + body + text.slice(j));
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv.includes('--write')) {
  for (const [name, s] of Object.entries(SECTIONS)) writeSection(s.file, name, s.render());
}
