import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { instance, run } from './helpers/instance.js';
import { cargo, counted, ensureDebianCrates } from './helpers/rust.js';
import { workloadTree } from './helpers/workloads.js';

// End to end: ripgrep 13 from Debian's source package, built offline against Debian's
// crates (shared/notes/workloads.md §2), through vrift, then `cargo clean` and rebuilt.
// Debug profile with incremental off: the release build takes minutes on two shared cores.
// The pinned source tree comes from bench/workloads.json (scripts/fetch-sources.sh also
// installs the librust-* packages it builds against).
test.serial('ripgrep 13 builds through vrift, and rebuilds after cargo clean from the cache alone', async (t) => {
  t.timeout(20 * 60_000);
  ensureDebianCrates();
  const v = instance(t);
  const c = cargo(v);
  const rg = path.join(v.dir, 'ripgrep');
  workloadTree('ripgrep', rg);
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
  const bypassed = Object.values(warm.fallbacks).reduce((a, b) => a + b, 0);
  t.log(`cold: ${cold.misses} misses, uncacheable ${JSON.stringify(cold.uncacheable)}; warm: ${warm.hits} hits, ${warm.misses} misses, ` +
    `uncacheable ${JSON.stringify(warm.uncacheable)}, shim fallbacks ${JSON.stringify(warm.fallbacks)}`);
  t.is(warm.value.code, 0, warm.value.err);
  if (warm.hits !== cold.misses) {
    // Say why: the shim's fall-backs and the daemon's warnings.
    for (const f of ['fallback.ndjson', 'vriftd.ndjson']) {
      const p = path.join(v.home, 'log', f);
      if (fs.existsSync(p)) t.log(`${f}:\n${fs.readFileSync(p, 'utf8').split('\n').filter((l) => !/"level":"(debug|info)"/.test(l)).slice(-40).join('\n')}`);
    }
  }
  t.is(warm.misses, 0);
  // A daemon starved on a loaded machine makes the shim step aside (it says so in
  // log/fallback.ndjson); every other call must be a hit or the same pass-through as before.
  const calls = (x: typeof cold) => x.hits + x.misses + Object.values(x.uncacheable).reduce((a, b) => a + b, 0);
  t.is(calls(warm) + bypassed, calls(cold), 'every rustc call is accounted for');
  t.true(warm.hits >= cold.misses - bypassed, 'every library crate hits');

  const version = await run(bin, ['--version']);
  t.is(version.code, 0);
  t.is(version.out.split('\n')[0], 'ripgrep 13.0.0');
  fs.writeFileSync(path.join(v.dir, 'haystack.txt'), 'alpha\nneedle one\nbeta\nneedle two\n');
  const found = await run(bin, ['-n', 'needle', path.join(v.dir, 'haystack.txt')]);
  t.is(found.out, '2:needle one\n4:needle two\n');
  t.true(fs.readFileSync(bin).equals(coldBin), 'the binary linked from cached rlibs is byte-identical');
});
