import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { capture } from './exec.js';

// The caches under test. Each gets its own cache directory (and sccache its own port,
// since 4226 is shared machine-wide), an environment, a compiler launcher, a way to
// empty its cache, and its own hit/miss counters.

export interface BuildStats {
  hits: number | null;
  misses: number | null;
  uncacheable: number | null;
  raw?: unknown;
}

export interface DaemonInfo {
  pid?: number;
  rssKiB?: number;
  store?: Record<string, number>;
  /** Lookup time inside the daemon per outcome: 'hit.p50_ms', 'hit.p99_ms', ... */
  latency?: Record<string, number>;
}

export interface Tool {
  readonly name: string;
  /** Why it cannot run here, or undefined. */
  readonly unavailable?: string;
  readonly launcher: string[];
  /** The launcher takes link steps too (cmake's linker launcher): vrift caches them. */
  readonly linksToo?: boolean;
  readonly env: NodeJS.ProcessEnv;
  /** Empty the cache (and restart a server) before a cold build. */
  reset(): Promise<void>;
  /** Called right before each timed build; stats() then reports that build only. */
  beginBuild(): Promise<void>;
  stats(): Promise<BuildStats | null>;
  daemon?(): Promise<DaemonInfo | null>;
  /** A background process of the tool's (vrift's daemon) whose CPU a build's record shows. */
  serverPid?(): Promise<number | undefined>;
  close(): Promise<void>;
}

export interface ToolOptions {
  cacheRoot: string; // per-run directory; each tool uses cacheRoot/<name>
  repoRoot: string;
  /** Where vrift's shim and dist/ are taken from (a snapshot of repoRoot, see snapshot.ts). */
  vriftRoot?: string;
  vriftEnv?: Record<string, string>;
  baseEnv: NodeJS.ProcessEnv;
}

export const TOOL_NAMES = ['plain', 'ccache', 'sccache', 'vrift'] as const;
export type ToolName = (typeof TOOL_NAMES)[number];

const num = (x: unknown): number => (typeof x === 'number' && Number.isFinite(x) ? x : 0);
const sumValues = (o: unknown): number =>
  o && typeof o === 'object' ? Object.values(o as Record<string, unknown>).reduce<number>((a, v) => a + num(v), 0) : 0;

function which(cmd: string, env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of (env.PATH ?? '').split(':')) {
    const p = path.join(dir, cmd);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      // keep looking
    }
  }
  return undefined;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function plain(opts: ToolOptions): Tool {
  return {
    name: 'plain',
    launcher: [],
    env: opts.baseEnv,
    reset: async () => {},
    beginBuild: async () => {},
    stats: async () => null,
    close: async () => {},
  };
}

// ccache's machine-readable counters; the ones that mean "could not cache this call".
const CCACHE_UNCACHEABLE = [
  'autoconf_test',
  'bad_compiler_arguments',
  'called_for_link',
  'called_for_preprocessing',
  'compiler_produced_no_output',
  'compiler_produced_stdout',
  'could_not_use_modules',
  'could_not_use_precompiled_header',
  'multiple_source_files',
  'no_input_file',
  'output_to_stdout',
  'preprocessor_error',
  'unsupported_code_directive',
  'unsupported_compiler_option',
  'unsupported_environment_variable',
  'unsupported_source_language',
  'compile_failed',
];

function ccache(opts: ToolOptions): Tool {
  const dir = path.join(opts.cacheRoot, 'ccache');
  const conf = path.join(opts.cacheRoot, 'ccache.conf');
  // An empty config file so /etc/ccache.conf or ~/.config/ccache cannot change what we measure.
  const env = { ...opts.baseEnv, CCACHE_DIR: dir, CCACHE_CONFIGPATH: conf };
  const bin = which('ccache', env);
  return {
    name: 'ccache',
    unavailable: bin ? undefined : 'ccache not on PATH',
    launcher: ['ccache'],
    env,
    reset: async () => {
      fs.rmSync(dir, { recursive: true, force: true });
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(conf, '');
    },
    beginBuild: async () => {
      capture(['ccache', '-z'], { env });
    },
    stats: async () => {
      const r = capture(['ccache', '--print-stats'], { env });
      if (!r.ok) return null;
      const c: Record<string, number> = {};
      for (const line of r.stdout.split('\n')) {
        const [k, v] = line.split('\t');
        if (k && v !== undefined) c[k] = Number(v);
      }
      return {
        hits: num(c.direct_cache_hit) + num(c.preprocessed_cache_hit),
        misses: num(c.cache_miss),
        uncacheable: CCACHE_UNCACHEABLE.reduce((a, k) => a + num(c[k]), 0),
        raw: c,
      };
    },
    close: async () => {},
  };
}

async function sccache(opts: ToolOptions): Promise<Tool> {
  const dir = path.join(opts.cacheRoot, 'sccache');
  const env: NodeJS.ProcessEnv = {
    ...opts.baseEnv,
    SCCACHE_DIR: dir,
    SCCACHE_SERVER_PORT: String(await freePort()),
    SCCACHE_IDLE_TIMEOUT: '0',
    SCCACHE_CACHE_SIZE: '20G',
    SCCACHE_CONF: path.join(opts.cacheRoot, 'sccache-no-config.toml'),
  };
  delete env.SCCACHE_LOG;
  delete env.RUSTC_WRAPPER;
  const bin = which('sccache', env);
  const stop = () => capture(['sccache', '--stop-server'], { env });
  return {
    name: 'sccache',
    unavailable: bin ? undefined : 'sccache not on PATH',
    launcher: ['sccache'],
    env,
    reset: async () => {
      stop();
      fs.rmSync(dir, { recursive: true, force: true });
      fs.mkdirSync(dir, { recursive: true });
      // Started here, untimed, as in the notes' recipe.
      const r = capture(['sccache', '--start-server'], { env });
      if (!r.ok) throw new Error(`sccache --start-server failed: ${r.stderr}`);
    },
    beginBuild: async () => {
      capture(['sccache', '--zero-stats'], { env });
    },
    stats: async () => {
      const r = capture(['sccache', '--show-stats', '--stats-format=json'], { env });
      if (!r.ok) return null;
      try {
        const s = (JSON.parse(r.stdout) as { stats: Record<string, unknown> }).stats;
        return {
          hits: sumValues((s.cache_hits as { counts?: unknown })?.counts),
          misses: sumValues((s.cache_misses as { counts?: unknown })?.counts),
          uncacheable: num(s.requests_not_cacheable) + num(s.requests_not_compile) + num(s.requests_unsupported_compiler) + num(s.non_cacheable_compilations),
          raw: s,
        };
      } catch {
        return null;
      }
    },
    close: async () => {
      stop();
    },
  };
}

type Flat = Record<string, number>;
function flatten(o: unknown, prefix = '', out: Flat = {}): Flat {
  if (o && typeof o === 'object' && !Array.isArray(o)) {
    for (const [k, v] of Object.entries(o)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else if (typeof o === 'number' && Number.isFinite(o)) {
    out[prefix] = o;
  }
  return out;
}

/** Shallowest counter whose last path segment is one of `names`. */
function pick(flat: Flat, names: string[]): number | null {
  const found = Object.keys(flat)
    .filter((k) => names.includes(k.split('.').pop()!))
    .sort((a, b) => a.split('.').length - b.split('.').length);
  return found.length > 0 ? flat[found[0]] : null;
}

/** `uncacheable` as a number, or the sum of an `uncacheable: {reason: n}` map (the shallowest one). */
function sumUnder(flat: Flat, segment: string): number | null {
  const direct = pick(flat, [segment]);
  if (direct !== null) return direct;
  const groups = new Map<string, number>();
  for (const [k, v] of Object.entries(flat)) {
    const parts = k.split('.');
    if (parts.length >= 2 && parts[parts.length - 2] === segment) {
      const prefix = parts.slice(0, -1).join('.');
      groups.set(prefix, (groups.get(prefix) ?? 0) + v);
    }
  }
  if (groups.size === 0) return null;
  const shallowest = [...groups.keys()].sort((a, b) => a.split('.').length - b.split('.').length)[0];
  return groups.get(shallowest)!;
}

export interface VriftPaths {
  shim: string;
  cli: string;
  daemon: string;
  tsShim: string;
}

export function vriftPaths(repoRoot: string): VriftPaths {
  return {
    shim: path.join(repoRoot, 'native', 'build', 'vrift-shim'),
    cli: path.join(repoRoot, 'dist', 'shim', 'cli.js'),
    daemon: path.join(repoRoot, 'dist', 'daemon', 'main.js'),
    tsShim: path.join(repoRoot, 'dist', 'shim', 'shim.js'),
  };
}

// The vrift client side, through the CLI (`vrift stats --json`, `vrift daemon ...`) as a
// user would; if the CLI does not answer with JSON, through the same library the CLI uses.
interface VriftClient {
  stats(): Promise<unknown>;
  status(): Promise<unknown>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

function vriftClient(p: VriftPaths, repoRoot: string, env: NodeJS.ProcessEnv): VriftClient {
  const cliJson = (...args: string[]): unknown => {
    if (!fs.existsSync(p.cli)) return undefined;
    // `daemon status` exits 1 when none runs but still prints its JSON.
    const r = capture([process.execPath, p.cli, ...args], { env, timeoutMs: 20_000 });
    try {
      return JSON.parse(r.stdout);
    } catch {
      return undefined;
    }
  };
  const lib = async () => {
    try {
      const dc = await import(path.join(repoRoot, 'dist', 'shim', 'daemon-control.js'));
      const ipc = await import(path.join(repoRoot, 'dist', 'ipc', 'client.js'));
      const paths = await import(path.join(repoRoot, 'dist', 'ipc', 'paths.js'));
      return { dc, ipc, endpoint: paths.instancePaths(env).endpoint as string, sock: paths.instancePaths(env) };
    } catch {
      return undefined;
    }
  };
  return {
    stats: async () => {
      const viaCli = cliJson('stats', '--json');
      if (viaCli !== undefined) return viaCli;
      const l = await lib();
      if (!l) return undefined;
      try {
        await l.dc.ensureDaemon(env);
        return ((await l.ipc.ipcCall(l.endpoint, { t: 'stats', zero: false })) as { stats: unknown }).stats;
      } catch {
        return undefined;
      }
    },
    status: async () => {
      const viaCli = cliJson('daemon', 'status', '--json');
      if (viaCli !== undefined) return viaCli;
      const l = await lib();
      return l ? await l.dc.ping(l.sock, 2000).catch(() => undefined) : undefined;
    },
    start: async () => {
      if (fs.existsSync(p.cli) && capture([process.execPath, p.cli, 'daemon', 'start'], { env }).ok) return;
      const l = await lib();
      await l?.dc.ensureDaemon(env).catch(() => {});
    },
    stop: async () => {
      if (fs.existsSync(p.cli) && capture([process.execPath, p.cli, 'daemon', 'stop'], { env }).ok) return;
      const l = await lib();
      await l?.dc.stopDaemon(env).catch(() => {});
    },
  };
}

async function killAndWait(pid: number) {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  for (let i = 0; i < 50; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

function vrift(opts: ToolOptions): Tool {
  const root = opts.vriftRoot ?? opts.repoRoot;
  const p = vriftPaths(root);
  const home = path.join(opts.cacheRoot, 'vrift');
  const env: NodeJS.ProcessEnv = { ...opts.baseEnv, ...opts.vriftEnv, VRIFT_HOME: home, VRIFT_IDLE_TIMEOUT: '0' };
  const missing = [p.shim, p.daemon].filter((f) => !fs.existsSync(f));
  const client = vriftClient(p, root, env);
  let before: Flat = {};
  const readStats = async (): Promise<Flat | undefined> => {
    const s = await client.stats();
    return s === undefined ? undefined : flatten(s);
  };
  const daemonPid = async (): Promise<number | undefined> => {
    const s = await client.status();
    return (s ? pick(flatten(s), ['pid']) : null) ?? undefined;
  };
  const stopDaemon = async () => {
    const pid = await daemonPid();
    await client.stop();
    // Started by our shim under our VRIFT_HOME: ours to stop if it ignored the request.
    if (pid !== undefined) await killAndWait(pid);
  };
  return {
    name: 'vrift',
    unavailable: missing.length > 0 ? `missing ${missing.map((f) => path.relative(root, f)).join(', ')}` : undefined,
    launcher: [p.shim],
    linksToo: true,
    env,
    reset: async () => {
      await stopDaemon();
      fs.rmSync(home, { recursive: true, force: true });
      fs.mkdirSync(home, { recursive: true });
      // Started untimed, as sccache's server is; without a client the first shim autostarts it.
      await client.start();
    },
    beginBuild: async () => {
      before = (await readStats()) ?? {};
    },
    stats: async () => {
      const after = await readStats();
      if (!after) return null;
      const delta: Flat = {};
      for (const [k, v] of Object.entries(after)) delta[k] = v - (before[k] ?? 0);
      const hits = pick(delta, ['hits', 'hit']);
      return {
        hits,
        misses: pick(delta, ['misses', 'miss']),
        uncacheable: sumUnder(delta, 'uncacheable') ?? (hits !== null ? 0 : null),
        raw: delta,
      };
    },
    daemon: async () => {
      const pid = await daemonPid();
      const s = await readStats();
      const store: Record<string, number> = {};
      const latency: Record<string, number> = {};
      for (const [k, v] of Object.entries(s ?? {})) {
        if (k.startsWith('latency.')) latency[k.slice('latency.'.length)] = v;
        else if (/bytes|entries|size|count|blobs/i.test(k) && !/hit|miss/i.test(k)) store[k] = v;
      }
      let rssKiB: number | undefined;
      if (pid) {
        try {
          const m = /VmRSS:\s+(\d+)\s+kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
          if (m) rssKiB = Number(m[1]);
        } catch {
          // gone already
        }
      }
      return { pid, rssKiB, store, latency };
    },
    serverPid: daemonPid,
    close: stopDaemon,
  };
}

export async function createTools(names: readonly ToolName[], opts: ToolOptions): Promise<Tool[]> {
  fs.mkdirSync(opts.cacheRoot, { recursive: true });
  const out: Tool[] = [];
  for (const n of names) {
    if (n === 'plain') out.push(plain(opts));
    else if (n === 'ccache') out.push(ccache(opts));
    else if (n === 'sccache') out.push(await sccache(opts));
    else if (n === 'vrift') out.push(vrift(opts));
  }
  return out;
}
