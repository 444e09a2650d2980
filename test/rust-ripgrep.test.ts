import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { sourceCacheDir } from '../bench/sources.js';
import { instance, run } from './helpers/instance.js';
import { cargo, counted, ensureDebianCrates, REGISTRY } from './helpers/rust.js';

// End to end: ripgrep 13 from Debian's source package, built offline against Debian's
// crates (shared/notes/workloads.md §2), through vrift, then `cargo clean` and rebuilt.
// Debug profile with incremental off: the release build takes minutes on two shared cores.

const CRATE_PACKAGES = [
  'librust-bstr-0.2+default-dev', 'librust-clap-2+suggestions-dev', 'librust-grep-dev', 'librust-ignore-0.4+default-dev',
  'librust-lazy-static-1+default-dev', 'librust-log-0.4+default-dev', 'librust-num-cpus-1+default-dev',
  'librust-regex-1+default-dev', 'librust-serde-json-1+default-dev', 'librust-termcolor-1+default-dev',
];
const CRATES = ['bstr-0.2', 'clap-2', 'grep-0', 'ignore-0.4', 'lazy_static-1', 'log-0.4', 'num_cpus-1', 'regex-1', 'serde_json-1', 'termcolor-1'];

// The pristine source tree (apt-get source, Debian patches applied), fetched once into
// the same cache the other workloads use.
function ripgrepSources(): string {
  const have = fs.existsSync(REGISTRY) ? fs.readdirSync(REGISTRY) : [];
  if (CRATES.some((c) => !have.some((n) => n.startsWith(c)))) {
    execFileSync('apt-get', ['install', '-y', '--no-install-recommends', ...CRATE_PACKAGES], { stdio: 'ignore', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  }
  const dl = path.join(sourceCacheDir(), 'rust-ripgrep');
  const tree = path.join(dl, 'rust-ripgrep-13.0.0');
  if (!fs.existsSync(path.join(tree, 'Cargo.toml'))) {
    fs.mkdirSync(dl, { recursive: true });
    execFileSync('apt-get', ['source', 'rust-ripgrep=13.0.0-4'], { cwd: dl, stdio: 'ignore' });
  }
  return tree;
}

test.serial('ripgrep 13 builds through vrift, and rebuilds after cargo clean from the cache alone', async (t) => {
  t.timeout(20 * 60_000);
  ensureDebianCrates();
  const v = instance(t);
  const c = cargo(v);
  const rg = path.join(v.dir, 'ripgrep');
  fs.cpSync(ripgrepSources(), rg, { recursive: true, filter: (src) => !src.includes(`${path.sep}target`) });
  fs.renameSync(path.join(rg, 'Cargo.lock'), path.join(rg, 'Cargo.lock.orig'));   // pins versions Debian lacks
  const toml = path.join(rg, 'Cargo.toml');
  fs.writeFileSync(toml, fs.readFileSync(toml, 'utf8').replace(/^simd-accel = .*\n/m, ''));   // Debian's grep has no simd-accel
  const lock = await run('cargo', ['generate-lockfile'], { cwd: rg, env: c.env });
  t.is(lock.code, 0, lock.err);

  const bin = path.join(rg, 'target', 'debug', 'rg');
  const cold = await counted(v, () => c.build(rg));
  t.is(cold.value.code, 0, cold.value.err);
  t.true(cold.misses >= 50, `library crates compiled and stored (${cold.misses})`);
  t.deepEqual(cold.notStored, {});
  t.is(cold.uncacheable.crate_type_proc_macro, 1, 'serde_derive');
  const coldBin = fs.readFileSync(bin);

  await c.clean(rg);
  const warm = await counted(v, () => c.build(rg));
  t.is(warm.value.code, 0, warm.value.err);
  t.is(warm.hits, cold.misses, 'every library crate hits');
  t.is(warm.misses, 0);
  t.log(`cold: ${cold.misses} misses; warm: ${warm.hits} hits, uncacheable ${JSON.stringify(warm.uncacheable)}`);

  const version = await run(bin, ['--version']);
  t.is(version.code, 0);
  t.is(version.out.split('\n')[0], 'ripgrep 13.0.0');
  fs.writeFileSync(path.join(v.dir, 'haystack.txt'), 'alpha\nneedle one\nbeta\nneedle two\n');
  const found = await run(bin, ['-n', 'needle', path.join(v.dir, 'haystack.txt')]);
  t.is(found.out, '2:needle one\n4:needle two\n');
  t.true(fs.readFileSync(bin).equals(coldBin), 'the binary linked from cached rlibs is byte-identical');
});
