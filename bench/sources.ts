import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// The pinned Debian source packages (bench/workloads.json) and where they are unpacked.
// Shared by the benchmark and the end-to-end tests (through test/helpers/workloads.ts).

export interface SourcePin {
  name: string; // workload name: redis, libuv, zstd, leveldb
  source: string; // Debian source package
  version: string; // Debian version, with epoch
  dsc: string;
  dscSha256: string;
  dir: string; // tree under the source cache
}

export interface Manifest {
  distribution: string;
  packages: string[];
  sources: SourcePin[];
}

// dist/bench/sources.js and bench/sources.ts both sit two levels below the repo root.
const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, here.includes(`${path.sep}dist${path.sep}`) ? '../..' : '..');

export function readManifest(root = repoRoot): Manifest {
  return JSON.parse(fs.readFileSync(path.join(root, 'bench', 'workloads.json'), 'utf8')) as Manifest;
}

export function sourceCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.VRIFT_SRC_CACHE || path.join(env.HOME || os.homedir(), '.cache', 'vrift', 'src');
}

/** Runs scripts/fetch-sources.sh (a fast no-op once everything is there); returns the cache dir. */
export function ensureSources(opts: { dest?: string; root?: string; quiet?: boolean } = {}): string {
  const dest = opts.dest ?? sourceCacheDir();
  const root = opts.root ?? repoRoot;
  execFileSync(path.join(root, 'scripts', 'fetch-sources.sh'), [dest], {
    stdio: ['ignore', opts.quiet ? 'ignore' : 'inherit', opts.quiet ? 'pipe' : 'inherit'],
  });
  return dest;
}

/** Pristine tree of a workload; call ensureSources() first. Never build in it: copy it. */
export function pristineTree(name: string, dest = sourceCacheDir(), manifest = readManifest()): string {
  const pin = manifest.sources.find((s) => s.name === name);
  if (!pin) throw new Error(`unknown workload source: ${name}`);
  const dir = path.join(dest, pin.dir);
  if (!fs.existsSync(dir)) throw new Error(`${dir} missing: run scripts/fetch-sources.sh`);
  return dir;
}

/**
 * Lua as Debian's redis vendors it (deps/lua/src with its own Makefile, and the one redis
 * header it includes), copied under `to`; returns the source dir. Call ensureSources() first.
 */
export function luaTree(to: string): string {
  const redis = pristineTree('redis');
  const src = path.join(to, 'redis', 'deps', 'lua', 'src');
  fs.mkdirSync(path.join(to, 'redis', 'src'), { recursive: true });
  fs.mkdirSync(path.dirname(src), { recursive: true });
  // cp -a keeps the sources' old mtimes: they predate every compile.
  execFileSync('cp', ['-a', path.join(redis, 'deps', 'lua', 'src'), src]);
  execFileSync('cp', ['-a', path.join(redis, 'src', 'solarisfixes.h'), path.join(to, 'redis', 'src')]);
  return src;
}

/** Fresh writable copy of a workload's pristine tree at `to` (replaced if present). */
export function copyTree(name: string, to: string, dest = sourceCacheDir()): string {
  const from = pristineTree(name, dest);
  fs.rmSync(to, { recursive: true, force: true });
  fs.mkdirSync(path.dirname(to), { recursive: true });
  // cp -a keeps mtimes, so make sees the same tree every time.
  execFileSync('cp', ['-a', from, to]);
  return to;
}
