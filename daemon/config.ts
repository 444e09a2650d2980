import fs from 'node:fs';
import path from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { parseDuration, parseSize } from '../config/units.js';
import { VriftError } from '../ipc/errors.js';
import { instancePaths, type InstancePaths } from '../ipc/paths.js';

// Effective configuration with provenance. Order (later wins): built-in defaults,
// user config ($VRIFT_HOME/config.toml), project velo.toml (nearest walking up from cwd),
// VRIFT_* environment, command-line flags. Section [l2_cache] as in DESIGN.md.
export interface Config {
  enabled: boolean;
  local_path: string;
  max_local_size: number;   // bytes
  max_age: number;          // ms, 0 = no age eviction
  base_dir: string;         // paths sharing more than this prefix with cwd are keyed relative to cwd
  idle_timeout: number;     // ms, 0 = never
  log_level: 'debug' | 'info' | 'warn' | 'error';
  remote_url: string;
  remote_token: string;     // Bearer token for the remote (user:pass in remote_url gives Basic)
  remote_timeout: number;   // ms without a byte before a remote operation is abandoned
  remote_wait: number;      // ms a lookup waits for the remote before it compiles locally
  read_only: boolean;
  remote_packs: boolean;    // upload entries in packs and fetch the packs a hit names (tiers/bundle.ts)
  cache_targets: string[];
  cache_extensions: string[];
  watch_inputs: boolean;    // inotify on input directories instead of a stat per input per lookup
  spare_files: number;      // empty files made ahead for hits' outputs (frontends/materialize.ts), 0 = none
}

export type Source = 'default' | 'user' | 'project' | 'env' | 'flag';
export interface ResolvedConfig {
  config: Readonly<Config>;
  sources: Record<keyof Config, { source: Source; where?: string }>;
  files: { user: string; project?: string };
  paths: InstancePaths;
}

type Kind = 'bool' | 'size' | 'duration' | 'path' | 'string' | 'list' | 'level' | 'count';
const SCHEMA: Record<keyof Config, { kind: Kind; env: string[] }> = {
  enabled: { kind: 'bool', env: ['VRIFT_ENABLED'] },
  local_path: { kind: 'path', env: ['VRIFT_LOCAL_PATH'] },
  max_local_size: { kind: 'size', env: ['VRIFT_MAX_LOCAL_SIZE'] },
  max_age: { kind: 'duration', env: ['VRIFT_MAX_AGE'] },
  base_dir: { kind: 'path', env: ['VRIFT_BASE_DIR'] },
  idle_timeout: { kind: 'duration', env: ['VRIFT_IDLE_TIMEOUT'] },
  log_level: { kind: 'level', env: ['VRIFT_LOG_LEVEL'] },
  remote_url: { kind: 'string', env: ['VRIFT_REMOTE', 'VRIFT_REMOTE_URL'] },
  remote_token: { kind: 'string', env: ['VRIFT_REMOTE_TOKEN'] },
  remote_timeout: { kind: 'duration', env: ['VRIFT_REMOTE_TIMEOUT'] },
  remote_wait: { kind: 'duration', env: ['VRIFT_REMOTE_WAIT'] },
  read_only: { kind: 'bool', env: ['VRIFT_READ_ONLY'] },
  remote_packs: { kind: 'bool', env: ['VRIFT_REMOTE_PACKS'] },
  cache_targets: { kind: 'list', env: ['VRIFT_CACHE_TARGETS'] },
  cache_extensions: { kind: 'list', env: ['VRIFT_CACHE_EXTENSIONS'] },
  watch_inputs: { kind: 'bool', env: ['VRIFT_WATCH_INPUTS'] },
  spare_files: { kind: 'count', env: ['VRIFT_SPARE_FILES'] },
};

export const CONFIG_KEYS = Object.keys(SCHEMA) as (keyof Config)[];

function defaults(paths: InstancePaths): Config {
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
    case 'level':
      return typeof raw === 'string' && ['debug', 'info', 'warn', 'error'].includes(raw) ? raw : fail();
    case 'count':
      if (typeof raw === 'number' && Number.isInteger(raw) && raw >= 0 && raw <= 1_000_000) return raw;
      if (typeof raw === 'string' && /^\d{1,7}$/.test(raw.trim()) && Number(raw) <= 1_000_000) return Number(raw);
      return fail();
    case 'list':
      if (Array.isArray(raw) && raw.every((x) => typeof x === 'string')) return raw;
      if (typeof raw === 'string') return raw.split(',').map((s) => s.trim()).filter(Boolean);
      return fail();
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

export function findProjectConfig(cwd: string): string | undefined {
  for (let dir = path.resolve(cwd); ; dir = path.dirname(dir)) {
    const f = path.join(dir, 'velo.toml');
    if (fs.existsSync(f)) return f;
    if (path.dirname(dir) === dir) return undefined;
  }
}

export function loadConfig(opts: { cwd?: string; env?: NodeJS.ProcessEnv; flags?: Partial<Record<keyof Config, unknown>> } = {}): ResolvedConfig {
  const env = opts.env ?? process.env;
  const cwd = opts.cwd ?? process.cwd();
  const paths = instancePaths(env);
  const home = env.HOME || '/';
  const config = defaults(paths) as unknown as Record<string, unknown>;
  const sources = {} as ResolvedConfig['sources'];
  for (const k of CONFIG_KEYS) sources[k] = { source: 'default' };

  const apply = (table: Record<string, unknown> | undefined, source: Source, where: string, dir: string) => {
    if (!table) return;
    for (const [k, v] of Object.entries(table)) {
      if (!(k in SCHEMA)) throw new VriftError('ECONFIG', `${where}: unknown key ${k} (known: ${CONFIG_KEYS.join(', ')})`);
      config[k] = coerce(k as keyof Config, v, `${where}: ${k}`, home, dir);
      sources[k as keyof Config] = { source, where };
    }
  };
  const section = (doc: Record<string, unknown> | undefined, file: string) => {
    const s = doc?.l2_cache;
    if (s === undefined) return undefined;
    if (typeof s !== 'object' || s === null || Array.isArray(s)) throw new VriftError('ECONFIG', `${file}: [l2_cache] must be a table`);
    return s as Record<string, unknown>;
  };

  const userFile = env.VRIFT_CONFIG || paths.userConfig;
  apply(section(readToml(userFile), userFile), 'user', userFile, path.dirname(userFile));
  const project = findProjectConfig(cwd);
  if (project) apply(section(readToml(project), project), 'project', project, path.dirname(project));
  for (const k of CONFIG_KEYS) {
    for (const name of SCHEMA[k].env) {
      if (env[name] !== undefined && env[name] !== '') {
        config[k] = coerce(k, env[name], name, home, cwd);
        sources[k] = { source: 'env', where: name };
      }
    }
  }
  for (const [k, v] of Object.entries(opts.flags ?? {})) {
    if (v === undefined) continue;
    config[k] = coerce(k as keyof Config, v, `--${k.replace(/_/g, '-')}`, home, cwd);
    sources[k as keyof Config] = { source: 'flag', where: `--${k.replace(/_/g, '-')}` };
  }
  return { config: Object.freeze(config as unknown as Config), sources, files: { user: userFile, project }, paths };
}
