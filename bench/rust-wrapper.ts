// A Rust workspace built through a RUSTC wrapper, vrift vs sccache (and plain for scale):
//   node dist/bench/rust-wrapper.js [--runs 3] [--work-dir DIR]
// test/fixtures/rust-ws (itoa and cfg-if from Debian's crates, two workspace libraries, a
// proc-macro, a build script, a binary), `cargo build -j2` offline with RUSTC=<dir>/rustc, a
// script that execs the rustc REAL_RUSTC names, and RUSTC_WRAPPER=<tool>. Each tool: one
// untimed cold build into an empty cache, then `--runs` warm builds (cargo clean, then the
// timed build), interleaved across tools; every tool builds in the same directory. The
// result (medians and vrift's warm as a fraction of sccache's) goes to
// bench/results/rust-wrapper/<time>.json and latest.md.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadavg, run } from './exec.js';
import { median } from './report.js';
import { snapshotVrift } from './snapshot.js';
import { createTools, type BuildStats, type Tool } from './tools.js';
import { CARGO_REGISTRY, cargoHomeConfig } from './workloads.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const runs = Number(arg('runs', '3'));
const workDir = path.resolve(arg('work-dir', path.join(os.homedir(), '.cache', 'vrift', 'bench-rust-wrapper')));
const FIXTURE = path.join(repoRoot, 'test', 'fixtures', 'rust-ws');

interface Build {
  tool: string;
  kind: 'cold' | 'warm';
  seconds: number;
  stats: BuildStats | null;
}

function prepare(): { env: NodeJS.ProcessEnv; logFile: string } {
  const have = fs.existsSync(CARGO_REGISTRY) ? fs.readdirSync(CARGO_REGISTRY) : [];
  for (const c of ['itoa-', 'cfg-if-'])
    if (!have.some((n) => n.startsWith(c))) throw new Error(`no ${c}* under ${CARGO_REGISTRY}: install librust-itoa-dev and librust-cfg-if-dev`);
  fs.rmSync(workDir, { recursive: true, force: true });
  const cargoHome = path.join(workDir, 'cargo-home');
  fs.mkdirSync(cargoHome, { recursive: true });
  fs.writeFileSync(path.join(cargoHome, 'config.toml'), cargoHomeConfig());
  // Named rustc: sccache takes only a compiler of that name for rustc (wrapper.sh: "Compiler
  // not supported"); vrift takes either.
  const wrapper = path.join(workDir, 'wrapper', 'rustc');
  fs.mkdirSync(path.dirname(wrapper), { recursive: true });
  fs.writeFileSync(wrapper, '#!/bin/sh\nexec "$REAL_RUSTC" "$@"\n', { mode: 0o755 });
  const sysroot = execFileSync('rustc', ['--print', 'sysroot'], { encoding: 'utf8' }).trim();
  const env: NodeJS.ProcessEnv = { ...process.env, LC_ALL: 'C' };
  for (const k of Object.keys(env)) if (/^(CCACHE_|SCCACHE_|VRIFT_|CARGO_)/.test(k) || k === 'RUSTC_WRAPPER') delete env[k];
  Object.assign(env, {
    CARGO_HOME: cargoHome,
    CARGO_INCREMENTAL: '0',
    CARGO_TERM_COLOR: 'never',
    RUSTC: wrapper,
    REAL_RUSTC: path.join(sysroot, 'bin', 'rustc'),
    VRIFT_FIXTURE_GREETING: 'hello',
  });
  const logFile = path.join(workDir, 'build.log');
  fs.writeFileSync(logFile, '');
  return { env, logFile };
}

async function main() {
  const { env, logFile } = prepare();
  const snap = await snapshotVrift(repoRoot, path.join(workDir, 'vrift-snapshot'));
  const tools = (
    await createTools(['plain', 'sccache', 'vrift'], {
      cacheRoot: path.join(workDir, 'caches'),
      repoRoot,
      vriftRoot: snap.root,
      vriftEnv: snap.env,
      baseEnv: env,
    })
  ).filter((t) => {
    if (t.unavailable) process.stderr.write(`skipping ${t.name}: ${t.unavailable}\n`);
    return !t.unavailable;
  });
  const slot = path.join(workDir, 'slot');
  const parked = (t: Tool) => path.join(workDir, 'parked', t.name);
  for (const t of tools) fs.cpSync(FIXTURE, parked(t), { recursive: true, filter: (src) => !src.includes(`${path.sep}target`) });
  const toolEnv = (t: Tool): NodeJS.ProcessEnv => (t.launcher.length ? { ...t.env, RUSTC_WRAPPER: t.launcher[0] } : t.env);
  const cargo = (t: Tool, args: string[]) => run(['cargo', ...args], { cwd: slot, env: toolEnv(t), logFile });
  const builds: Build[] = [];
  const build = async (t: Tool, kind: Build['kind']) => {
    fs.renameSync(parked(t), slot);
    try {
      if (kind === 'cold') await t.reset();
      else await cargo(t, ['clean']);
      await t.beginBuild();
      const r = await cargo(t, ['build', '-j2', '--offline']);
      const app = execFileSync(path.join(slot, 'target', 'debug', 'wsapp'), { encoding: 'utf8' }).trim();
      if (app !== 'quiet:126 note=unset greeting=hello') throw new Error(`${t.name}: the binary printed ${app}`);
      const b: Build = { tool: t.name, kind, seconds: r.seconds, stats: await t.stats() };
      builds.push(b);
      console.log(
        `${t.name} ${kind}: ${b.seconds.toFixed(2)} s  hits ${b.stats?.hits ?? '-'} misses ${b.stats?.misses ?? '-'} uncacheable ${b.stats?.uncacheable ?? '-'}  (load ${loadavg()})`,
      );
    } finally {
      fs.renameSync(slot, parked(t));
    }
  };
  const loadBefore = loadavg();
  try {
    for (const t of tools) await build(t, 'cold');
    for (let i = 0; i < runs; i++) for (const t of tools) await build(t, 'warm');
  } finally {
    for (const t of tools) await t.close();
  }
  const warm = Object.fromEntries(tools.map((t) => [t.name, median(builds.filter((b) => b.tool === t.name && b.kind === 'warm').map((b) => b.seconds))]));
  const ratio = warm.vrift / warm.sccache;
  const id = new Date().toISOString().replace(/[:.]/g, '-');
  const result = {
    id,
    cpus: os.cpus().length,
    node: process.version,
    runs,
    loadBefore,
    loadAfter: loadavg(),
    workload: 'test/fixtures/rust-ws, cargo build -j2 (dev profile), RUSTC=<dir>/rustc (a script execing $REAL_RUSTC), RUSTC_WRAPPER=<tool>',
    builds,
    warmMedianSeconds: warm,
    vriftWarmOverSccacheWarm: ratio,
  };
  const dir = path.join(repoRoot, 'bench', 'results', 'rust-wrapper');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, `${id}.json`), JSON.stringify(result, null, 2) + '\n');
  const rows = tools.map((t) => {
    const w = builds.filter((b) => b.tool === t.name && b.kind === 'warm');
    const c = builds.find((b) => b.tool === t.name && b.kind === 'cold');
    const last = w[w.length - 1]?.stats;
    return `| ${t.name} | ${c?.seconds.toFixed(2)} | ${w.map((b) => b.seconds.toFixed(2)).join(', ')} | ${warm[t.name].toFixed(2)} | ${last ? `${last.hits}/${last.misses}/${last.uncacheable}` : '-'} |`;
  });
  const md = [
    `# RUSTC wrapper workspace: vrift vs sccache (${id})`,
    '',
    `${result.workload}; ${os.cpus().length} CPUs; load average before ${loadBefore}, after ${result.loadAfter}.`,
    '',
    '| tool | cold s | warm s (each run) | warm median s | last warm hits/misses/uncacheable |',
    '|---|---|---|---|---|',
    ...rows,
    '',
    `vrift warm / sccache warm: **${ratio.toFixed(2)}×** (target ≤ 0.8×).`,
    '',
  ].join('\n');
  fs.writeFileSync(path.join(dir, 'latest.md'), md);
  console.log(md);
}

await main();
