import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { mountedOverlays } from '../ipc/mounts.js';
import { ensureSources, luaTree, pristineTree } from './sources.js';

// The FUSE overlay in passthrough (docs/overlay.md) against the same directory unmounted, on
// the same disk: stat and read latency of one file, and a cold make -j2 build of Lua (Debian's
// redis, in-tree: every source read crosses the overlay too) and of libuv (CMake, out of tree:
// only the build dir is mounted, as a user would) with plain gcc, runs interleaved.
// `node dist/bench/overlay.js [runs]`; writes bench/results/overlay-<time>.md.
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = path.join(ROOT, 'dist', 'shim', 'cli.js');
const runs = Number(process.argv[2] ?? 3);

const base = fs.mkdtempSync(path.join(os.tmpdir(), 'vrift-bench-overlay-'));
const env = { ...process.env, VRIFT_HOME: path.join(base, 'home') };
const vrift = (...args: string[]) => execFileSync(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'ignore', 'inherit'] });
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
const median = (xs: number[]) => pct(xs, 50);
const ms = (ns: bigint) => Number(ns) / 1e6;

function micro(dir: string): { statUs: [number, number]; firstMs: number; secondMs: number } {
  const f = path.join(dir, 'one-mb');
  const stats: number[] = [];
  for (let i = 0; i < 2000; i++) {
    const t0 = process.hrtime.bigint();
    fs.statSync(f);
    stats.push(ms(process.hrtime.bigint() - t0) * 1000);
  }
  const read = () => {
    const t0 = process.hrtime.bigint();
    fs.readFileSync(f);
    return ms(process.hrtime.bigint() - t0);
  };
  const firstMs = read();
  return { statUs: [pct(stats, 50), pct(stats, 99)], firstMs, secondMs: read() };
}

function lua(to: string): string {
  ensureSources({ quiet: true });
  return luaTree(to);
}

function build(src: string): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync('make', ['-j2', 'all', 'CC=gcc', 'MYCFLAGS=-O0 -MMD'], { cwd: src, stdio: 'ignore' });
  if (r.status !== 0) throw new Error(`make failed in ${src}`);
  return ms(process.hrtime.bigint() - t0) / 1000;
}

/** libuv's pristine tree configured into a fresh `build` (mounted or not by the caller); the time of its cold make -j2. */
function libuv(build: string): number {
  const src = pristineTree('libuv', ensureSources({ quiet: true }));
  const c = spawnSync('cmake', ['-S', src, '-B', build, '-DCMAKE_BUILD_TYPE=RelWithDebInfo', '-DLIBUV_BUILD_TESTS=ON', '-DCMAKE_C_COMPILER=gcc'], {
    stdio: 'ignore',
  });
  if (c.status !== 0) throw new Error(`cmake failed for ${build}`);
  const t0 = process.hrtime.bigint();
  const r = spawnSync('make', ['-j2'], { cwd: build, stdio: 'ignore' });
  if (r.status !== 0) throw new Error(`make failed in ${build}`);
  return ms(process.hrtime.bigint() - t0) / 1000;
}

const lines: string[] = [];
try {
  const plainDir = path.join(base, 'plain');
  const mountedDir = path.join(base, 'mounted');
  for (const d of [plainDir, mountedDir]) {
    fs.mkdirSync(d);
    fs.writeFileSync(path.join(d, 'one-mb'), Buffer.alloc(1 << 20, 7));
  }
  vrift('mount', mountedDir);
  const p = micro(plainDir);
  const m = micro(mountedDir);
  lines.push(
    '| 1 MB file | ext4 | overlay |',
    '|---|---|---|',
    `| stat p50 / p99 (µs) | ${p.statUs.map((x) => x.toFixed(1)).join(' / ')} | ${m.statUs.map((x) => x.toFixed(1)).join(' / ')} |`,
    `| first read (ms, MB/s) | ${p.firstMs.toFixed(2)}, ${(1000 / p.firstMs).toFixed(0)} | ${m.firstMs.toFixed(2)}, ${(1000 / m.firstMs).toFixed(0)} |`,
    `| second read (ms, MB/s) | ${p.secondMs.toFixed(2)}, ${(1000 / p.secondMs).toFixed(0)} | ${m.secondMs.toFixed(2)}, ${(1000 / m.secondMs).toFixed(0)} |`,
    '',
  );
  const plainT: number[] = [];
  const mountedT: number[] = [];
  for (let i = 0; i < runs; i++) {
    for (const [dir, out] of [
      [plainDir, plainT],
      [mountedDir, mountedT],
    ] as const) {
      const tree = path.join(dir, `lua-${i}`);
      out.push(build(lua(tree)));
    }
  }
  vrift('unmount', mountedDir);
  const uvPlain: number[] = [];
  const uvMounted: number[] = [];
  for (let i = 0; i < runs; i++) {
    uvPlain.push(libuv(path.join(plainDir, `uv-${i}`)));
    const build = path.join(mountedDir, `uv-${i}`);
    fs.mkdirSync(build);
    vrift('mount', build);
    try {
      uvMounted.push(libuv(build));
    } finally {
      vrift('unmount', build);
    }
  }
  lines.push(
    `Cold \`make -j2\` of libuv (CMake RelWithDebInfo with tests, out of tree, only the build dir mounted), ${runs} runs each, interleaved (s):`,
    '',
    `- ext4: ${uvPlain.map((x) => x.toFixed(2)).join(', ')} (median ${median(uvPlain).toFixed(2)})`,
    `- overlay: ${uvMounted.map((x) => x.toFixed(2)).join(', ')} (median ${median(uvMounted).toFixed(2)})`,
    `- ratio of medians overlay / ext4: ${(median(uvMounted) / median(uvPlain)).toFixed(3)}`,
    '',
  );
  lines.push(
    `Cold \`make -j2\` of Lua (plain gcc, -O0 -MMD), ${runs} runs each, interleaved (s):`,
    '',
    `- ext4: ${plainT.map((x) => x.toFixed(2)).join(', ')} (median ${median(plainT).toFixed(2)})`,
    `- overlay: ${mountedT.map((x) => x.toFixed(2)).join(', ')} (median ${median(mountedT).toFixed(2)})`,
    `- ratio of medians overlay / ext4: ${(median(mountedT) / median(plainT)).toFixed(3)}`,
  );
} finally {
  // A failed run may have left mounts under base: never remove through one.
  for (const d of mountedOverlays()) if (d.startsWith(`${base}/`)) vrift('unmount', d);
  fs.rmSync(base, { recursive: true, force: true });
}
const stamp = new Date().toISOString().replace(/[:.]/g, '-');
const text = `# FUSE overlay (passthrough) against ext4, ${stamp}\n\nHost: ${os.cpus().length} cores, ${os.loadavg()[0].toFixed(1)} load at the end.\n\n${lines.join('\n')}\n`;
const out = path.join(ROOT, 'bench', 'results', `overlay-${stamp}.md`);
fs.writeFileSync(out, text);
process.stdout.write(`${text}\n(written to ${out})\n`);
