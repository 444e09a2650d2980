import fs from 'node:fs';
import path from 'node:path';
import { age, ROOT, run, SHIM, type Instance, type RunResult } from './instance.js';

// Cargo offline against the crates Debian packages under /usr/share/cargo/registry.
export const REGISTRY = '/usr/share/cargo/registry';
export const FIXTURE = path.join(ROOT, 'test', 'fixtures', 'rust-ws');
const DEBIAN_CRATES: [string, string][] = [
  ['itoa-', 'librust-itoa-dev'],
  ['cfg-if-', 'librust-cfg-if-dev'],
];

// The fixture's Debian crates come from install.sh (no test installs anything).
export function ensureDebianCrates() {
  const have = fs.existsSync(REGISTRY) ? fs.readdirSync(REGISTRY) : [];
  const missing = DEBIAN_CRATES.filter(([prefix]) => !have.some((n) => n.startsWith(prefix))).map(([, pkg]) => pkg);
  if (missing.length) throw new Error(`${missing.join(', ')} missing under ${REGISTRY}: \`bash install.sh --no-demo\` installs them`);
}

export function cargoHome(dir: string): string {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(
    path.join(dir, 'config.toml'),
    `[source.crates-io]\nreplace-with = "debian"\n[source.debian]\ndirectory = "${REGISTRY}"\n[net]\noffline = true\n`,
  );
  return dir;
}

function walk(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

// A copy of the fixture workspace with its files' mtimes in the past (see `age`).
export function copyWorkspace(dest: string): string {
  fs.cpSync(FIXTURE, dest, { recursive: true, filter: (src) => !src.includes(`${path.sep}target`) });
  age(...walk(dest));
  return dest;
}

export interface Cargo {
  home: string;
  env: NodeJS.ProcessEnv;
  build(ws: string, args?: string[], env?: NodeJS.ProcessEnv): Promise<RunResult>;
  clean(ws: string): Promise<void>;
  app(ws: string): Promise<string>;
}

// Cargo with vrift as RUSTC_WRAPPER, incremental off (cargo turns it on for workspace
// members in dev builds, and incremental compiles are not cacheable).
export function cargo(v: Instance): Cargo {
  ensureDebianCrates();
  const home = cargoHome(path.join(v.home, '..', 'cargo-home'));
  const env: NodeJS.ProcessEnv = {
    ...v.env,
    CARGO_HOME: home,
    RUSTC_WRAPPER: SHIM,
    CARGO_INCREMENTAL: '0',
    CARGO_TERM_COLOR: 'never',
    VRIFT_FIXTURE_GREETING: 'hello',
  };
  return {
    home,
    env,
    build: (ws, args = [], extra = {}) => run('cargo', ['build', '-j2', ...args], { cwd: ws, env: { ...env, ...extra } }),
    clean: async (ws) => {
      const r = await run('cargo', ['clean'], { cwd: ws, env });
      if (r.code !== 0) throw new Error(`cargo clean failed: ${r.err}`);
    },
    app: async (ws) => {
      const r = await run(path.join(ws, 'target', 'debug', 'wsapp'), [], {});
      if (r.code !== 0) throw new Error(`wsapp failed: ${r.err}`);
      return r.out.trim();
    },
  };
}

// Counters of one build: the difference of two `vrift stats --json` snapshots.
export async function counted<T>(
  v: Instance,
  f: () => Promise<T>,
): Promise<{
  value: T;
  hits: number;
  misses: number;
  stored: number;
  uncacheable: Record<string, number>;
  notStored: Record<string, number>;
  fallbacks: Record<string, number>;
}> {
  const before = await v.stats();
  const value = await f();
  const after = await v.stats();
  const diff = (a: Record<string, number>, b: Record<string, number>) =>
    Object.fromEntries(
      Object.entries(a)
        .map(([k, n]) => [k, n - (b[k] ?? 0)])
        .filter(([, n]) => n !== 0),
    );
  return {
    value,
    hits: after.hits - before.hits,
    misses: after.misses - before.misses,
    stored: after.stored - before.stored,
    uncacheable: diff(after.uncacheable, before.uncacheable),
    notStored: diff(after.not_stored, before.not_stored),
    fallbacks: diff(after.shim_fallbacks ?? {}, before.shim_fallbacks ?? {}),
  };
}

export function filesUnder(dir: string): string[] {
  return fs.existsSync(dir) ? walk(dir) : [];
}
