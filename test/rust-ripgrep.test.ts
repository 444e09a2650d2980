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
  t.true(cold.misses >= 60, `crates compiled and stored (${cold.misses})`);
  t.deepEqual(cold.notStored, {});
  // Build scripts, serde_derive and rg itself are cached too (sccache leaves them out).
  t.false('crate_type_proc_macro' in cold.uncacheable);
  t.false('crate_type_bin' in cold.uncacheable);
  const coldBin = fs.readFileSync(bin);

  await c.clean(rg);
  const warm = await counted(v, () => c.build(rg));
  const bypassed = Object.values(warm.fallbacks).reduce((a, b) => a + b, 0);
  t.log(`cold: ${cold.misses} misses, uncacheable ${JSON.stringify(cold.uncacheable)}; warm: ${warm.hits} hits, ${warm.misses} misses, ` +
    `uncacheable ${JSON.stringify(warm.uncacheable)}, shim fallbacks ${JSON.stringify(warm.fallbacks)}`);
  t.is(warm.value.code, 0, warm.value.err);
  // Every miss of the rebuild says why in the daemon's log: the inputs its key is made of,
  // and why a stored entry for that key did not apply.
  type Miss = { crate: string; parts: string[]; stale: string[] };
  const misses = fs.readFileSync(path.join(v.home, 'log', 'vriftd.ndjson'), 'utf8').split('\n')
    .filter((l) => l.includes('"rust miss"')).map((l) => JSON.parse(l) as Miss);
  const warmMisses = misses.slice(cold.misses);
  t.is(warmMisses.length, warm.misses);
  for (const m of warmMisses) {
    const before = misses.slice(0, cold.misses).find((c) => c.crate === m.crate);
    const changed = before ? [...m.parts.filter((x) => !before.parts.includes(x)), ...before.parts.filter((x) => !m.parts.includes(x))] : [];
    t.log(`${m.crate} missed: key inputs that differ from the first build ${JSON.stringify(changed)}, stored entries not valid: ${JSON.stringify(m.stale)}`);
    // A crate may only miss when what it is built from changed (a build script's --cfg, a
    // dependency's bytes, a generated source): a miss with the same inputs is a cache bug.
    t.true(changed.length > 0 || m.stale.some((w) => /^(file|env) /.test(w)), `${m.crate} missed with unchanged inputs`);
  }
  if (warm.hits !== cold.misses) {
    const p = path.join(v.home, 'log', 'fallback.ndjson');
    if (fs.existsSync(p)) t.log(`fallback.ndjson:\n${fs.readFileSync(p, 'utf8')}`);
  }
  // A daemon starved on a loaded machine makes the shim step aside (log/fallback.ndjson);
  // every other call is a hit, an explained miss, or the same pass-through as before.
  const calls = (x: typeof cold) => x.hits + x.misses + Object.values(x.uncacheable).reduce((a, b) => a + b, 0);
  t.is(calls(warm) + bypassed, calls(cold), 'every rustc call is accounted for');
  t.true(warm.hits >= cold.misses - bypassed - warm.misses, 'every other library crate hits');
  t.true(warm.hits >= 40, `most crates hit (${warm.hits})`);

  const version = await run(bin, ['--version']);
  t.is(version.code, 0);
  t.is(version.out.split('\n')[0], 'ripgrep 13.0.0');
  fs.writeFileSync(path.join(v.dir, 'haystack.txt'), 'alpha\nneedle one\nbeta\nneedle two\n');
  const found = await run(bin, ['-n', 'needle', path.join(v.dir, 'haystack.txt')]);
  t.is(found.out, '2:needle one\n4:needle two\n');
  // Linked from cached rlibs, the binary is the one the first build made (unless an input
  // really changed between the builds, which the misses above then show).
  if (warm.misses === 0) t.true(fs.readFileSync(bin).equals(coldBin), 'the binary linked from cached rlibs is byte-identical');
});
