import fs from 'node:fs';
import path from 'node:path';
import test from './helpers/test.js';
import { age, instance } from './helpers/instance.js';
import { cargo, copyWorkspace, counted, filesUnder } from './helpers/rust.js';

// Real cargo builds of test/fixtures/rust-ws through vrift-shim as RUSTC_WRAPPER:
// four library crates (itoa and cfg-if from Debian, wscore, wsinfo), a proc-macro
// (wsmac), a build script (wsinfo's) and a binary (wsapp): all seven are cached, the last
// three with what the linker read (linker.ts).
// The cargo builds are serial: two shared cores.

const LIBS = 4;
const CRATES = LIBS + 3;

function deps(ws: string): Map<string, Buffer> {
  const dir = path.join(ws, 'target', 'debug', 'deps');
  return new Map(
    filesUnder(dir)
      .filter((f) => /\.(rlib|rmeta|d)$/.test(f) && /\/(lib)?(itoa|cfg_if|wscore|wsinfo)-/.test(f))
      .map((f) => [path.basename(f), fs.readFileSync(f)]),
  );
}

test.serial('cargo clean then rebuild: every crate hits, outputs and the binary are the same', async (t) => {
  const v = instance(t);
  const c = cargo(v);
  const ws = copyWorkspace(path.join(v.dir, 'ws'));
  const cold = await counted(v, () => c.build(ws));
  t.is(cold.value.code, 0, cold.value.err);
  t.is(cold.misses, CRATES);
  t.is(cold.hits, 0);
  t.deepEqual(cold.notStored, {});
  t.is(await c.app(ws), 'quiet:126 note=unset greeting=hello');
  const first = deps(ws);
  t.is(first.size, LIBS * 3, 'rlib, rmeta and dep-info of each library');
  const app = path.join(ws, 'target', 'debug', 'wsapp');
  const appBin = fs.readFileSync(app);
  const macSo = filesUnder(path.join(ws, 'target', 'debug', 'deps')).filter((f) => /libwsmac-.*\.so$/.test(f));
  t.is(macSo.length, 1);
  const macBytes = fs.readFileSync(macSo[0]);

  await c.clean(ws);
  const warm = await counted(v, () => c.build(ws));
  t.is(warm.value.code, 0, warm.value.err);
  t.is(warm.hits, CRATES);
  t.is(warm.misses, 0);
  t.is(await c.app(ws), 'quiet:126 note=unset greeting=hello');
  t.deepEqual(deps(ws), first, 'restored rlib/rmeta/.d are byte-identical to the compiled ones');
  t.true(fs.readFileSync(app).equals(appBin), 'the restored binary is the one the linker wrote');
  t.true((fs.statSync(app).mode & 0o111) !== 0, 'and executable');
  t.true(fs.readFileSync(macSo[0]).equals(macBytes), 'the restored proc-macro is the one the linker wrote');

  // Cargo's own fingerprints accept the restored outputs: nothing is rebuilt.
  const again = await counted(v, () => c.build(ws));
  t.is(again.value.code, 0);
  t.is(again.hits + again.misses, 0);
  t.notRegex(again.value.err, /Compiling/);
});

test.serial('a source change misses for that crate and its dependents only', async (t) => {
  const v = instance(t);
  const c = cargo(v);
  const ws = copyWorkspace(path.join(v.dir, 'ws'));
  t.is((await c.build(ws)).code, 0);
  const lib = path.join(ws, 'crates/core/src/lib.rs');
  fs.writeFileSync(lib, fs.readFileSync(lib, 'utf8').replace('n * 3', 'n * 5'));
  age(lib);
  await c.clean(ws);
  const r = await counted(v, () => c.build(ws));
  t.is(r.value.code, 0, r.value.err);
  t.is(r.hits, 4, 'itoa, cfg-if, wsmac and the build script hit');
  t.is(r.misses, 3, 'wscore and its dependents wsinfo and wsapp miss');
  t.is(await c.app(ws), 'quiet:210 note=unset greeting=hello');
});

test.serial('a changed env!() value misses, the old value hits again', async (t) => {
  const v = instance(t);
  const c = cargo(v);
  const ws = copyWorkspace(path.join(v.dir, 'ws'));
  const first = await counted(v, () => c.build(ws));
  t.is(first.value.code, 0);
  // A binary whose link input (the rlib cargo built just before) can't be told written before
  // its rustc started (the same clock tick, on a kernel without fine-grained timestamps) is
  // not stored (a counted input_too_new): it cannot hit later.
  const tooNew = first.notStored.input_too_new ?? 0;
  t.true(tooNew <= 1, JSON.stringify(first.notStored));
  if (tooNew > 0) t.log(`first build: not stored ${JSON.stringify(first.notStored)}`);
  await c.clean(ws);

  // Read directly from the environment by env!().
  const bye = await counted(v, () => c.build(ws, [], { VRIFT_FIXTURE_GREETING: 'bye' }));
  t.is(bye.value.code, 0, bye.value.err);
  t.is(bye.misses, 2, 'wsinfo misses, and wsapp that links it');
  t.is(bye.hits, CRATES - 2);
  t.is(await c.app(ws), 'quiet:126 note=unset greeting=bye');

  // Passed on by the build script (cargo:rustc-env), read by env!().
  const note = await counted(v, () => c.build(ws, [], { SOME_VAR: 'from-build-script' }));
  t.is(note.value.code, 0, note.value.err);
  t.is(note.misses, 2);
  t.is(note.hits, 0, 'cargo only rebuilds wsinfo and wsapp');
  t.is(await c.app(ws), 'quiet:126 note=from-build-script greeting=hello');

  await c.clean(ws);
  const back = await counted(v, () => c.build(ws));
  t.is(back.value.code, 0);
  t.is(back.hits, CRATES - tooNew, 'the first values are still in the cache');
  t.is(await c.app(ws), 'quiet:126 note=unset greeting=hello');
});

test.serial('a changed feature set misses', async (t) => {
  const v = instance(t);
  const c = cargo(v);
  const ws = copyWorkspace(path.join(v.dir, 'ws'));
  t.is((await c.build(ws)).code, 0);
  await c.clean(ws);
  const loud = await counted(v, () => c.build(ws, ['--features', 'wsapp/loud']));
  t.is(loud.value.code, 0, loud.value.err);
  t.is(loud.misses, 3, 'wscore (feature cfg), wsinfo (its wscore changed) and wsapp (its features)');
  t.is(loud.hits, 4);
  t.is(await c.app(ws), 'SHOUT:126 note=unset greeting=hello');
  await c.clean(ws);
  const both = await counted(v, () => c.build(ws, ['--features', 'wsapp/loud']));
  t.is(both.hits, CRATES);
  t.is(await c.app(ws), 'SHOUT:126 note=unset greeting=hello');
});

test.serial('probes, incremental compiles and links with extra link arguments pass through with reasons', async (t) => {
  const v = instance(t);
  const c = cargo(v);
  const ws = copyWorkspace(path.join(v.dir, 'ws'));
  const r = await counted(v, () => c.build(ws));
  t.is(r.value.code, 0, r.value.err);
  t.false('crate_type_bin' in r.uncacheable);
  t.false('crate_type_proc_macro' in r.uncacheable);
  t.true((r.uncacheable.probe ?? 0) >= 1, 'rustc -vV / --print');

  // A link argument may change the linker or what it reads: such links are not cached.
  await c.clean(ws);
  const args = await counted(v, () => c.build(ws, [], { RUSTFLAGS: '-C link-arg=-Wl,-O1' }));
  t.is(args.value.code, 0, args.value.err);
  t.is(args.uncacheable.link_args, 3, 'the build script, wsmac and wsapp');
  t.is(await c.app(ws), 'quiet:126 note=unset greeting=hello');

  await c.clean(ws);
  const inc = await counted(v, () => c.build(ws, [], { CARGO_INCREMENTAL: '1' }));
  t.is(inc.value.code, 0, inc.value.err);
  t.is(inc.uncacheable.incremental, 5, 'every workspace crate: wscore, wsinfo, wsmac, wsapp, the build script');
  t.is(inc.hits, 2, 'the registry crates are not built incrementally and hit');
  t.is(await c.app(ws), 'quiet:126 note=unset greeting=hello');
});
