import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import cliProgress from 'cli-progress';
import { compare, hashArtifacts, nondeterministic, type ArtifactMap } from './artifacts.js';
import { capture, loadavg, machineCpu, processCpu, run } from './exec.js';
import { compileCommandFor, hyperfine } from './micro.js';
import { entriesScenario } from './entries.js';
import { REMOTE_PARTS, runRemoteScenarios, type RemotePart } from './remote-scenarios.js';
import { renderMarkdown, type BuildRecord, type Phase, type Results } from './report.js';
import { snapshotVrift, type Snapshot } from './snapshot.js';
import { copyTree, ensureSources, readManifest, repoRoot } from './sources.js';
import { createTools, TOOL_NAMES, vriftPaths, type Tool, type ToolName } from './tools.js';
import { ctxAt, supports, WORKLOADS, workloadByName, workloadEnv, type Workload } from './workloads.js';

// npm run bench [-- --quick | --workloads libuv,redis --tools plain,ccache --runs 3]
//
// Every tool builds its own copy of a workload, but always at the same absolute path
// (the "slot"): the copies are renamed in and out of it. Paths end up in objects
// (-g, __FILE__), so this is what lets a warm build be compared byte for byte with
// plain's, and it keeps the caches' path sensitivity out of the numbers.

interface Options {
  quick: boolean;
  workloads: string[];
  tools: ToolName[];
  runs: number;
  coldRuns: number;
  jobs: number;
  micro: boolean;
  microRuns: number;
  workDir: string;
  out: string;
  remote: boolean;
  remoteOnly: boolean;
  remoteParts: RemotePart[];
  entries: number;
}

const list = (v: string) =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
const posInt = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('a positive integer');
  return n;
};

function parseOptions(argv: string[]): Options {
  const p = new Command('bench')
    .description('vrift vs plain gcc, ccache and sccache on real projects: cold and warm clean builds, hit latency')
    .option('--quick', 'libuv only, 1 cold + 1 warm run per tool')
    .option('--workloads <list>', `comma-separated: ${WORKLOADS.map((w) => w.name).join(',')}`, list)
    .option('--tools <list>', `comma-separated: ${TOOL_NAMES.join(',')}`, list)
    .option('--runs <n>', 'cold and warm runs per tool (default 3, --quick 1)', posInt)
    .option('--cold-runs <n>', 'cold runs per tool (default: --runs)', posInt)
    .option('-j, --jobs <n>', 'parallel compile jobs', posInt, 2)
    .option('--no-micro', 'skip the single-translation-unit latency measurements')
    .option('--micro-runs <n>', 'repetitions of one cache hit', posInt, 200)
    .option('--entries <n>', 'daemon memory and lookup time with this many cached compiles (default 10000, --quick 0; 0 = skip)', (v) =>
      v === '0' ? 0 : posInt(v),
    )
    .option(
      '--remote',
      'also the team-cache scenarios: fresh machine from a populated vrift serve, unreachable server, serve throughput and memory (needs plain and vrift)',
    )
    .option('--remote-scenarios <list>', `with --remote, only these parts: ${REMOTE_PARTS.join(',')}`, list)
    .option('--remote-only', 'with --remote: configure the trees, then only the team-cache scenarios (no cold/warm runs per tool, no micro)')
    .option('--work-dir <dir>', 'trees, caches and logs', process.env.VRIFT_BENCH_DIR || path.join(os.homedir(), '.cache', 'vrift', 'bench'))
    .option('--out <dir>', 'results directory', path.join(repoRoot, 'bench', 'results'))
    .parse(argv, { from: 'node' });
  const o = p.opts();
  const workloads: string[] = o.workloads ?? (o.quick ? ['libuv'] : WORKLOADS.filter((w) => !w.extra).map((w) => w.name));
  workloads.forEach(workloadByName);
  const tools = (o.tools ?? [...TOOL_NAMES]) as ToolName[];
  if (o.remote) for (const need of ['plain', 'vrift'] as const) if (!tools.includes(need)) tools.push(need);
  for (const t of tools) if (!TOOL_NAMES.includes(t)) throw new InvalidArgumentError(`unknown tool ${t}`);
  // plain first: it is the reference for the artifact check and the ratios.
  tools.sort((a, b) => TOOL_NAMES.indexOf(a) - TOOL_NAMES.indexOf(b));
  const runs: number = o.runs ?? (o.quick ? 1 : 3);
  const remoteParts = (o.remoteScenarios ?? [...REMOTE_PARTS]) as RemotePart[];
  for (const x of remoteParts) if (!REMOTE_PARTS.includes(x)) throw new InvalidArgumentError(`unknown remote scenario ${x}`);
  return {
    quick: !!o.quick,
    workloads,
    tools,
    runs,
    coldRuns: o.coldRuns ?? runs,
    jobs: o.jobs,
    micro: o.micro,
    microRuns: o.microRuns,
    workDir: path.resolve(o.workDir),
    out: path.resolve(o.out),
    remote: !!o.remote,
    remoteOnly: !!o.remote && !!o.remoteOnly,
    remoteParts,
    entries: o.entries ?? (o.quick ? 0 : 10_000),
  };
}

function versionOf(argv: string[]): string {
  const r = capture(argv, { env: process.env });
  return r.ok ? (r.stdout.split('\n')[0] || r.stderr.split('\n')[0]).trim() : 'n/a';
}

function hostInfo(): Record<string, unknown> {
  return {
    hostname: os.hostname(),
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: `${os.type()} ${os.release()}`,
    node: process.versions.node,
  };
}

function gitRev(): string {
  try {
    return execFileSync('git', ['-C', repoRoot, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {
    return 'n/a';
  }
}

function gitDirty(): boolean {
  try {
    return execFileSync('git', ['-C', repoRoot, 'status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8' }).trim() !== '';
  } catch {
    return false;
  }
}

interface Progress {
  step(label: string): void;
  log(line: string): void;
  stop(): void;
}

function progress(total: number): Progress {
  if (!process.stderr.isTTY) {
    let n = 0;
    return {
      step: (label) => process.stderr.write(`[${++n}/${total}] ${label}\n`),
      log: (line) => process.stderr.write(`  ${line}\n`),
      stop: () => {},
    };
  }
  const multi = new cliProgress.MultiBar(
    { format: ' {bar} {value}/{total} | {eta_formatted} left | {label}', hideCursor: true, clearOnComplete: false, stream: process.stderr },
    cliProgress.Presets.shades_classic,
  );
  const bar = multi.create(total, 0, { label: 'starting' });
  let started = false;
  return {
    step: (label) => {
      if (started) bar.increment(1, { label });
      else bar.update(0, { label });
      started = true;
    },
    log: (line) => multi.log(`${line}\n`),
    stop: () => {
      bar.update(total, { label: 'done' });
      multi.stop();
    },
  };
}

class Slot {
  readonly slot: string;
  constructor(readonly base: string) {
    this.slot = path.join(base, 'slot');
  }
  parked(tool: string) {
    return path.join(this.base, 'parked', tool);
  }
  async with<T>(tool: string, f: () => Promise<T>): Promise<T> {
    fs.renameSync(this.parked(tool), this.slot);
    try {
      return await f();
    } finally {
      fs.renameSync(this.slot, this.parked(tool));
    }
  }
}

async function main() {
  const opts = parseOptions(process.argv);
  const id = new Date().toISOString().replace(/[:.]/g, '-');
  const logDir = path.join(opts.workDir, 'logs');
  fs.mkdirSync(logDir, { recursive: true });
  const logFile = path.join(logDir, `${id}.log`);
  fs.writeFileSync(logFile, '');

  ensureSources();
  const manifest = readManifest();
  const cacheRoot = path.join(opts.workDir, 'caches');
  fs.rmSync(cacheRoot, { recursive: true, force: true });
  let snap: Snapshot | undefined;
  const live = vriftPaths(repoRoot);
  if (opts.tools.includes('vrift') && fs.existsSync(live.shim) && fs.existsSync(live.daemon)) {
    snap = await snapshotVrift(repoRoot, path.join(opts.workDir, 'vrift-snapshot'));
  }
  // Where vrift runs from for this invocation: the snapshot, or the repo if there is none.
  const vriftRoot = snap?.root ?? repoRoot;
  const toolOptions = { cacheRoot, repoRoot, vriftRoot, vriftEnv: snap?.env, baseEnv: baseEnv() };
  const allTools = await createTools(opts.tools, toolOptions);
  const tools = allTools.filter((t) => !t.unavailable);
  for (const t of allTools) if (t.unavailable) process.stderr.write(`bench: skipping ${t.name}: ${t.unavailable}\n`);

  const vp = vriftPaths(vriftRoot);
  const results: Results = {
    id,
    startedAt: new Date().toISOString(),
    command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(),
    host: hostInfo(),
    versions: {
      vrift: `${gitRev()}${gitDirty() ? '+dirty' : ''}${snap ? ` shim sha256 ${snap.shimSha256.slice(0, 12)}` : ''}`,
      gcc: versionOf(['gcc', '-dumpfullversion']),
      ccache: versionOf(['ccache', '--version']).replace(/^ccache version /, ''),
      sccache: versionOf(['sccache', '--version']).replace(/^sccache /, ''),
      cmake: versionOf(['cmake', '--version']).replace(/^cmake version /, ''),
      hyperfine: versionOf(['hyperfine', '--version']).replace(/^hyperfine /, ''),
    },
    options: { ...opts },
    sources: manifest.sources
      .filter((s) => opts.workloads.some((n) => (workloadByName(n).source ?? n) === s.name))
      .map(({ name, source, version }) => ({ name, source, version })),
    tools: allTools.map((t) => ({ name: t.name, unavailable: t.unavailable })),
    builds: [],
    micro: [],
    daemon: {},
    errors: [],
  };
  if (opts.remote) results.remote = { builds: [], errors: [] };

  const microSteps = (w: Workload) => (opts.micro && w.micro && !opts.remoteOnly ? 3 + 2 * tools.length : 0);
  const has = (x: RemotePart) => opts.remoteParts.includes(x);
  const remoteSteps = (w: Workload) =>
    opts.remote && w.language !== 'rust'
      ? (has('fresh') ? 1 + 2 * opts.runs : 0) +
        (has('unreachable') ? opts.runs : 0) +
        (has('fresh') || has('unreachable') ? opts.runs : 0) +
        (has('upload') ? 2 * opts.runs : 0) +
        (has('bigblob') ? 1 : 0) +
        (has('throughput') ? 1 : 0)
      : 0;
  const total =
    opts.workloads.reduce((a, n) => {
      const w = workloadByName(n);
      return a + tools.filter((t) => supports(w, t.name)).length * (1 + (opts.remoteOnly ? 0 : opts.coldRuns + opts.runs)) + microSteps(w) + remoteSteps(w);
    }, 0) + (opts.entries > 0 && tools.some((t) => t.name === 'vrift') ? 1 : 0);
  const bar = progress(total);

  const stopAll = async () => {
    for (const t of tools) await t.close().catch(() => {});
  };
  process.once('SIGINT', () => {
    bar.stop();
    process.stderr.write('\nbench: interrupted, stopping cache servers\n');
    void stopAll().finally(() => process.exit(130));
  });

  try {
    for (const wname of opts.workloads) {
      const w = workloadByName(wname);
      try {
        await runWorkload(w, tools, opts, results, bar, logFile, vriftRoot);
        if (opts.remote && w.language !== 'rust') {
          const slot = new Slot(path.join(opts.workDir, w.name));
          await runRemoteScenarios(
            {
              workload: w,
              slot: slot.slot,
              jobs: opts.jobs,
              runs: opts.runs,
              toolOptions,
              workDir: opts.workDir,
              logFile,
              withTree: (tool, f) => slot.with(tool, f),
              log: (l) => bar.log(l),
              step: (l) => bar.step(l),
              parts: opts.remoteParts,
            },
            results.remote!,
          );
        }
      } catch (e) {
        const msg = `${w.name}: ${(e as Error).message}`;
        results.errors.push(msg);
        bar.log(`ERROR ${msg.split('\n')[0]} (log: ${logFile})`);
      }
    }
    if (opts.entries > 0 && tools.some((t) => t.name === 'vrift')) {
      bar.step(`vrift daemon with ${opts.entries} cached compiles`);
      const e = await entriesScenario({ units: opts.entries, jobs: opts.jobs, toolOptions, workDir: opts.workDir, logFile });
      results.entries = e;
      const d = e.daemon;
      bar.log(
        `entries: ${e.units} units, cold ${e.coldSeconds.toFixed(1)} s, warm ${e.warmSeconds.toFixed(1)} s, hits ${e.hits}, ` +
          `VmRSS ${d?.rssKiB !== undefined ? (d.rssKiB / 1024).toFixed(1) : 'n/a'} MiB, hit p99 ${d?.latency?.['hit.p99_ms'] ?? 'n/a'} ms${e.error ? `, error: ${e.error}` : ''}`,
      );
      if (e.error) results.errors.push(`entries: ${e.error}`);
    }
  } finally {
    await stopAll();
    bar.stop();
  }

  results.finishedAt = new Date().toISOString();
  fs.mkdirSync(opts.out, { recursive: true });
  const jsonFile = path.join(opts.out, `${id}.json`);
  fs.writeFileSync(jsonFile, JSON.stringify(results, null, 2) + '\n');
  const md = renderMarkdown(results);
  fs.writeFileSync(path.join(opts.out, 'latest.md'), md + '\n');
  process.stdout.write(
    `${md}\nresults: ${path.relative(process.cwd(), jsonFile)}, ${path.relative(process.cwd(), path.join(opts.out, 'latest.md'))}; build log: ${logFile}\n`,
  );
  if (!fs.existsSync(vp.shim)) process.stdout.write('note: native/build/vrift-shim not built, vrift column empty\n');
  if (results.errors.length) process.exitCode = 1;
}

async function runWorkload(w: Workload, allTools: Tool[], opts: Options, results: Results, bar: Progress, logFile: string, vriftRoot: string) {
  const tools = allTools.filter((t) => supports(w, t.name));
  for (const t of allTools) if (!supports(w, t.name)) bar.log(`${w.name}: ${t.name} cannot build it (${w.language}), skipped`);
  const base = path.join(opts.workDir, w.name);
  fs.rmSync(base, { recursive: true, force: true });
  const slot = new Slot(base);
  fs.mkdirSync(path.dirname(slot.parked('x')), { recursive: true });

  for (const t of tools) {
    bar.step(`${w.name}: copy + configure for ${t.name}`);
    copyTree(w.source ?? w.name, path.join(slot.slot, 'src'));
    const ctx = ctxAt(slot.slot, t.launcher, opts.jobs, t.linksToo ? t.launcher : []);
    fs.mkdirSync(ctx.buildDir, { recursive: true });
    for (const c of w.configure(ctx)) await run(c.argv, { cwd: c.cwd, env: workloadEnv(w, ctx, t.env), logFile });
    fs.renameSync(slot.slot, slot.parked(t.name));
  }
  if (opts.remoteOnly) return;

  const maps = new Map<BuildRecord, ArtifactMap>();
  const oneBuild = async (t: Tool, phase: Phase, runNo: number) => {
    const ctx = ctxAt(slot.slot, t.launcher, opts.jobs, t.linksToo ? t.launcher : []);
    bar.step(`${w.name}: ${t.name} ${phase} #${runNo + 1}`);
    // A tool that breaks a build loses its row, not the whole benchmark.
    await slot.with(t.name, async () => {
      if (phase === 'cold') await t.reset();
      const clean = w.clean(ctx);
      const env = workloadEnv(w, ctx, t.env);
      await run(clean.argv, { cwd: clean.cwd, env, logFile });
      await t.beginBuild();
      const loadBefore = loadavg();
      const b = w.build(ctx);
      const spid = await t.serverPid?.();
      const cpu0 = machineCpu();
      const server0 = processCpu(spid);
      let res: Awaited<ReturnType<typeof run>>;
      try {
        res = await run(b.argv, { cwd: b.cwd, env, logFile });
      } catch (e) {
        const msg = `${w.name} ${t.name} ${phase} #${runNo + 1} failed: ${(e as Error).message}`;
        results.errors.push(msg);
        bar.log(`ERROR ${msg.split('\n')[0]} (log: ${logFile})`);
        return;
      }
      const cpu1 = machineCpu();
      const server1 = processCpu(spid);
      const cpu =
        cpu0 && cpu1
          ? {
              busy: round2(cpu1.busy - cpu0.busy),
              idle: round2(cpu1.idle - cpu0.idle),
              ...(server0 !== undefined && server1 !== undefined ? { server: round2(server1 - server0) } : {}),
            }
          : undefined;
      const rec: BuildRecord = {
        workload: w.name,
        tool: t.name,
        phase,
        run: runNo,
        seconds: res.seconds,
        loadBefore,
        loadAfter: loadavg(),
        cpu,
        stats: await t.stats(),
      };
      maps.set(rec, hashArtifacts(w.artifactRoot(ctx), w.artifacts, w.artifactName));
      results.builds.push(rec);
      const s = rec.stats;
      bar.log(
        `${w.name} ${t.name.padEnd(7)} ${phase} #${runNo + 1}: ${rec.seconds.toFixed(2)} s` +
          (s ? `  hits ${s.hits ?? '?'} misses ${s.misses ?? '?'} uncacheable ${s.uncacheable ?? '?'}` : '') +
          `  load ${loadBefore.split(' ').slice(0, 3).join(' ')}` +
          (cpu ? `  cpu busy ${cpu.busy.toFixed(1)} idle ${cpu.idle.toFixed(1)}${cpu.server !== undefined ? ` daemon ${cpu.server.toFixed(2)}` : ''} s` : ''),
      );
    });
  };

  // Interleaved: A B C D A B C D, so drift in machine load hits every tool alike.
  for (let r = 0; r < opts.coldRuns; r++) for (const t of tools) await oneBuild(t, 'cold', r);
  for (let r = 0; r < opts.runs; r++) for (const t of tools) await oneBuild(t, 'warm', r);

  const vr = tools.find((t) => t.name === 'vrift');
  if (vr?.daemon) results.daemon[w.name] = await vr.daemon();

  checkArtifacts(w, maps, bar);
  if (opts.micro && w.micro) await runMicro(w, tools, slot, opts, results, bar, vriftRoot);
}

function checkArtifacts(w: Workload, maps: Map<BuildRecord, ArtifactMap>, bar: Progress) {
  const plainBuilds = [...maps.entries()].filter(([r]) => r.tool === 'plain').map(([, m]) => m);
  if (plainBuilds.length === 0) return;
  const nondet = nondeterministic(plainBuilds);
  for (const [rec, m] of maps) {
    if (rec.tool === 'plain') continue;
    const c = compare(plainBuilds[0], m, nondet);
    rec.artifacts = {
      compared: c.compared,
      identical: c.identical,
      ok: c.ok,
      differ: c.differ.length,
      missing: c.missing.length,
      extra: c.extra.length,
      nondeterministic: c.nondeterministic.length,
      examples: [...c.differ, ...c.missing.map((x) => `missing ${x}`), ...c.extra.map((x) => `extra ${x}`)].slice(0, 20),
    };
    if (!c.ok) bar.log(`MISMATCH ${w.name} ${rec.tool} ${rec.phase} #${rec.run + 1}: ${rec.artifacts.examples.slice(0, 5).join(', ')}`);
  }
}

async function runMicro(w: Workload, tools: Tool[], slot: Slot, opts: Options, results: Results, bar: Progress, vriftRoot: string) {
  const { file, target } = w.micro!;
  const vp = vriftPaths(vriftRoot);
  const push = (m: ReturnType<typeof hyperfine>) => {
    results.micro.push({ ...m, workload: w.name });
    bar.log(`micro ${m.name}: median ${m.median_ms.toFixed(2)} ms, p99 ${m.p99_ms.toFixed(2)} ms (${m.runs} runs)${m.error ? ` error: ${m.error}` : ''}`);
  };
  const plain = tools.find((t) => t.name === 'plain');
  const reference = plain ?? tools[0];
  const cmd = await slot.with(reference.name, async () => compileCommandFor(ctxAt(slot.slot, [], opts.jobs).buildDir, file, target));

  bar.step('micro: floor');
  push(hyperfine('floor: /bin/true', 'floor', ['/bin/true'], { cwd: '/', env: process.env, runs: 300 }));
  bar.step('micro: node -e 0');
  push(hyperfine('floor: node -e 0', 'floor', [process.execPath, '-e', '0'], { cwd: '/', env: process.env, runs: 30 }));
  bar.step('micro: vrift-shim --version');
  if (fs.existsSync(vp.shim)) push(hyperfine('floor: vrift-shim --version', 'vrift', [vp.shim, '--version'], { cwd: '/', env: process.env, runs: 300 }));

  for (const t of tools) {
    bar.step(`micro: ${t.name} ${file}`);
    await slot.with(t.name, async () => {
      if (t.name === 'plain') {
        push(hyperfine(`gcc compile ${file}`, 'plain', cmd.argv, { cwd: cmd.directory, env: t.env, runs: 10, warmup: 1 }));
        return;
      }
      await t.beginBuild();
      push(hyperfine(`${t.name} hit ${file}`, t.name, [...t.launcher, ...cmd.argv], { cwd: cmd.directory, env: t.env, runs: opts.microRuns }));
      const s = await t.stats();
      if (s) bar.log(`micro ${t.name} stats: hits ${s.hits ?? '?'} misses ${s.misses ?? '?'}`);
    });
    bar.step(`micro: ${t.name} extra`);
    if (t.name === 'vrift' && fs.existsSync(vp.tsShim)) {
      await slot.with(t.name, async () => {
        push(hyperfine(`vrift TS shim hit ${file}`, 'vrift-ts', [process.execPath, vp.tsShim, ...cmd.argv], { cwd: cmd.directory, env: t.env, runs: 100 }));
      });
    }
  }
}

main().catch((e) => {
  process.stderr.write(`bench: ${(e as Error).stack ?? e}\n`);
  process.exit(1);
});

function baseEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, LC_ALL: 'C' };
  // A caller's cache settings must not leak into "plain" or into another tool.
  for (const k of Object.keys(env)) if (/^(CCACHE_|SCCACHE_|VRIFT_)/.test(k) || k === 'RUSTC_WRAPPER') delete env[k];
  return env;
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}
