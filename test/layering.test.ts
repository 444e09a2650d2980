import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from './helpers/test.js';
import { ROOT } from './helpers/instance.js';
import { folderCycles, productFolders, projectArrows, topFolder, type Arrow } from './helpers/imports.js';

// The arrows of docs/design.md ("Folders and arrows"): clients reach the daemon only through
// ipc/ or by running its program; what both sides share lives where neither is imported.
// A folder without a rule may import anything, as long as no cycle between folders forms.
const RULES: Record<string, { may: string[]; files?: string[]; why: string }> = {
  ipc: { may: [], why: 'ipc imports nothing of the project' },
  // config/ reads VRIFT_HOME's paths and throws the stable errors (those two files of ipc/
  // only), and reads keys as trust/ does (trust/ imports only ipc/).
  config: { may: ['trust'], files: ['ipc/errors.ts', 'ipc/paths.ts'], why: 'config imports only trust/, ipc/errors.ts and ipc/paths.ts' },
  trust: { may: ['ipc'], why: 'trust is shared by the CLI and the daemon: it imports only ipc' },
  shim: { may: ['ipc', 'config', 'trust'], why: 'shim (the shims and the CLI) reaches the daemon only through ipc or by running it' },
  daemon: { may: ['ipc', 'config', 'trust', 'discovery'], why: 'the daemon never imports its clients' },
  discovery: { may: ['ipc', 'config', 'trust'], why: 'discovery never imports shim, nor the daemon that uses it' },
};

function forbidden(arrows: Arrow[]): string[] {
  const out: string[] = [];
  for (const a of arrows) {
    const from = topFolder(a.from);
    const to = topFolder(a.to);
    const rule = RULES[from];
    if (from === to || !rule || rule.may.includes(to) || rule.files?.includes(a.to)) continue;
    out.push(`${a.from} → ${a.to} (${a.how}): ${rule.why}`);
  }
  return out;
}

test('the arrows hold: every import of ipc/, config/, shim/, daemon/ and the rest, read by the TypeScript parser', (t) => {
  const folders = productFolders(ROOT);
  for (const f of ['ipc', 'config', 'shim', 'daemon']) t.true(folders.includes(f), `${f}/ is scanned`);
  const { files, arrows, unreadable } = projectArrows(ROOT, folders);
  t.true(files > 100, `${files} files read`);
  // Not a vacuous pass: the arrows that must exist are seen.
  for (const [from, to] of [
    ['shim', 'ipc'],
    ['daemon', 'ipc'],
    ['shim', 'config'],
    ['daemon', 'config'],
  ]) {
    t.true(
      arrows.some((a) => topFolder(a.from) === from && topFolder(a.to) === to),
      `${from} → ${to} seen`,
    );
  }
  // A computed name cannot be checked; every offence is listed before the test stops.
  t.deepEqual({ forbidden: forbidden(arrows), cycles: folderCycles(arrows), unreadable }, { forbidden: [], cycles: [], unreadable: [] });
  for (const a of arrows)
    t.true(fs.existsSync(path.join(ROOT, a.to)) || fs.existsSync(path.join(ROOT, a.to, 'index.ts')), `${a.from} imports ${a.to}, which exists`);
});

test('the check sees every form of import and names each forbidden arrow and each cycle', (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'vrift-layering-'));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  const put = (file: string, text: string) => {
    fs.mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
    fs.writeFileSync(path.join(root, file), text);
  };
  put('ipc/errors.ts', `export class E extends Error {}\n`);
  put('ipc/wire.ts', `import { x } from '../config/units.js';\nexport { E } from './errors.js';\n`);
  put('config/units.ts', `import { E } from '../ipc/errors.js';\nimport type { Tier } from '../daemon/tier.js';\nexport const x = 1;\n`);
  put('daemon/tier.ts', `import '../discovery/peers.js';\nexport interface Tier {}\n`);
  put('discovery/peers.ts', `import { Daemon } from '../daemon/tier.js';\nexport type P = import('../shim/cli.js').Cli;\n`);
  put(
    'shim/cli.ts',
    [
      `import { E } from '../ipc/errors.js';`,
      `import type { Tier } from '../daemon/tier.js';`,
      `export * from '../daemon/a.js';`,
      `export { b } from '../daemon/b.js';`,
      `const m = await import('../daemon/c.js');`,
      `let d: import('../daemon/d.js').D;`,
      `import e = require('../daemon/e.js');`,
      `const f = require('../daemon/f.js');`,
      `const g = await import(\`../daemon/\${name}.js\`);`,
      `import fs from 'node:fs';`,
      `import ts from 'typescript';`,
      `export interface Cli {}`,
    ].join('\n'),
  );
  put('test/x.test.ts', `import '../daemon/tier.js';\n`);
  put('bench/y.ts', `import '../shim/cli.js';\n`);

  t.deepEqual(productFolders(root), ['config', 'daemon', 'discovery', 'ipc', 'shim']);
  const { arrows, unreadable } = projectArrows(root, productFolders(root));
  t.deepEqual(unreadable, ['shim/cli.ts: import() of a computed name']);
  const shimWhy = RULES.shim.why;
  t.deepEqual(
    forbidden(arrows).sort(),
    [
      `config/units.ts → daemon/tier.ts (import type): ${RULES.config.why}`,
      `discovery/peers.ts → daemon/tier.ts (import): ${RULES.discovery.why}`,
      `discovery/peers.ts → shim/cli.ts (import type()): ${RULES.discovery.why}`,
      `ipc/wire.ts → config/units.ts (import): ${RULES.ipc.why}`,
      `shim/cli.ts → daemon/tier.ts (import type): ${shimWhy}`,
      `shim/cli.ts → daemon/a.ts (export from): ${shimWhy}`,
      `shim/cli.ts → daemon/b.ts (export from): ${shimWhy}`,
      `shim/cli.ts → daemon/c.ts (import()): ${shimWhy}`,
      `shim/cli.ts → daemon/d.ts (import type()): ${shimWhy}`,
      `shim/cli.ts → daemon/e.ts (import = require): ${shimWhy}`,
      `shim/cli.ts → daemon/f.ts (require): ${shimWhy}`,
    ].sort(),
  );
  t.deepEqual(folderCycles(arrows), [
    'config → daemon → discovery → shim → ipc → config (config/units.ts → daemon/tier.ts; daemon/tier.ts → discovery/peers.ts; discovery/peers.ts → shim/cli.ts; shim/cli.ts → ipc/errors.ts; ipc/wire.ts → config/units.ts)',
    'config → ipc → config (config/units.ts → ipc/errors.ts; ipc/wire.ts → config/units.ts)',
    'daemon → discovery → daemon (daemon/tier.ts → discovery/peers.ts; discovery/peers.ts → daemon/tier.ts)',
    'daemon → discovery → shim → daemon (daemon/tier.ts → discovery/peers.ts; discovery/peers.ts → shim/cli.ts; shim/cli.ts → daemon/tier.ts)',
  ]);
  // Tests and benchmarks may import anything: they are not read.
  t.false(arrows.some((a) => a.from.startsWith('test/') || a.from.startsWith('bench/')));
});
