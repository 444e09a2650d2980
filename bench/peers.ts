// LAN peers on a real workload (libuv), a teammate's daemon in its own network namespace:
//
//   node dist/bench/peers.js [--runs 3] [--jobs 2] [--delay-ms 1] [--seconds 3] [--work-dir DIR]
//
// Machine A is a daemon in a network namespace joined to this one by a veth pair, serving its
// store to peers on port 7700; an empty daemon E serves on 7701 there too. Between this
// namespace and theirs sits a relay that delays every request by --delay-ms (a LAN's round
// trip; this kernel has no netem); the daemons and relays there run at nice -10, standing for
// other machines that do not share the measured build's cores. The build tree is configured
// once (CMake launchers) and every daemon builds it at the same path. A builds it once (untimed); then each round times,
// in a rotating order, after an untimed `make clean`:
//   peer-fresh   a new daemon with an empty store and A as its peer: a clean build
//   local-warm   the same daemon again, now from its own store       (peer-fresh ≤ 1.3× this)
//   no-peers     a new daemon, empty store, no peers: a cold build
//   warm-no-peers  the same daemon again, from its own store          (local-warm against this)
//   peers-dead   the same with two peers that never answer: one accepts connections and says
//                nothing, one is an address nobody has                (≤ 1.02× no-peers)
//   peers-no     the same with E as its peer, which has nothing: every miss is answered "no"
//                (its misses' p99 lookup time ≤ 5 ms above no-peers')
// Then, inside A's namespace, small signed GETs per second against A's peer server on
// loopback (≥ 5 000/s). Results go to bench/results/peers-<time>.{json,md}.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import http from 'node:http';
import { writeKeyPair } from '../trust/key-file.js';
import { signRequest } from '../trust/request-auth.js';
import { timed as timedRun, timedSync } from './exec.js';
import { silentServer } from './remote-scenarios.js';
import { median } from './report.js';
import { copyTree, ensureSources } from './sources.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const DIST = path.join(ROOT, 'dist', 'bench');
const CLI = path.join(ROOT, 'dist', 'shim', 'cli.js');
const SHIM = path.join(ROOT, 'native', 'build', 'vrift-shim');

const { values: o } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    jobs: { type: 'string', default: '2' },
    'delay-ms': { type: 'string', default: '1' },
    seconds: { type: 'string', default: '3' },
    'work-dir': { type: 'string', default: path.join(os.homedir(), '.cache', 'vrift', 'bench-peers') },
    // Some of the groups only (fresh: peer-fresh and local-warm; none: no-peers; dead: peers-dead; no: peers-no).
    groups: { type: 'string', default: 'fresh,none,dead,no' },
    // Without the throughput run against A's peer server.
    'no-load': { type: 'boolean', default: false },
  },
});
const runs = Number(o.runs);
const jobs = `-j${Number(o.jobs)}`;
const work = path.resolve(o['work-dir']!);
const log = path.join(work, 'build.log');
if (process.getuid?.() !== 0) throw new Error('bench/peers needs root (network namespaces)');

// Builds and daemon commands run async, in process groups of their own: an interrupt stops
// the one running and everything below it, then cleanup() what the bench set up.
const running = new Set<ChildProcess>();
const sh = (argv: string[], cwd: string, env: NodeJS.ProcessEnv = process.env) => timedRun(log, argv, cwd, env, running);
const ip = (...args: string[]) => timedSync(log, ['ip', ...args], '/');

// ---- the network: namespace A, a veth pair, nothing routed beyond it ----
const id = String(process.pid).slice(-5);
const ns = `vrift-bp-${id}`;
const [hostIf, nsIf] = [`vbp${id}h`, `vbp${id}n`];
const used = spawnSync('ip', ['-o', '-4', 'addr', 'show'], { encoding: 'utf8' }).stdout;
const third = Array.from({ length: 200 }, (_, i) => 20 + ((Number(id) + i) % 200)).find((n) => !used.includes(`10.215.${n}.`));
if (third === undefined) throw new Error('no free 10.215.x.0/24 for the bench network');
const [hostIp, aIp, nobodyIp] = [`10.215.${third}.1`, `10.215.${third}.2`, `10.215.${third}.3`];
const children: ChildProcess[] = [];
const homes: Record<string, NodeJS.ProcessEnv> = {};
let cleaned = false;
function cleanup() {
  if (cleaned) return;
  cleaned = true;
  for (const c of running) if (c.pid !== undefined) signalGroup(c.pid);
  for (const env of Object.values(homes)) spawnSync(process.execPath, [CLI, 'daemon', 'stop'], { env, stdio: 'ignore' });
  for (const c of children) c.kill('SIGTERM');
  spawnSync('ip', ['link', 'del', hostIf], { stdio: 'ignore' });
  spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
}
function signalGroup(pid: number) {
  try {
    process.kill(-pid, 'SIGTERM');
  } catch {
    // already gone
  }
}
process.on('exit', cleanup);
for (const s of ['SIGINT', 'SIGTERM'] as const)
  process.on(s, () => {
    process.stderr.write(`bench: ${s}: stopping what it started\n`);
    cleanup();
    process.exit(130);
  });

fs.rmSync(work, { recursive: true, force: true });
fs.mkdirSync(work, { recursive: true });
ip('netns', 'add', ns);
ip('link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nsIf);
ip('link', 'set', nsIf, 'netns', ns);
ip('addr', 'add', `${hostIp}/24`, 'dev', hostIf);
ip('link', 'set', hostIf, 'up');
ip('-n', ns, 'link', 'set', 'lo', 'up');
ip('-n', ns, 'addr', 'add', `${aIp}/24`, 'dev', nsIf);
ip('-n', ns, 'link', 'set', nsIf, 'up');

// What runs in A's namespace stands for other machines and the wire between (the peer daemons,
// the relays): on this machine they share its cores with the measured build, which a real
// LAN peer does not, so they run at a higher priority than it (the daemons' own children too).
const OTHER_MACHINE = ['-n', '-10'];

/** A process in A's namespace, kept until the bench ends; resolves once it prints `ready`. */
async function inNs(argv: string[]): Promise<ChildProcess> {
  const c = spawn('nice', [...OTHER_MACHINE, 'ip', 'netns', 'exec', ns, ...argv], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(c);
  await new Promise<void>((resolve, reject) => {
    c.stdout!.on('data', (d) => String(d).includes('ready') && resolve());
    c.on('exit', (code) => reject(new Error(`${argv.join(' ')} exited ${code}`)));
  });
  return c;
}

// ---- keys: A (and E) sign with one, the measured daemons with another; all trust both ----
const keyA = writeKeyPair(path.join(work, 'keys-a'), 'bench-a', true);
const keyB = writeKeyPair(path.join(work, 'keys-b'), 'bench-b', true);
const base: NodeJS.ProcessEnv = { ...process.env, LC_ALL: 'C' };
for (const k of Object.keys(base)) if (k.startsWith('VRIFT_')) delete base[k];
const envOf = (name: string, extra: Record<string, string>): NodeJS.ProcessEnv => {
  const env = { ...base, VRIFT_HOME: path.join(work, 'home', name), VRIFT_IDLE_TIMEOUT: '0', VRIFT_TRUSTED_KEYS: `${keyA.line},${keyB.line}`, ...extra };
  homes[name] = env;
  return env;
};
const signB = { VRIFT_SIGNING_KEY: path.join(work, 'keys-b', 'signing.key') };
// A and E name a peer that refuses at once: what matters is that they serve theirs.
const servers = (port: number) => ({ VRIFT_SIGNING_KEY: path.join(work, 'keys-a', 'signing.key'), VRIFT_PEERS: '127.0.0.1:9', VRIFT_PEER_PORT: String(port) });

async function main() {
  const silent = await silentServer();
  const delay = o['delay-ms']!;
  const relay = (listen: number, to: number) =>
    inNs([process.execPath, path.join(DIST, 'delay-proxy.js'), '--listen', `${aIp}:${listen}`, '--to', `127.0.0.1:${to}`, '--delay-ms', delay]);
  await relay(7800, 7700);
  await relay(7801, 7701);
  const env = {
    a: envOf('a', servers(7700)),
    e: envOf('e', servers(7701)),
    fresh: envOf('fresh', { ...signB, VRIFT_PEERS: `${aIp}:7800` }),
    none: envOf('none', {}),
    dead: envOf('dead', { ...signB, VRIFT_PEERS: `${new URL(silent.url).host},${nobodyIp}:7700` }),
    no: envOf('no', { ...signB, VRIFT_PEERS: `${aIp}:7801` }),
  };
  const start = async (e: NodeJS.ProcessEnv, netns = false) => {
    fs.rmSync(e.VRIFT_HOME!, { recursive: true, force: true });
    fs.mkdirSync(e.VRIFT_HOME!, { recursive: true });
    await sh([...(netns ? ['nice', ...OTHER_MACHINE, 'ip', 'netns', 'exec', ns] : []), process.execPath, CLI, 'daemon', 'start'], work, e);
  };
  const stop = (e: NodeJS.ProcessEnv) => sh([process.execPath, CLI, 'daemon', 'stop'], work, e);
  // Requests a peer (A: 7700, E: 7701) has answered so far, from its /status (asked directly, not through the relay).
  const served = (port: number | undefined) =>
    port === undefined
      ? Promise.resolve(0)
      : new Promise<number>((resolve) => {
          const req = http.get({ host: aIp, port, path: '/status', headers: signRequest(keyB, 'GET', '/status', Date.now()) }, (res) => {
            let body = '';
            res.on('data', (d) => (body += d));
            res.on('end', () => resolve(Number((JSON.parse(body || '{}') as { requests?: number }).requests ?? Number.NaN)));
          });
          req.on('error', () => resolve(Number.NaN));
        });
  const stats = async (e: NodeJS.ProcessEnv) => JSON.parse((await sh([process.execPath, CLI, 'stats', '--json'], work, e)).stdout) as Stats;

  // ---- the tree: configured once with vrift's launchers; every daemon builds this path ----
  const src = copyTree('libuv', path.join(work, 'libuv'), ensureSources({ quiet: true }));
  const build = path.join(work, 'build');
  await sh(
    [
      'cmake',
      '-S',
      src,
      '-B',
      build,
      '-DCMAKE_BUILD_TYPE=RelWithDebInfo',
      '-DLIBUV_BUILD_TESTS=ON',
      ...['C', 'CXX'].flatMap((l) => [`-DCMAKE_${l}_COMPILER_LAUNCHER=${SHIM}`, `-DCMAKE_${l}_LINKER_LAUNCHER=${SHIM}`]),
    ],
    work,
    env.a,
  );
  const chosen = new Set(o.groups!.split(','));
  await start(env.a, true);
  await start(env.e, true);
  if (chosen.has('fresh') || !o['no-load']) {
    process.stderr.write('bench: A builds the tree (untimed)\n');
    await sh(['make', jobs], build, env.a);
    const aStats = await stats(env.a); // writes what waits, so A serves all of it
    process.stderr.write(`bench: A has ${aStats.hits}/${aStats.misses} hits/misses\n`);
  }

  const samples: Sample[] = [];
  const timed = async (variant: string, round: number, e: NodeJS.ProcessEnv, peerPort?: number) => {
    await sh(['make', 'clean'], build, e);
    const before = await stats(e);
    const servedBefore = await served(peerPort);
    const load1 = os.loadavg()[0];
    const r = await sh(['make', jobs], build, e);
    const after = await stats(e);
    const peerRequests = peerPort === undefined ? Number.NaN : (await served(peerPort)) - servedBefore - 1; // less its own /status
    const p = after.peers ?? {};
    const s: Sample = {
      variant,
      round,
      secs: r.secs,
      hits: after.hits - before.hits,
      misses: after.misses - before.misses,
      peerHits: (p.hits ?? 0) - (before.peers?.hits ?? 0),
      peerRequests,
      missP99: after.latency?.run?.p99_ms,
      missP50: after.latency?.run?.p50_ms,
      load1,
    };
    samples.push(s);
    process.stderr.write(
      `bench: round ${round + 1} ${variant}: ${r.secs.toFixed(2)} s, ${s.hits} hits (${s.peerHits} answers from peers, ${s.peerRequests} requests the peer answered), ${s.misses} misses, miss p50/p99 ${s.missP50 ?? '-'}/${s.missP99 ?? '-'} ms, load ${load1.toFixed(1)}\n`,
    );
  };
  // Each group: a new daemon (empty store), its timed builds in order, stopped.
  const groups = (
    [
      ['fresh', env.fresh, ['peer-fresh', 'local-warm'], 7700],
      ['none', env.none, ['no-peers', 'warm-no-peers'], undefined],
      ['dead', env.dead, ['peers-dead'], undefined],
      ['no', env.no, ['peers-no'], 7701],
    ] as const
  )
    .filter(([name]) => chosen.has(name))
    .map(([, e, variants, port]) => [e, [...variants], port] as [NodeJS.ProcessEnv, string[], number | undefined]);
  const group = async ([e, variants, port]: [NodeJS.ProcessEnv, string[], number | undefined], r: number) => {
    await start(e);
    for (const v of variants) await timed(v, r, e, port);
    await stop(e);
  };
  for (let round = 0; round < runs; round++) for (let i = 0; i < groups.length; i++) await group(groups[(i + round) % groups.length], round);

  // ---- throughput: small signed GETs against A's peer server, on loopback inside its namespace ----
  if (o['no-load']) {
    await silent.close();
    return report(samples, undefined, 0);
  }
  const digests = listStore(env.a.VRIFT_HOME!);
  const pathsFile = path.join(work, 'paths');
  fs.writeFileSync(pathsFile, digests.map((d) => `/${d.kind}/${d.hex}`).join('\n') + '\n');
  const load = await sh(
    [
      'ip',
      'netns',
      'exec',
      ns,
      process.execPath,
      path.join(DIST, 'peer-load.js'),
      '--url',
      'http://127.0.0.1:7700',
      '--key',
      path.join(work, 'keys-b', 'signing.key'),
      '--paths',
      pathsFile,
      '--seconds',
      o.seconds!,
    ],
    work,
  );
  const throughput = JSON.parse(load.stdout) as { perSecond: number; count: number; concurrency: number; statuses: Record<string, number> };
  process.stderr.write(`bench: peer server ${throughput.perSecond} GET/s (${JSON.stringify(throughput.statuses)})\n`);
  await silent.close();
  report(samples, throughput, digests.length);
}

interface Stats {
  hits: number;
  misses: number;
  peers?: { hits?: number };
  latency?: Record<string, { p50_ms: number; p99_ms: number }>;
}
interface Sample {
  variant: string;
  round: number;
  secs: number;
  hits: number;
  misses: number;
  peerHits: number;
  /** Requests the peer asked answered during the build (NaN: no peer, or its /status did not answer). */
  peerRequests: number;
  missP50?: number;
  missP99?: number;
  load1: number;
}

/** Every object and entry in a daemon's store, as the peer server names them. */
function listStore(home: string): { kind: 'cas' | 'ac'; hex: string }[] {
  const out: { kind: 'cas' | 'ac'; hex: string }[] = [];
  const walk = (dir: string, kind?: 'cas' | 'ac') => {
    for (const d of fs.readdirSync(dir, { withFileTypes: true })) {
      const k = d.name === 'cas-v1' ? 'cas' : d.name === 'ac-v1' ? 'ac' : kind;
      if (d.isDirectory()) walk(path.join(dir, d.name), k);
      else if (k && /^[0-9a-f]{64}$/.test(d.name)) out.push({ kind: k, hex: d.name });
    }
  };
  walk(home);
  return out;
}

function report(
  samples: Sample[],
  tp: { perSecond: number; count: number; concurrency: number; statuses: Record<string, number> } | undefined,
  objects: number,
) {
  const names = ['peer-fresh', 'local-warm', 'no-peers', 'warm-no-peers', 'peers-dead', 'peers-no'];
  const of = (n: string) => samples.filter((s) => s.variant === n);
  const med = Object.fromEntries(names.map((n) => [n, median(of(n).map((s) => s.secs))]));
  const ratio = (a: string, b: string) => med[a] / med[b];
  const pairs = (a: string, b: string) =>
    Array.from({ length: runs }, (_, r) => {
      const x = samples.find((s) => s.round === r && s.variant === a);
      const y = samples.find((s) => s.round === r && s.variant === b);
      return x && y ? `${(x.secs / y.secs).toFixed(3)}×` : '-';
    }).join(', ');
  const p99 = (n: string) => median(of(n).map((s) => s.missP99 ?? Number.NaN));
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const git = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).stdout.trim();
  const loads = samples.map((s) => s.load1);
  const md = [
    `# LAN peers on libuv ${stamp}`,
    '',
    `\`node dist/bench/peers.js --runs ${runs} --jobs ${o.jobs} --delay-ms ${o['delay-ms']}\` — vrift ${git}, ${os.cpus().length} × ${os.cpus()[0]?.model ?? '?'}, node ${process.version}; peer A in its own network namespace behind a relay adding ${o['delay-ms']} ms to each request; load1 during the timed builds ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)}`,
    '',
    '| variant | what | median s | runs (s) | hits (answers from peers)/misses, last | lookup p50/p99 ms of misses (compiled), median |',
    '|---|---|---:|---|---|---|',
    ...names.map((n) => {
      const xs = of(n);
      const last = xs[xs.length - 1];
      const what = {
        'peer-fresh': 'empty store, A as peer: clean build',
        'local-warm': 'the same daemon again, from its own store',
        'no-peers': 'empty store, no peers: cold build',
        'warm-no-peers': 'the same daemon again, from its own store',
        'peers-dead': 'empty store, two peers that never answer: cold build',
        'peers-no': 'empty store, a peer that has nothing: cold build',
      }[n];
      const p50 = median(xs.map((s) => s.missP50 ?? Number.NaN));
      return `| ${n} | ${what} | ${med[n].toFixed(2)} | ${xs.map((s) => s.secs.toFixed(2)).join(', ')} | ${last ? `${last.hits} (${last.peerHits})/${last.misses}` : '-'} | ${Number.isNaN(p50) ? '-' : p50.toFixed(2)} / ${Number.isNaN(p99(n)) ? '-' : p99(n).toFixed(2)} |`;
    }),
    '',
    `- peer-fresh / local-warm: **${ratio('peer-fresh', 'local-warm').toFixed(3)}×** (per round ${pairs('peer-fresh', 'local-warm')}; target ≤ 1.3×)`,
    `- local-warm / warm-no-peers: ${ratio('local-warm', 'warm-no-peers').toFixed(3)}× (per round ${pairs('local-warm', 'warm-no-peers')}): a warm build with a peer configured against one without`,
    `- peers-dead / no-peers: **${ratio('peers-dead', 'no-peers').toFixed(3)}×** (per round ${pairs('peers-dead', 'no-peers')}; target ≤ 1.02×)`,
    `- peers-no / no-peers: ${ratio('peers-no', 'no-peers').toFixed(3)}× (per round ${pairs('peers-no', 'no-peers')}); a miss every peer answers "no": p99 **${(p99('peers-no') - p99('no-peers')).toFixed(2)} ms** above no peers (target ≤ 5 ms)`,
    tp
      ? `- A's peer server on loopback: **${tp.perSecond} signed GET/s** (${tp.count} requests, ${tp.concurrency} keep-alive connections, over ${objects} objects and entries; statuses ${JSON.stringify(tp.statuses)}; target ≥ 5 000)`
      : '- (no throughput run)',
    '',
  ].join('\n');
  const out = path.join(ROOT, 'bench', 'results', `peers-${stamp}`);
  fs.writeFileSync(
    `${out}.json`,
    JSON.stringify({ stamp, git, runs, jobs: o.jobs, delayMs: o['delay-ms'], samples, median: med, throughput: tp }, null, 2) + '\n',
  );
  fs.writeFileSync(`${out}.md`, md);
  process.stdout.write(md);
}

try {
  await main();
} finally {
  cleanup();
}
