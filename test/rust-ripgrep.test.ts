import fs from 'node:fs';
import path from 'node:path';
import test from './helpers/test.js';
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
  // Patient shim deadlines: on a loaded machine a starved daemon would otherwise make the shim
  // step aside, and the warm build would not say whether every crate hits.
  const v = instance(t, { VRIFT_TIMEOUT_MS: '300000', VRIFT_DONE_TIMEOUT_MS: '300000', VRIFT_CONNECT_TIMEOUT_MS: '60000', VRIFT_START_TIMEOUT_MS: '120000' });
  const c = cargo(v);
  const rg = path.join(v.dir, 'ripgrep');
  workloadTree('ripgrep', rg);
  fs.renameSync(path.join(rg, 'Cargo.lock'), path.join(rg, 'Cargo.lock.orig')); // pins versions Debian lacks
  const toml = path.join(rg, 'Cargo.toml');
  fs.writeFileSync(toml, fs.readFileSync(toml, 'utf8').replace(/^simd-accel = .*\n/m, '')); // Debian's grep has no simd-accel
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
  const deps = path.join(rg, 'target', 'debug', 'deps');
  const built = (f: string) => /\.(rlib|rmeta|so)$/.test(f) || !f.includes('.');
  const coldDeps = new Map(
    fs
      .readdirSync(deps)
      .filter(built)
      .map((f) => [f, fs.readFileSync(path.join(deps, f))]),
  );
  const coldBin = fs.readFileSync(bin);

  await c.clean(rg);
  const warm = await counted(v, () => c.build(rg));
  const _bypassed = Object.values(warm.fallbacks).reduce((a, b) => a + b, 0);
  t.log(
    `cold: ${cold.misses} misses, uncacheable ${JSON.stringify(cold.uncacheable)}; warm: ${warm.hits} hits, ${warm.misses} misses, ` +
      `uncacheable ${JSON.stringify(warm.uncacheable)}, shim fallbacks ${JSON.stringify(warm.fallbacks)}`,
  );
  t.is(warm.value.code, 0, warm.value.err);
  // Every miss of the rebuild says why in the daemon's log: the inputs its key is made of,
  // and why a stored entry for that key did not apply.
  type Miss = { crate: string; parts: string[]; stale: string[] };
  const misses = fs
    .readFileSync(path.join(v.home, 'log', 'vriftd.ndjson'), 'utf8')
    .split('\n')
    .filter((l) => l.includes('"rust miss"'))
    .map((l) => JSON.parse(l) as Miss);
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
  // Every crate hits: the shim never stepped aside, every call is a hit, a miss explained
  // above, or the same pass-through as before.
  t.deepEqual(warm.fallbacks, {}, 'the shim asked the daemon for every call');
  const calls = (x: typeof cold) => x.hits + x.misses + Object.values(x.uncacheable).reduce((a, b) => a + b, 0);
  t.is(calls(warm), calls(cold), 'every rustc call is accounted for');
  t.deepEqual(warm.uncacheable, cold.uncacheable);
  t.is(warm.hits, cold.misses - warm.misses, 'every crate whose inputs did not change hits');

  const version = await run(bin, ['--version']);
  t.is(version.code, 0);
  t.is(version.out.split('\n')[0], 'ripgrep 13.0.0');
  fs.writeFileSync(path.join(v.dir, 'haystack.txt'), 'alpha\nneedle one\nbeta\nneedle two\n');
  const found = await run(bin, ['-n', 'needle', path.join(v.dir, 'haystack.txt')]);
  t.is(found.out, '2:needle one\n4:needle two\n');
  // What a hit wrote is what the first build made: every library, proc-macro and binary of a
  // crate that did not miss is byte-identical (a crate whose inputs really changed, listed
  // above, and everything built on it is compiled again and may differ).
  const missed = new Set(warmMisses.map((m) => m.crate));
  const ofCrate = (f: string) => /^(?:lib)?(.+?)-[0-9a-f]{16}(?:\.|$)/.exec(f)?.[1];
  let compared = 0;
  for (const [f, bytes] of coldDeps) {
    const crate = ofCrate(f);
    if (!crate || missed.has(crate)) continue;
    t.true(fs.readFileSync(path.join(deps, f)).equals(bytes), `${f} is byte-identical to the first build's`);
    compared++;
  }
  t.true(compared >= 60, `${compared} outputs compared`);
  if (!missed.has('rg')) t.true(fs.readFileSync(bin).equals(coldBin), 'the binary linked from cached rlibs is byte-identical');
});
