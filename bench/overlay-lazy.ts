import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { mountedOverlays } from '../ipc/mounts.js';
import { ensureSources, luaTree } from './sources.js';

// Lazy hits (docs/overlay.md) against eager ones: Lua (Debian's redis, make -j2 in tree) built
// cold through vrift, `make clean`, then warm through vrift: the objects alone (lazy: no bytes
// written) and then the rest (ar and the links read every object, so each is fetched), in a
// plain directory (hits written in full) and in one mounted by `vrift mount`; the same for a
// generated project built out of tree (only its build/ mounted); runs interleaved.
// `node dist/bench/overlay-lazy.js [runs]`; writes bench/results/overlay-lazy-<time>.md.
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = path.join(ROOT, 'dist', 'shim', 'cli.js');
const SHIM = path.join(ROOT, 'native', 'build', 'vrift-shim');
const runs = Number(process.argv[2] ?? 3);

const base = fs.mkdtempSync(path.join(os.tmpdir(), 'vrift-bench-lazy-'));
const env = { ...process.env, VRIFT_HOME: path.join(base, 'home') };
const vrift = (...args: string[]) => execFileSync(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'ignore', 'inherit'] });
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function make(src: string, targets: string[]): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [CLI, 'run', '-q', '--', 'make', '-j2', 'MYCFLAGS=-O0 -MMD', `CC=${SHIM} gcc`, ...targets], {
    cwd: src,
    env,
    stdio: 'ignore',
  });
  if (r.status !== 0) throw new Error(`make ${targets.join(' ')} failed in ${src}`);
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

ensureSources({ quiet: true });
const probe = luaTree(path.join(base, 'probe'));
spawnSync('make', ['-j2', 'all', 'CC=gcc', 'MYCFLAGS=-O0 -MMD'], { cwd: probe, stdio: 'ignore' });
const objs = fs.readdirSync(probe).filter((n) => n.endsWith('.o'));

/** A generated C project: `n` sources whose objects and program go to build/ (out of tree: only build/ is mounted). */
function generated(root: string, n: number): string {
  fs.mkdirSync(path.join(root, 'build'), { recursive: true });
  const body = (i: number) =>
    Array.from({ length: 40 }, (_, k) => `int f${i}_${k}(int x) { int s = 0; for (int j = 0; j < x; j++) s += j * ${k + i}; return s; }`).join('\n');
  for (let i = 0; i < n; i++) fs.writeFileSync(path.join(root, `s${i}.c`), `${body(i)}\n`);
  fs.writeFileSync(path.join(root, 'main.c'), 'int main(void) { return 0; }\n');
  const objs = [...Array.from({ length: n }, (_, i) => `build/s${i}.o`), 'build/main.o'];
  fs.writeFileSync(
    path.join(root, 'Makefile'),
    `OBJS = ${objs.join(' ')}\nall: build/prog\nobjs: $(OBJS)\nbuild/prog: $(OBJS)\n\t$(CC) -o $@ $^\nbuild/%.o: %.c\n\t$(CC) -O2 -g -c $< -o $@\nclean:\n\trm -f build/*.o build/prog\n.PHONY: all objs clean\n`,
  );
  return root;
}

type Times = Record<'eager' | 'lazy', { objs: number[]; rest: number[] }>;
const t: Times = { eager: { objs: [], rest: [] }, lazy: { objs: [], rest: [] } };
const g: Times = { eager: { objs: [], rest: [] }, lazy: { objs: [], rest: [] } };
try {
  for (let i = 0; i < runs; i++) {
    for (const mode of ['eager', 'lazy'] as const) {
      const src = luaTree(path.join(base, `${mode}-${i}`));
      if (mode === 'lazy') vrift('mount', src);
      make(src, ['all']);
      spawnSync('make', ['clean'], { cwd: src, stdio: 'ignore' });
      t[mode].objs.push(make(src, objs));
      t[mode].rest.push(make(src, ['all']));
      // --force: the build has ended; a make child still exiting must not fail the run.
      if (mode === 'lazy') vrift('unmount', '--force', src);
      process.stderr.write(`run ${i + 1} ${mode}: objects ${t[mode].objs.at(-1)!.toFixed(2)} s, rest ${t[mode].rest.at(-1)!.toFixed(2)} s\n`);
      const gen = generated(path.join(base, `gen-${mode}-${i}`), 60);
      if (mode === 'lazy') vrift('mount', path.join(gen, 'build'));
      make(gen, ['all']);
      spawnSync('make', ['clean'], { cwd: gen, stdio: 'ignore' });
      g[mode].objs.push(make(gen, ['objs']));
      g[mode].rest.push(make(gen, ['all']));
      if (mode === 'lazy') vrift('unmount', '--force', path.join(gen, 'build'));
      process.stderr.write(`run ${i + 1} ${mode} out of tree: objects ${g[mode].objs.at(-1)!.toFixed(2)} s, link ${g[mode].rest.at(-1)!.toFixed(2)} s\n`);
    }
  }
} finally {
  for (const d of mountedOverlays()) if (d.startsWith(`${base}/`)) vrift('unmount', '--force', d);
  spawnSync(process.execPath, [CLI, 'daemon', 'stop'], { env, stdio: 'ignore' });
}

const row = (name: string, e: number[], l: number[]) =>
  `| ${name} | ${median(e).toFixed(2)} s | ${median(l).toFixed(2)} s | ${(median(l) / median(e)).toFixed(2)} |`;
const sum = (m: 'eager' | 'lazy', x: Times = t) => x[m].objs.map((v, i) => v + x[m].rest[i]!);
const text = [
  `# Lazy hits vs eager, warm make -j2 of Lua through vrift (${new Date().toISOString()})`,
  '',
  `${runs} runs each, interleaved; medians. load: ${os
    .loadavg()
    .map((x) => x.toFixed(1))
    .join(' ')}, ${os.cpus().length} cores. ${objs.length} objects.`,
  '',
  '| warm build | eager (plain dir) | lazy (mounted) | ratio |',
  '|---|---|---|---|',
  row('objects alone (lazy: none written)', t.eager.objs, t.lazy.objs),
  row('the rest (ar, links: every object read)', t.eager.rest, t.lazy.rest),
  row('whole warm build', sum('eager'), sum('lazy')),
  '',
  'A generated project, 60 sources (-O2 -g), out of tree: only build/ mounted.',
  '',
  '| warm build | eager (plain dir) | lazy (build/ mounted) | ratio |',
  '|---|---|---|---|',
  row('objects alone', g.eager.objs, g.lazy.objs),
  row('the link (reads every object)', g.eager.rest, g.lazy.rest),
  row('whole warm build', sum('eager', g), sum('lazy', g)),
  '',
  `raw: ${JSON.stringify({ lua: t, generated: g })}`,
  '',
].join('\n');
const stamp = new Date().toISOString().replace(/[:.]/g, '-');
const out = path.join(ROOT, 'bench', 'results', `overlay-lazy-${stamp}.md`);
fs.writeFileSync(out, text);
process.stdout.write(`${text}\nwritten to ${out}\n`);
fs.rmSync(base, { recursive: true, force: true });
