// `vrift run` (exec interceptor) against the CMake launcher on a warm libuv build:
//
//   node dist/bench/intercept.js [--runs 3] [--jobs 2] [--work-dir DIR]
//
// One libuv tree, two build directories configured the same way except for the launcher:
// `plain` (cmake as a user runs it, no vrift anywhere: /usr/bin/cc in CMakeCache.txt) and
// `launcher` (CMAKE_<LANG>_COMPILER_LAUNCHER and _LINKER_LAUNCHER = vrift-shim). One
// VRIFT_HOME and daemon for both. Each is built cold and warm untimed; then each round
// times, after an untimed `make clean`:
//   launcher    make -jN in `launcher`                     (the reference)
//   run         vrift run -- make -jN in `plain`           (what the target is about)
//   run+launch  vrift run -- make -jN in `launcher`        (vrift run's own start and summary)
// The order rotates per round. Results go to bench/results/intercept-<time>.{json,md}.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { timedSync } from './exec.js';
import { median } from './report.js';
import { copyTree, ensureSources } from './sources.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = path.join(ROOT, 'dist', 'shim', 'cli.js');
const SHIM = path.join(ROOT, 'native', 'build', 'vrift-shim');

const { values: o } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    jobs: { type: 'string', default: '2' },
    'work-dir': { type: 'string', default: path.join(os.homedir(), '.cache', 'vrift', 'bench-intercept') },
  },
});
const runs = Number(o.runs);
const jobs = `-j${Number(o.jobs)}`;
const work = path.resolve(o['work-dir']!);
const log = path.join(work, 'build.log');

const sh = (argv: string[], cwd: string, env: NodeJS.ProcessEnv) => timedSync(log, argv, cwd, env);

function vriftStats(env: NodeJS.ProcessEnv): { hits: number; misses: number } {
  const r = spawnSync(process.execPath, [CLI, 'stats', '--json'], { env, encoding: 'utf8' });
  const s = JSON.parse(r.stdout) as { hits: number; misses: number };
  return { hits: s.hits, misses: s.misses };
}

fs.rmSync(work, { recursive: true, force: true });
fs.mkdirSync(work, { recursive: true });
const src = copyTree('libuv', path.join(work, 'libuv'), ensureSources({ quiet: true }));
const env: NodeJS.ProcessEnv = { ...process.env, VRIFT_HOME: path.join(work, 'home'), LC_ALL: 'C' };
for (const k of Object.keys(env)) if (k.startsWith('VRIFT_') && k !== 'VRIFT_HOME') delete env[k];
const dirs = { plain: path.join(work, 'plain'), launcher: path.join(work, 'launcher') };
const common = ['-DCMAKE_BUILD_TYPE=RelWithDebInfo', '-DLIBUV_BUILD_TESTS=ON'];
sh(['cmake', '-S', src, '-B', dirs.plain, ...common], work, env);
sh(
  [
    'cmake',
    '-S',
    src,
    '-B',
    dirs.launcher,
    ...common,
    ...['C', 'CXX'].flatMap((l) => [`-DCMAKE_${l}_COMPILER_LAUNCHER=${SHIM}`, `-DCMAKE_${l}_LINKER_LAUNCHER=${SHIM}`]),
  ],
  work,
  env,
);

const variants: Record<string, { dir: string; argv: string[] }> = {
  launcher: { dir: dirs.launcher, argv: ['make', jobs] },
  run: { dir: dirs.plain, argv: [process.execPath, CLI, 'run', '--', 'make', jobs] },
  'run+launch': { dir: dirs.launcher, argv: [process.execPath, CLI, 'run', '--', 'make', jobs] },
};
const names = Object.keys(variants);
process.stderr.write('bench: cold and warm-up builds (untimed)\n');
for (const n of ['launcher', 'run']) {
  const v = variants[n];
  sh(v.argv, v.dir, env);
  sh(['make', 'clean'], v.dir, env);
  sh(v.argv, v.dir, env);
}

interface Sample {
  variant: string;
  round: number;
  secs: number;
  hits: number;
  misses: number;
  load1: number;
}
const samples: Sample[] = [];
for (let round = 0; round < runs; round++) {
  for (let i = 0; i < names.length; i++) {
    const n = names[(i + round) % names.length];
    const v = variants[n];
    sh(['make', 'clean'], v.dir, env);
    const before = vriftStats(env);
    const load1 = os.loadavg()[0];
    const r = sh(v.argv, v.dir, env);
    const after = vriftStats(env);
    samples.push({ variant: n, round, secs: r.secs, hits: after.hits - before.hits, misses: after.misses - before.misses, load1 });
    process.stderr.write(
      `bench: round ${round + 1} ${n}: ${r.secs.toFixed(2)} s, ${after.hits - before.hits} hits, ${after.misses - before.misses} misses, load ${load1.toFixed(1)}\n`,
    );
  }
}
spawnSync(process.execPath, [CLI, 'daemon', 'stop'], { env });

const med = Object.fromEntries(names.map((n) => [n, median(samples.filter((s) => s.variant === n).map((s) => s.secs))]));
const perRound = Array.from({ length: runs }, (_, r) => {
  const at = (n: string) => samples.find((s) => s.round === r && s.variant === n)!.secs;
  return at('run') / at('launcher');
});
const stamp = new Date().toISOString().replace(/[:.]/g, '-');
const git = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).stdout.trim();
const loads = samples.map((s) => s.load1);
const md = [
  `# vrift run (exec interceptor) vs CMake launcher, warm libuv ${stamp}`,
  '',
  `\`node dist/bench/intercept.js --runs ${runs} --jobs ${o.jobs}\` — vrift ${git}, ${os.cpus().length} × ${os.cpus()[0]?.model ?? '?'}, node ${process.version}; load1 during the timed builds ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)} (the machine is shared with other work: expect noise)`,
  '',
  '| variant | what | median s | runs (s) | hits/misses, last |',
  '|---|---|---:|---|---|',
  ...names.map((n) => {
    const xs = samples.filter((s) => s.variant === n);
    const what =
      n === 'launcher'
        ? 'make in the launcher-configured tree'
        : n === 'run'
          ? '`vrift run -- make` in a plainly configured tree'
          : '`vrift run -- make` in the launcher tree';
    return `| ${n} | ${what} | ${med[n].toFixed(2)} | ${xs.map((s) => s.secs.toFixed(2)).join(', ')} | ${xs[xs.length - 1].hits}/${xs[xs.length - 1].misses} |`;
  }),
  '',
  `run / launcher: median ${(med.run / med.launcher).toFixed(3)}×, per round ${perRound.map((x) => x.toFixed(3) + '×').join(', ')} (target ≤ 1.02×); ` +
    `run / run+launch (the interceptor alone, vrift run's start in both): ${(med.run / med['run+launch']).toFixed(3)}×`,
  '',
].join('\n');
const out = path.join(ROOT, 'bench', 'results', `intercept-${stamp}`);
fs.writeFileSync(`${out}.json`, JSON.stringify({ stamp, git, runs, jobs: o.jobs, samples, median: med }, null, 2) + '\n');
fs.writeFileSync(`${out}.md`, md);
process.stdout.write(md);
