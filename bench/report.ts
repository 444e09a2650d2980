import type { Comparison } from './artifacts.js';
import type { MicroResult } from './micro.js';
import type { RemoteResults } from './remote-scenarios.js';
import type { EntriesResult } from './entries.js';
import type { BuildStats, DaemonInfo } from './tools.js';

// The results document (written as JSON) and its markdown rendering.

export type Phase = 'cold' | 'warm';

export interface BuildRecord {
  workload: string;
  tool: string;
  phase: Phase;
  run: number;
  seconds: number;
  loadBefore: string;
  loadAfter: string;
  /** Core-seconds the machine was busy and idle during the build (busy + idle = cores × seconds), and the tool's own server's CPU seconds (vrift's daemon). */
  cpu?: { busy: number; idle: number; server?: number };
  stats: BuildStats | null;
  artifacts?: Omit<Comparison, 'differ' | 'missing' | 'extra' | 'nondeterministic'> & {
    differ: number;
    missing: number;
    extra: number;
    nondeterministic: number;
    examples: string[];
  };
}

export interface Results {
  id: string;
  startedAt: string;
  finishedAt?: string;
  command: string;
  host: Record<string, unknown>;
  versions: Record<string, string>;
  options: Record<string, unknown>;
  sources: { name: string; source: string; version: string }[];
  tools: { name: string; unavailable?: string }[];
  builds: BuildRecord[];
  micro: (MicroResult & { workload: string })[];
  daemon: Record<string, DaemonInfo | null>;
  remote?: RemoteResults;
  entries?: EntriesResult;
  errors: string[];
}

export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : 'n/a');
const ratio = (a: number, b: number) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}×` : 'n/a');
const load1 = (l: string) => Number(l.split(' ')[0]);

function statsCell(s: BuildStats | null | undefined): string {
  if (!s) return 'n/a';
  const v = (x: number | null) => (x === null ? '?' : String(x));
  return `${v(s.hits)}/${v(s.misses)}/${v(s.uncacheable)}`;
}

export function renderMarkdown(r: Results): string {
  const toolNames = r.tools.map((t) => t.name);
  const workloads = [...new Set(r.builds.map((b) => b.workload))];
  const times = (w: string, t: string, p: Phase) => r.builds.filter((b) => b.workload === w && b.tool === t && b.phase === p).map((b) => b.seconds);
  const med = (w: string, t: string, p: Phase) => median(times(w, t, p));
  const L: string[] = [];

  L.push(`# vrift benchmark ${r.id}`, '');
  L.push(`\`${r.command}\` — ${r.host.cpus} × ${r.host.cpuModel}, ${r.host.memGiB} GiB, ${r.host.kernel}; node ${r.host.node}`);
  L.push(
    `versions: ${Object.entries(r.versions)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
  );
  L.push(`sources: ${r.sources.map((s) => `${s.source} ${s.version}`).join(', ')}`);
  const skipped = r.tools.filter((t) => t.unavailable);
  if (skipped.length) L.push(`not measured: ${skipped.map((t) => `${t.name} (${t.unavailable})`).join(', ')}`);
  L.push('');

  L.push(`## Clean builds, median seconds (-j${r.options.jobs}; cold = empty cache, warm = full cache)`, '');
  L.push(`| workload | phase | ${toolNames.join(' | ')} | vrift/ccache | vrift/sccache | vrift/plain | runs | load1 min–max |`);
  L.push(`|---|---|${toolNames.map(() => '---:').join('|')}|---:|---:|---:|---:|---|`);
  for (const w of workloads) {
    for (const p of ['cold', 'warm'] as const) {
      const cells = toolNames.map((t) => f2(med(w, t, p)));
      const v = med(w, 'vrift', p);
      const loads = r.builds.filter((b) => b.workload === w && b.phase === p).map((b) => load1(b.loadBefore));
      const n = Math.max(0, ...toolNames.map((t) => times(w, t, p).length));
      L.push(
        `| ${w} | ${p} | ${cells.join(' | ')} | ${ratio(v, med(w, 'ccache', p))} | ${ratio(v, med(w, 'sccache', p))} | ${ratio(v, med(w, 'plain', p))} | ${n} | ${f2(Math.min(...loads))}–${f2(Math.max(...loads))} |`,
      );
    }
  }
  L.push('');

  const cached = toolNames.filter((t) => t !== 'plain');
  if (cached.length) {
    L.push("## Hits / misses / uncacheable, last run of each phase (from each tool's own stats)", '');
    L.push(`| workload | phase | ${cached.join(' | ')} |`);
    L.push(`|---|---|${cached.map(() => '---').join('|')}|`);
    for (const w of workloads) {
      for (const p of ['cold', 'warm'] as const) {
        const cells = cached.map((t) => {
          const bs = r.builds.filter((b) => b.workload === w && b.tool === t && b.phase === p);
          return bs.length ? statsCell(bs[bs.length - 1].stats) : 'n/a';
        });
        L.push(`| ${w} | ${p} | ${cells.join(' | ')} |`);
      }
    }
    L.push('');
  }

  L.push('## Objects byte-identical to the plain build', '');
  L.push('| workload | tool | builds | objects compared | identical | differ | missing/extra | nondeterministic in plain |');
  L.push('|---|---|---:|---:|---:|---:|---:|---:|');
  for (const w of workloads) {
    for (const t of cached) {
      const bs = r.builds.filter((b) => b.workload === w && b.tool === t && b.artifacts);
      if (!bs.length) continue;
      const worst = bs.reduce((a, b) =>
        b.artifacts!.differ + b.artifacts!.missing + b.artifacts!.extra > a.artifacts!.differ + a.artifacts!.missing + a.artifacts!.extra ? b : a,
      );
      const a = worst.artifacts!;
      const verdict = bs.every((b) => b.artifacts!.ok) ? '' : ' ⚠';
      L.push(`| ${w} | ${t}${verdict} | ${bs.length} | ${a.compared} | ${a.identical} | ${a.differ} | ${a.missing}/${a.extra} | ${a.nondeterministic} |`);
    }
  }
  L.push('');

  if (r.micro.length) {
    L.push('## One translation unit, per invocation (hyperfine -N)', '');
    const cc = r.micro.find((m) => m.tool === 'ccache' && m.name.includes('hit'));
    L.push('| what | median ms | p99 ms | runs | vs ccache hit |');
    L.push('|---|---:|---:|---:|---:|');
    for (const m of r.micro) {
      L.push(
        `| ${m.name}${m.error ? ` (error: ${m.error.slice(0, 80)})` : ''} | ${f2(m.median_ms)} | ${f2(m.p99_ms)} | ${m.runs} | ${cc ? ratio(m.median_ms, cc.median_ms) : 'n/a'} |`,
      );
    }
    L.push('');
  }

  const daemons = Object.entries(r.daemon).filter(([, d]) => d);
  if (daemons.length || r.entries) {
    L.push('## vrift daemon: memory, lookup time, store size', '');
    L.push('| after | VmRSS (< 200 MiB) | entries | lookup p50 / p99 hit (p99 < 10 ms) | lookup p50 / p99 miss | store on disk / outputs stored |');
    L.push('|---|---:|---:|---:|---:|---:|');
    const row = (label: string, d: DaemonInfo | null | undefined) => {
      const st = d?.store ?? {};
      const lat = d?.latency ?? {};
      const pq = (k: string) => (lat[`${k}.p50_ms`] !== undefined ? `${f2(lat[`${k}.p50_ms`])} / ${f2(lat[`${k}.p99_ms`])} ms` : 'n/a');
      const disk = st['local.bytes'];
      const outs = st.stored_bytes;
      const size = disk !== undefined && outs ? `${(disk / 2 ** 20).toFixed(1)} / ${(outs / 2 ** 20).toFixed(1)} MiB (${ratio(disk, outs)})` : 'n/a';
      L.push(
        `| ${label} | ${d?.rssKiB !== undefined ? `${(d.rssKiB / 1024).toFixed(1)} MiB` : 'n/a'} | ${st['local.entries'] ?? 'n/a'} | ${pq('hit')} | ${pq('miss')} | ${size} |`,
      );
    };
    for (const [w, d] of daemons)
      row(`${w}: cold + ${r.builds.filter((b) => b.workload === w && b.tool === 'vrift' && b.phase === 'warm').length} warm builds`, d);
    const e = r.entries;
    if (e)
      row(
        `${e.units} small compiles, then all of them hit (cold ${f2(e.coldSeconds)} s, warm ${f2(e.warmSeconds)} s, ${e.hits ?? '?'} hits)${e.error ? ` — error: ${e.error}` : ''}`,
        e.daemon,
      );
    L.push('');
  }

  if (r.remote) L.push(...renderRemote(r.remote), '');

  if (r.errors.length) {
    L.push('## Errors', '', ...r.errors.map((e) => `- ${e.split('\n')[0]}`), '');
  }
  return L.join('\n');
}

// The upload pairs: a cold build with an empty server as remote against one without.
function renderUploads(rr: RemoteResults): string[] {
  const builds = rr.builds.filter((b) => b.scenario === 'cold-remote' || b.scenario === 'cold-local');
  const L: string[] = [];
  for (const w of [...new Set(builds.map((b) => b.workload))]) {
    const of = (s: string) => builds.filter((b) => b.workload === w && b.scenario === s);
    const [rem, loc] = [of('cold-remote'), of('cold-local')];
    if (L.length === 0) {
      L.push(
        "| workload | cold, no remote | cold, remote | remote/no remote (≤ 1.03×) | each pair | daemon CPU s, no remote → remote (+ server) | last upload after the build, each run (≤ 2 s) | PUTs at the build's end / all | load1 min–max |",
      );
      L.push('|---|---:|---:|---:|---|---|---|---|---|');
    }
    const pairs = rem.map((r) => loc.find((l) => l.run === r.run)).map((l, i) => (l ? ratio(rem[i].seconds, l.seconds) : 'n/a'));
    const loads = [...rem, ...loc].map((b) => load1(b.loadBefore));
    L.push(
      `| ${w} | ${f2(median(loc.map((b) => b.seconds)))} | ${f2(median(rem.map((b) => b.seconds)))} | **${ratio(median(rem.map((b) => b.seconds)), median(loc.map((b) => b.seconds)))}** | ${pairs.join(', ')} | ${f2(median(loc.map((b) => b.cpu?.daemon ?? NaN)))} → ${f2(median(rem.map((b) => b.cpu?.daemon ?? NaN)))} (+ ${f2(median(rem.map((b) => b.cpu?.server ?? NaN)))}) | ${rem.map((b) => (b.lastUploadAfter !== undefined ? `${b.lastUploadAfter.toFixed(2)} s` : 'n/a')).join(', ')} | ${rem.map((b) => `${b.putsAtEnd ?? '?'}/${b.puts ?? '?'}`).join(', ')} | ${f2(Math.min(...loads))}–${f2(Math.max(...loads))} |`,
    );
  }
  if (L.length) L.push('');
  return L;
}

const mib = (k: number | undefined) => (k === undefined ? 'n/a' : `${(k / 1024).toFixed(1)} MiB`);

function renderRemote(rr: RemoteResults): string[] {
  const L: string[] = ['## Remote tier (`--remote`): vrift serve on loopback', ''];
  const workloads = [...new Set(rr.builds.filter((b) => b.scenario !== 'cold-remote' && b.scenario !== 'cold-local').map((b) => b.workload))];
  const med = (w: string, s: string) => median(rr.builds.filter((b) => b.workload === w && b.scenario === s).map((b) => b.seconds));
  const last = (w: string, s: string) => rr.builds.filter((b) => b.workload === w && b.scenario === s).at(-1);
  if (workloads.length) {
    L.push(
      '| workload | populate (A) | fresh machine | local warm | fresh/local warm (≤ 1.50×) | server unreachable | plain | unreachable/plain (≤ 1.05×) | runs | load1 min–max |',
    );
    L.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---|');
    for (const w of workloads) {
      const loads = rr.builds.filter((b) => b.workload === w).map((b) => load1(b.loadBefore));
      const runs = rr.builds.filter((b) => b.workload === w && b.scenario === 'fresh').length;
      L.push(
        `| ${w} | ${f2(med(w, 'populate'))} | ${f2(med(w, 'fresh'))} | ${f2(med(w, 'local-warm'))} | ${ratio(med(w, 'fresh'), med(w, 'local-warm'))} | ${f2(med(w, 'unreachable'))} | ${f2(med(w, 'plain'))} | ${ratio(med(w, 'unreachable'), med(w, 'plain'))} | ${runs} | ${f2(Math.min(...loads))}–${f2(Math.max(...loads))} |`,
      );
    }
    L.push(
      '',
      '| workload | scenario (last run) | hits/misses/uncacheable | remote hits | errors | timeouts | skipped | MB down |',
      '|---|---|---|---:|---:|---:|---:|---:|',
    );
    for (const w of workloads) {
      for (const s of ['populate', 'fresh', 'local-warm', 'unreachable'] as const) {
        const b = last(w, s);
        if (!b) continue;
        const rc = b.remote ?? {};
        L.push(
          `| ${w} | ${s} | ${statsCell(b.stats)} | ${rc.hits ?? 'n/a'} | ${rc.errors ?? 'n/a'} | ${rc.timeouts ?? 'n/a'} | ${rc.skipped ?? 'n/a'} | ${rc.bytes_down !== undefined ? (rc.bytes_down / 2 ** 20).toFixed(1) : 'n/a'} |`,
        );
      }
    }
    L.push('');
  }
  L.push(...renderUploads(rr));
  const t = rr.throughput;
  if (t) {
    L.push('| serve throughput (loopback) | rate | target |', '|---|---:|---:|');
    for (const x of t.rates) L.push(`| ${x.label}, ${x.concurrency} concurrent | ${x.perSecond} req/s | ${/HEAD|GET small/.test(x.label) ? '≥ 5000' : ''} |`);
    for (const x of t.bandwidth) L.push(`| ${x.label} | ${x.mbPerSecond} MB/s | ${/^GET 64 MB \(plain\)|^PUT 64/.test(x.label) ? '≥ 500' : ''} |`);
    L.push('', `server VmRSS around the 64 MB PUT/GETs: ${mib(t.serverRssKiB.before)} → ${mib(t.serverRssKiB.after)}`);
  }
  const bb = rr.bigBlob;
  if (bb) {
    L.push(
      bb.error
        ? `64 MB object through a daemon: failed (${bb.error})`
        : `64 MB object compiled and uploaded by daemon A, fetched by a fresh daemon B (${bb.fetched ? 'remote hit' : 'NOT a remote hit'}); VmRSS before → peak: A ${mib(bb.uploaderBefore)} → ${mib(bb.uploaderPeak)}, B ${mib(bb.daemonBefore)} → ${mib(bb.daemonAfter)}, server ${mib(bb.serverBefore)} → ${mib(bb.serverAfter)}`,
    );
  }
  if (rr.errors.length) L.push('', ...rr.errors.map((e) => `- remote: ${e.split('\n')[0]}`));
  return L;
}
