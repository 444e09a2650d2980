import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { writeBigSource } from './big-source.js';
import { run } from './exec.js';
import { loadavg, machineCpu, processCpu } from './exec.js';
import { rssKiB, serveThroughput, startServeProc, type ServeProc, type ThroughputResult } from './serve-throughput.js';
import { createTools, vriftPaths, type BuildStats, type Tool, type ToolOptions } from './tools.js';
import { ctxAt, type Workload } from './workloads.js';

// `--remote`: the team-cache promises of issue 5, on a real workload.
//   fresh:       empty local store, populated `vrift serve` on loopback → clean build,
//                against a local warm build (target ≤ 1.5×)
//   unreachable: a remote that accepts connections and never answers → clean build,
//                against plain gcc (target ≤ 1.05×)
//   throughput:  small HEAD/GET per second, 64 MB MB/s, and VmRSS of the server and of a
//                daemon before/after a 64 MB blob goes through them.
//   upload:      the cost of uploading while building: a cold build (empty local store) with an
//                empty `vrift serve` as remote against the same cold build without a remote, in
//                pairs (target ≤ 1.03×); and when the server had the last of the build's uploads,
//                counted from the build's end (target ≤ 2 s), with no `vrift stats` before.

export type RemoteScenario = 'populate' | 'fresh' | 'local-warm' | 'unreachable' | 'plain' | 'cold-remote' | 'cold-local';

/** Which parts `--remote` runs (`--remote-scenarios`); all by default. */
export const REMOTE_PARTS = ['fresh', 'unreachable', 'upload', 'bigblob', 'throughput'] as const;
export type RemotePart = (typeof REMOTE_PARTS)[number];

export interface RemoteBuild {
  workload: string;
  scenario: RemoteScenario;
  run: number;
  seconds: number;
  loadBefore: string;
  loadAfter: string;
  stats: BuildStats | null;
  remote?: Record<string, number>;
  /** cold-remote: seconds from the build's end to the server's last PUT (PUTs counted until 10 s pass without one). */
  lastUploadAfter?: number;
  /** cold-remote: PUTs the server had at the build's end, and in all. */
  putsAtEnd?: number;
  puts?: number;
  /** Core-seconds during the build: the machine's busy ones, the daemon's, and (upload pairs) the server's. */
  cpu?: { busy: number; daemon?: number; server?: number };
}

export interface RemoteResults {
  builds: RemoteBuild[];
  throughput?: ThroughputResult;
  /** VmRSS (KiB) of a daemon and of the server before one 64 MB object goes through them (uploaded by A, fetched by B), and their peak (VmHWM) after. */
  bigBlob?: {
    bytes: number;
    uploaderBefore?: number;
    uploaderPeak?: number;
    daemonBefore?: number;
    daemonAfter?: number;
    serverBefore?: number;
    serverAfter?: number;
    fetched: boolean;
    error?: string;
  };
  errors: string[];
}

export interface RemoteContext {
  workload: Workload;
  /** The parked trees (configured by the main run) and the slot they are built in. */
  withTree<T>(tool: 'plain' | 'vrift', f: () => Promise<T>): Promise<T>;
  slot: string;
  jobs: number;
  runs: number;
  toolOptions: ToolOptions;
  workDir: string;
  logFile: string;
  log(line: string): void;
  step(label: string): void;
  parts?: readonly RemotePart[];
}

/** A port that accepts TCP connections and never says a word: the worst kind of dead server. */
export async function silentServer(): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const srv = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(srv.address() as net.AddressInfo).port}`,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        srv.close(() => r());
      }),
  };
}

const remoteCounters = (s: BuildStats | null): Record<string, number> | undefined => {
  const raw = s?.raw as Record<string, number> | undefined;
  if (!raw) return undefined;
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(raw)) if (k.startsWith('remote.')) out[k.slice(7)] = v;
  return out;
};

async function vriftWith(name: string, env: Record<string, string>, c: RemoteContext): Promise<Tool> {
  const o = c.toolOptions;
  const [t] = await createTools(['vrift'], { ...o, cacheRoot: path.join(o.cacheRoot, name), vriftEnv: { ...o.vriftEnv, ...env } });
  if (t.unavailable) throw new Error(`vrift: ${t.unavailable}`);
  return t;
}

export async function runRemoteScenarios(c: RemoteContext, res: RemoteResults): Promise<void> {
  const w = c.workload;
  const ctx = ctxAt(c.slot, [], c.jobs);
  const cli = vriftPaths(c.toolOptions.vriftRoot ?? c.toolOptions.repoRoot).cli;
  const storeDir = path.join(c.workDir, 'caches', 'serve');
  fs.rmSync(storeDir, { recursive: true, force: true });
  let serve: ServeProc | undefined = await startServeProc(cli, storeDir);
  const silent = await silentServer();
  const fresh = await vriftWith('vrift-remote', { VRIFT_REMOTE: serve.url }, c);
  const unreach = await vriftWith('vrift-unreachable', { VRIFT_REMOTE: silent.url }, c);
  const plainEnv = c.toolOptions.baseEnv;

  const parts = new Set(c.parts ?? REMOTE_PARTS);
  const timed = async (
    scenario: RemoteScenario,
    runNo: number,
    t: Tool | undefined,
    env: NodeJS.ProcessEnv,
    afterBuild?: (rec: RemoteBuild) => Promise<void>,
    serverPid?: number,
  ) => {
    c.step(`${w.name}: remote ${scenario} #${runNo + 1}`);
    // A make workload takes the compiler on its command line: the tool's launcher goes there
    // (a cmake tree has it from its configure step already).
    const tctx = t ? ctxAt(c.slot, t.launcher, c.jobs, t.linksToo ? t.launcher : []) : ctx;
    const clean = w.clean(tctx);
    await run(clean.argv, { cwd: clean.cwd, env, logFile: c.logFile });
    await t?.beginBuild();
    const loadBefore = loadavg();
    const b = w.build(tctx);
    const dpid = await t?.serverPid?.();
    const [m0, d0, s0] = [machineCpu(), processCpu(dpid), processCpu(serverPid, true)];
    try {
      const r = await run(b.argv, { cwd: b.cwd, env, logFile: c.logFile });
      const [m1, d1, s1] = [machineCpu(), processCpu(dpid), processCpu(serverPid, true)];
      const diff = (x?: number, y?: number) => (x !== undefined && y !== undefined ? Math.round((y - x) * 100) / 100 : undefined);
      const cpu = m0 && m1 ? { busy: diff(m0.busy, m1.busy)!, daemon: diff(d0, d1), server: diff(s0, s1) } : undefined;
      const rec: RemoteBuild = { workload: w.name, scenario, run: runNo, seconds: r.seconds, loadBefore, loadAfter: loadavg(), stats: null, cpu };
      await afterBuild?.(rec); // before `vrift stats`, which writes and uploads what waits
      const stats = t ? await t.stats() : null;
      rec.stats = stats;
      rec.remote = remoteCounters(stats);
      res.builds.push(rec);
      const rc = rec.remote;
      c.log(
        `${w.name} remote ${scenario.padEnd(11)} #${runNo + 1}: ${r.seconds.toFixed(2)} s` +
          (stats ? `  hits ${stats.hits} misses ${stats.misses}` : '') +
          (rc ? `  remote hits ${rc.hits ?? 0} errors ${rc.errors ?? 0} timeouts ${rc.timeouts ?? 0} skipped ${rc.skipped ?? 0}` : '') +
          (rec.cpu ? `  cpu busy ${rec.cpu.busy} daemon ${rec.cpu.daemon ?? 'n/a'}${rec.cpu.server !== undefined ? ` server ${rec.cpu.server}` : ''} s` : '') +
          (rec.lastUploadAfter !== undefined
            ? `  last upload ${rec.lastUploadAfter.toFixed(2)} s after the build (${rec.putsAtEnd}/${rec.puts} PUTs at its end)`
            : '') +
          `  load ${loadBefore.split(' ').slice(0, 3).join(' ')}`,
      );
    } catch (e) {
      const msg = `${w.name} remote ${scenario} #${runNo + 1} failed: ${(e as Error).message}`;
      res.errors.push(msg);
      c.log(`ERROR ${msg.split('\n')[0]}`);
    }
  };

  try {
    if (parts.has('fresh')) {
      // Machine A fills the server (its daemon drains the upload queue when stopped).
      await c.withTree('vrift', async () => {
        await fresh.reset();
        await timed('populate', 0, fresh, fresh.env);
        await fresh.close();
      });
    }
    for (let r = 0; r < c.runs; r++) {
      if (parts.has('fresh')) {
        await c.withTree('vrift', async () => {
          await fresh.reset(); // a fresh machine: empty local store, new daemon
          await timed('fresh', r, fresh, fresh.env);
          await timed('local-warm', r, fresh, fresh.env);
        });
      }
      if (parts.has('unreachable')) {
        await c.withTree('vrift', async () => {
          await unreach.reset();
          await timed('unreachable', r, unreach, unreach.env);
        });
      }
      if (parts.has('unreachable') || parts.has('fresh')) await c.withTree('plain', () => timed('plain', r, undefined, plainEnv));
      if (parts.has('upload')) await uploadPair(c, cli, r, timed);
    }
    await fresh.close();
    await unreach.close();

    if (parts.has('bigblob')) {
      c.step('remote: 64 MB object through a daemon');
      res.bigBlob = await bigBlob(c, serve);
    }
    await serve.stop();
    serve = undefined;
    if (parts.has('throughput')) {
      c.step('remote: serve throughput');
      res.throughput = await serveThroughput(cli, { seconds: c.runs > 1 ? 3 : 1, concurrency: 32, log: (l) => c.log(`serve ${l.trim()}`) });
    }
  } finally {
    await fresh.close().catch(() => {});
    await unreach.close().catch(() => {});
    await serve?.stop();
    await silent.close();
  }
}

type Timed = (
  scenario: RemoteScenario,
  runNo: number,
  t: Tool | undefined,
  env: NodeJS.ProcessEnv,
  afterBuild?: (rec: RemoteBuild) => Promise<void>,
  serverPid?: number,
) => Promise<void>;

// One pair of cold builds, with an empty server each time and without a remote (which goes
// first alternates). The server's PUT count is sampled from the build's end until it has not
// moved for 10 s: when the last upload landed, with nothing (stats, stop) flushing.
async function uploadPair(c: RemoteContext, cli: string, r: number, timed: Timed): Promise<void> {
  const local = await vriftWith('vrift-cold-local', {}, c);
  const storeDir = path.join(c.workDir, 'caches', 'serve-upload');
  fs.rmSync(storeDir, { recursive: true, force: true });
  const serve = await startServeProc(cli, storeDir);
  const remote = await vriftWith('vrift-cold-remote', { VRIFT_REMOTE: serve.url }, c);
  const puts = async () => Number((JSON.parse(await (await fetch(`${serve.url}/status`)).text()) as { puts: number }).puts);
  const watchUploads = async (rec: RemoteBuild) => {
    const end = Date.now();
    rec.putsAtEnd = await puts();
    let n = rec.putsAtEnd;
    let lastAt = end;
    while (Date.now() - lastAt < 10_000 && Date.now() - end < 120_000) {
      await new Promise((res) => setTimeout(res, 50));
      const m = await puts();
      if (m !== n) [n, lastAt] = [m, Date.now()];
    }
    rec.puts = n;
    rec.lastUploadAfter = (lastAt - end) / 1000;
  };
  try {
    const order: [RemoteScenario, Tool, ((rec: RemoteBuild) => Promise<void>) | undefined][] = [
      ['cold-local', local, undefined],
      ['cold-remote', remote, watchUploads],
    ];
    if (r % 2 === 1) order.reverse();
    for (const [scenario, t, after] of order) {
      await c.withTree('vrift', async () => {
        await t.reset(); // empty local store, new daemon
        await timed(scenario, r, t, t.env, after, after ? serve.proc.pid : undefined);
      });
    }
  } finally {
    await local.close().catch(() => {});
    await remote.close().catch(() => {});
    await serve.stop();
  }
}

// One compile whose object carries 64 MB of near-incompressible data: machine A stores and
// uploads it (streamed); machine B, with an empty store, streams it from the server into its
// store and into place. VmRSS of B's daemon and of the server before and after shows
// whether big blobs are held whole.
async function bigBlob(c: RemoteContext, serve: ServeProc): Promise<RemoteResults['bigBlob']> {
  const bytes = 64 * 2 ** 20;
  const dir = path.join(c.workDir, 'bigblob');
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  writeBigSource(path.join(dir, 'big.c'), bytes);
  const past = new Date(Date.now() - 60_000);
  fs.utimesSync(path.join(dir, 'big.c'), past, past);
  const a = await vriftWith('bigblob-a', { VRIFT_REMOTE: serve.url }, c);
  const b = await vriftWith('bigblob-b', { VRIFT_REMOTE: serve.url }, c);
  const shim = a.launcher[0];
  const compile = (t: Tool) => run([shim, 'gcc', '-c', 'big.c', '-o', 'big.o'], { cwd: dir, env: t.env, logFile: c.logFile });
  // Peak resident memory (VmHWM) over the transfer against the resident size before it.
  const peak = (pid: number | undefined) => rssKiB(pid, 'VmHWM');
  try {
    await a.reset();
    const pidA = (await a.daemon?.())?.pid;
    const uploaderBefore = rssKiB(pidA);
    await a.beginBuild();
    await compile(a);
    for (let i = 0; i < 300; i++) {
      // the upload runs in the background: wait for it
      const raw = (await a.stats())?.raw as Record<string, number> | undefined;
      if (!raw?.['remote.queued']) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const uploaderPeak = peak(pidA);
    await a.close();
    await b.reset();
    fs.rmSync(path.join(dir, 'big.o'), { force: true });
    const pid = (await b.daemon?.())?.pid;
    const daemonBefore = rssKiB(pid);
    const serverBefore = rssKiB(serve.proc.pid);
    await b.beginBuild();
    await compile(b);
    const s = await b.stats();
    const daemonAfter = peak(pid);
    const serverAfter = peak(serve.proc.pid);
    const fetched = (s?.hits ?? 0) === 1 && (remoteCounters(s)?.bytes_down ?? 0) >= bytes / 2;
    c.log(
      `big blob: fetched ${fetched}; peak VmRSS: uploading daemon ${uploaderBefore} → ${uploaderPeak} KiB, fetching daemon ${daemonBefore} → ${daemonAfter} KiB, server ${serverBefore} → ${serverAfter} KiB`,
    );
    return { bytes, uploaderBefore, uploaderPeak, daemonBefore, daemonAfter, serverBefore, serverAfter, fetched };
  } catch (e) {
    return { bytes, fetched: false, error: (e as Error).message.split('\n')[0] };
  } finally {
    await a.close().catch(() => {});
    await b.close().catch(() => {});
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
