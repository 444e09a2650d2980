import fs from 'node:fs';
import path from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { parsePeers } from './peers.js';
import { parseRemoteUrl } from './remote-url.js';
import { defaultSigningKeyPath } from '../trust/key-file.js';
import { parseTrustedKeys } from '../trust/keys.js';
import { parseDuration, parseSize } from './units.js';
import { VriftError } from '../ipc/errors.js';
import { instancePaths, type InstancePaths } from '../ipc/paths.js';

// Effective configuration with provenance. Order (later wins): built-in defaults,
// user config ($VRIFT_HOME/config.toml), project velo.toml (nearest walking up from cwd),
// VRIFT_* environment, command-line flags. Section [l2_cache] as in DESIGN.md.
// Each key has a scope (docs/configuration.md): a project key is applied per compile from
// the compile's directory and environment (config/project-config.ts); an instance key is
// read once when the daemon starts, and a project's velo.toml does not set it.
export interface Config {
  enabled: boolean;
  local_path: string;
  max_local_size: number; // bytes
  max_age: number; // ms, 0 = no age eviction
  base_dir: string; // paths sharing more than this prefix with cwd are keyed relative to cwd
  idle_timeout: number; // ms, 0 = never
  log_level: 'debug' | 'info' | 'warn' | 'error';
  remote_url: string;
  remote_token: string; // Bearer token for the remote (user:pass in remote_url gives Basic)
  remote_timeout: number; // ms without a byte before a remote operation is abandoned
  remote_wait: number; // ms a lookup waits for the remote before it compiles locally
  read_only: boolean;
  remote_packs: boolean; // upload entries in packs and fetch the packs a hit names (tiers/bundle.ts)
  cache_targets: string[];
  cache_extensions: string[];
  watch_inputs: boolean; // inotify on input directories instead of a stat per input per lookup
  spare_files: number; // empty files made ahead for hits' outputs (frontends/materialize.ts), 0 = none
  peers: string; // LAN peers: 'off', 'mdns' or 'host:port,...' (peers.ts)
  peer_port: number; // where this daemon serves its store to peers, 0 = any free port
  peer_wait: number; // ms a lookup waits for peers before it goes on without them
  signing_key: string; // secret key the daemon signs its entries with (made on first start when it is the default)
  trusted_keys: string[]; // `name:base64` public keys whose entries are used from peers (and the remote, below)
  remote_require_signatures: boolean; // the remote's entries too: only those signed by a trusted key (or this instance's own)
  live: boolean; // keep every seen compile's inputs hot and warm what changed (daemon/live/)
  lazy_dirs: string[]; // build output dirs `vrift mount` (no DIR) and `vrift run` mount (daemon/overlay/), absolute
}

export type Source = 'default' | 'user' | 'project' | 'env' | 'flag';
export interface ResolvedConfig {
  config: Readonly<Config>;
  sources: Record<keyof Config, { source: Source; where?: string }>;
  files: { user: string; project?: string };
  paths: InstancePaths;
  // Instance keys a velo.toml sets: not applied (the instance's value is in `config`).
  ignored: { key: keyof Config; where: string; value: unknown }[];
}

export type Scope = 'project' | 'instance';
type Kind = 'bool' | 'size' | 'duration' | 'path' | 'string' | 'url' | 'list' | 'paths' | 'level' | 'count' | 'peers' | 'port' | 'keys';
export const SCHEMA: Readonly<Record<keyof Config, { kind: Kind; env: string[]; scope: Scope }>> = {
  enabled: { kind: 'bool', env: ['VRIFT_ENABLED'], scope: 'project' },
  local_path: { kind: 'path', env: ['VRIFT_LOCAL_PATH'], scope: 'instance' },
  max_local_size: { kind: 'size', env: ['VRIFT_MAX_LOCAL_SIZE'], scope: 'instance' },
  max_age: { kind: 'duration', env: ['VRIFT_MAX_AGE'], scope: 'instance' },
  base_dir: { kind: 'path', env: ['VRIFT_BASE_DIR'], scope: 'project' },
  idle_timeout: { kind: 'duration', env: ['VRIFT_IDLE_TIMEOUT'], scope: 'instance' },
  log_level: { kind: 'level', env: ['VRIFT_LOG_LEVEL'], scope: 'instance' },
  remote_url: { kind: 'url', env: ['VRIFT_REMOTE', 'VRIFT_REMOTE_URL'], scope: 'instance' },
  remote_token: { kind: 'string', env: ['VRIFT_REMOTE_TOKEN'], scope: 'instance' },
  remote_timeout: { kind: 'duration', env: ['VRIFT_REMOTE_TIMEOUT'], scope: 'instance' },
  remote_wait: { kind: 'duration', env: ['VRIFT_REMOTE_WAIT'], scope: 'instance' },
  read_only: { kind: 'bool', env: ['VRIFT_READ_ONLY'], scope: 'instance' },
  remote_packs: { kind: 'bool', env: ['VRIFT_REMOTE_PACKS'], scope: 'instance' },
  cache_targets: { kind: 'list', env: ['VRIFT_CACHE_TARGETS'], scope: 'project' },
  cache_extensions: { kind: 'list', env: ['VRIFT_CACHE_EXTENSIONS'], scope: 'project' },
  watch_inputs: { kind: 'bool', env: ['VRIFT_WATCH_INPUTS'], scope: 'instance' },
  spare_files: { kind: 'count', env: ['VRIFT_SPARE_FILES'], scope: 'instance' },
  peers: { kind: 'peers', env: ['VRIFT_PEERS'], scope: 'instance' },
  peer_port: { kind: 'port', env: ['VRIFT_PEER_PORT'], scope: 'instance' },
  peer_wait: { kind: 'duration', env: ['VRIFT_PEER_WAIT'], scope: 'instance' },
  signing_key: { kind: 'path', env: ['VRIFT_SIGNING_KEY'], scope: 'instance' },
  trusted_keys: { kind: 'keys', env: ['VRIFT_TRUSTED_KEYS'], scope: 'instance' },
  remote_require_signatures: { kind: 'bool', env: ['VRIFT_REMOTE_REQUIRE_SIGNATURES'], scope: 'instance' },
  live: { kind: 'bool', env: ['VRIFT_LIVE'], scope: 'instance' },
  lazy_dirs: { kind: 'paths', env: ['VRIFT_LAZY_DIRS'], scope: 'project' },
};

export const CONFIG_KEYS = Object.keys(SCHEMA) as (keyof Config)[];
export type ProjectKey = 'enabled' | 'base_dir' | 'cache_targets' | 'cache_extensions';
export type ProjectSettings = Readonly<Pick<Config, ProjectKey>>;
// lazy_dirs is a project key read by the CLI only (vrift mount, vrift run): compiles do not carry it.
export const PROJECT_KEYS = CONFIG_KEYS.filter((k) => SCHEMA[k].scope === 'project' && k !== 'lazy_dirs') as ProjectKey[];
export const INSTANCE_KEYS = CONFIG_KEYS.filter((k) => SCHEMA[k].scope === 'instance');

export function defaults(paths: InstancePaths): Config {
  return {
    enabled: true,
    local_path: paths.defaultStore,
    max_local_size: 50 * 2 ** 30,
    max_age: 0,
    base_dir: '/',
    idle_timeout: 30 * 60_000,
    log_level: 'info',
    remote_url: '',
    remote_token: '',
    remote_timeout: 1000,
    remote_wait: 250,
    read_only: false,
    remote_packs: true,
    cache_targets: ['debug', 'release'],
    cache_extensions: ['.rlib', '.rmeta', '.o', '.a'],
    watch_inputs: true,
    spare_files: 1024,
    peers: 'off',
    peer_port: 0,
    peer_wait: 50,
    signing_key: defaultSigningKeyPath(paths.home),
    trusted_keys: [],
    remote_require_signatures: false,
    live: false,
    lazy_dirs: [],
  };
}

function expandHome(p: string, home: string): string {
  return p === '~' ? home : p.startsWith('~/') ? path.join(home, p.slice(2)) : p;
}

// `label` says where the value was written: file: key, an environment variable, a flag.
function coerce(key: keyof Config, raw: unknown, label: string, home: string, baseDir: string): unknown {
  const { kind } = SCHEMA[key];
  const fail = (): never => {
    throw new VriftError('ECONFIG', `${label}: invalid value ${JSON.stringify(raw)} for ${key} (expected ${kind})`, { fields: { key, where: label } });
  };
  switch (kind) {
    case 'bool':
      if (typeof raw === 'boolean') return raw;
      if (typeof raw === 'string' && /^(1|true|yes|on)$/i.test(raw)) return true;
      if (typeof raw === 'string' && /^(0|false|no|off)$/i.test(raw)) return false;
      return fail();
    case 'size':
      return parseSize(raw, label);
    case 'duration':
      return parseDuration(raw, label); // a bare number is seconds
    case 'path':
      return typeof raw === 'string' && raw.length > 0 ? path.resolve(baseDir, expandHome(raw, home)) : fail();
    case 'string':
      return typeof raw === 'string' ? raw : fail();
    case 'url':
      return parseRemoteUrl(raw, label);
    case 'level':
      return typeof raw === 'string' && ['debug', 'info', 'warn', 'error'].includes(raw) ? raw : fail();
    case 'count':
      if (typeof raw === 'number' && Number.isInteger(raw) && raw >= 0 && raw <= 1_000_000) return raw;
      if (typeof raw === 'string' && /^\d{1,7}$/.test(raw.trim()) && Number(raw) <= 1_000_000) return Number(raw);
      return fail();
    case 'peers':
      return parsePeers(raw, label);
    case 'port':
      if (typeof raw === 'number' && Number.isInteger(raw) && raw >= 0 && raw <= 65535) return raw;
      if (typeof raw === 'string' && /^\d{1,5}$/.test(raw.trim()) && Number(raw) <= 65535) return Number(raw);
      return fail();
    case 'list':
      if (Array.isArray(raw) && raw.every((x) => typeof x === 'string')) return raw;
      if (typeof raw === 'string')
        return raw
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean);
      return fail();
    case 'paths': {
      // Relative to the file that names them (a velo.toml: its project), or to the cwd.
      const list = Array.isArray(raw) && raw.every((x) => typeof x === 'string') ? raw : typeof raw === 'string' ? raw.split(',') : fail();
      return list
        .map((x) => x.trim())
        .filter(Boolean)
        .map((x) => path.resolve(baseDir, expandHome(x, home)));
    }
    case 'keys': {
      // Checked here, so a pasted line with a typo is an error where it was written, not a
      // daemon that quietly trusts nobody.
      const lines = Array.isArray(raw) && raw.every((x) => typeof x === 'string') ? raw : typeof raw === 'string' ? raw.split(',') : fail();
      return parseTrustedKeys(lines, label).map((k) => k.line);
    }
  }
}

function readToml(file: string): Record<string, unknown> | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new VriftError('ECONFIG', `cannot read ${file}: ${(e as Error).message}`, { cause: e });
  }
  try {
    return parseToml(text) as Record<string, unknown>;
  } catch (e) {
    throw new VriftError('ECONFIG', `${file}: ${(e as Error).message}`, { cause: e });
  }
}

/** The [l2_cache] table of a config file (undefined: no file, or no such section). Anything
 * else in the file is an error, as an unknown key inside the section is: a setting written
 * above the section header, or a misspelt section, would otherwise be silently ignored. */
export function readConfigFile(file: string): Record<string, unknown> | undefined {
  const doc = readToml(file);
  if (!doc) return undefined;
  for (const [k, v] of Object.entries(doc)) {
    if (k === 'l2_cache') continue;
    const table = typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
    throw new VriftError(
      'ECONFIG',
      table ? `${file}: unknown section [${k}] (settings go in [l2_cache])` : `${file}: unknown key ${k} at the top level (settings go in [l2_cache])`,
      { fields: { where: file, key: k } },
    );
  }
  const s = doc.l2_cache;
  if (s === undefined) return undefined;
  if (typeof s !== 'object' || s === null || Array.isArray(s)) throw new VriftError('ECONFIG', `${file}: [l2_cache] must be a table`);
  return s as Record<string, unknown>;
}

export function findProjectConfig(cwd: string, exists: (file: string) => boolean = fs.existsSync): string | undefined {
  for (let dir = path.resolve(cwd); ; dir = path.dirname(dir)) {
    const f = path.join(dir, 'velo.toml');
    if (exists(f)) return f;
    if (path.dirname(dir) === dir) return undefined;
  }
}

export interface Layers {
  paths: InstancePaths;
  env: NodeJS.ProcessEnv | Record<string, string>;
  cwd: string;
  user: { file: string; table?: Record<string, unknown> };
  project?: { file: string; table?: Record<string, unknown> };
  flags?: Partial<Record<keyof Config, unknown>>;
  keys?: readonly (keyof Config)[]; // only these (the rest stay defaults)
}

/** Defaults, then the user file, the project file (project keys only), the environment and
 * flags, for `keys` (all by default). */
export function resolveLayers(l: Layers): Omit<ResolvedConfig, 'files' | 'paths'> {
  const keys = new Set(l.keys ?? CONFIG_KEYS);
  const home = l.env.HOME || '/';
  const config = defaults(l.paths) as unknown as Record<string, unknown>;
  const sources = {} as ResolvedConfig['sources'];
  const ignored: ResolvedConfig['ignored'] = [];
  for (const k of CONFIG_KEYS) sources[k] = { source: 'default' };

  const apply = (table: Record<string, unknown> | undefined, source: Source, where: string, dir: string) => {
    if (!table) return;
    for (const [k, v] of Object.entries(table)) {
      if (!(k in SCHEMA)) throw new VriftError('ECONFIG', `${where}: unknown key ${k} (known: ${CONFIG_KEYS.join(', ')})`);
      const key = k as keyof Config;
      if (source === 'project' && SCHEMA[key].scope === 'instance') {
        ignored.push({ key, where, value: coerce(key, v, `${where}: ${k}`, home, dir) });
        continue;
      }
      if (!keys.has(key)) continue;
      config[k] = coerce(key, v, `${where}: ${k}`, home, dir);
      sources[key] = { source, where };
    }
  };
  apply(l.user.table, 'user', l.user.file, path.dirname(l.user.file));
  if (l.project) apply(l.project.table, 'project', l.project.file, path.dirname(l.project.file));
  for (const k of keys) {
    for (const name of SCHEMA[k].env) {
      const v = l.env[name];
      if (v !== undefined && v !== '') {
        config[k] = coerce(k, v, name, home, l.cwd);
        sources[k] = { source: 'env', where: name };
      }
    }
  }
  for (const [k, v] of Object.entries(l.flags ?? {})) {
    if (v === undefined) continue;
    config[k] = coerce(k as keyof Config, v, `--${k.replace(/_/g, '-')}`, home, l.cwd);
    sources[k as keyof Config] = { source: 'flag', where: `--${k.replace(/_/g, '-')}` };
  }
  return { config: Object.freeze(config as unknown as Config), sources, ignored };
}

/** What a compile in `cwd` gets (project: true, the default) or what a daemon started now
 * would run with (project: false: no velo.toml is read). */
export function loadConfig(
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; flags?: Partial<Record<keyof Config, unknown>>; project?: boolean } = {},
): ResolvedConfig {
  const env = opts.env ?? process.env;
  const cwd = opts.cwd ?? process.cwd();
  const paths = instancePaths(env);
  const userFile = env.VRIFT_CONFIG || paths.userConfig;
  const project = opts.project === false ? undefined : findProjectConfig(cwd);
  const r = resolveLayers({
    paths,
    env,
    cwd,
    flags: opts.flags,
    user: { file: userFile, table: readConfigFile(userFile) },
    project: project ? { file: project, table: readConfigFile(project) } : undefined,
  });
  return { ...r, files: { user: userFile, project }, paths };
}
