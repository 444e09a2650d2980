import fs from 'node:fs';
import path from 'node:path';
import test from './helpers/test.js';
import { CLI, instance, run } from './helpers/instance.js';
import { cargo, copyWorkspace, counted, filesUnder } from './helpers/rust.js';
import { waitFor } from './helpers/wait.js';

// Two checkouts of the fixture workspace, a daemon that dies mid-build, `vrift run`.

function mentions(files: string[], needle: string): string[] {
  const b = Buffer.from(needle);
  return files.filter((f) => fs.readFileSync(f).indexOf(b) !== -1);
}

test.serial('two checkouts share what does not embed the checkout, and no output names the other checkout', async (t) => {
  const v = instance(t);
  const c = cargo(v);
  const one = copyWorkspace(path.join(v.dir, 'a', 'checkout-one'));
  const two = copyWorkspace(path.join(v.dir, 'bb', 'second', 'checkout-two'));
  t.is((await c.build(one)).code, 0);
  const r = await counted(v, () => c.build(two));
  t.is(r.value.code, 0, r.value.err);
  // Registry crates compile in the registry's directory with outputs that never name the
  // target directory: shared; so is the build script (linked without debug info). The
  // workspace crates and the binary embed their checkout (metadata's working directory,
  // debug info's comp_dir): compiled again.
  t.is(r.hits, 3);
  t.is(r.misses, 4);
  t.is(await c.app(two), 'quiet:126 note=unset greeting=hello');
  const outputs = filesUnder(path.join(two, 'target'));
  t.deepEqual(mentions(outputs, one), [], 'nothing under checkout two names checkout one');
  // The restored dep-info names checkout two's own target directory.
  const itoaDep = outputs.find((f) => /\/deps\/itoa-[0-9a-f]+\.d$/.test(f));
  t.truthy(itoaDep);
  t.true(fs.readFileSync(itoaDep!, 'utf8').includes(path.join(two, 'target', 'debug', 'deps', 'libitoa-')));

  // Each checkout still hits its own workspace crates.
  await c.clean(one);
  const back = await counted(v, () => c.build(one));
  t.is(back.hits, 7);
  t.deepEqual(mentions(filesUnder(path.join(one, 'target')), two), []);
});

test.serial('with --remap-path-prefix every library crate is shared between checkouts', async (t) => {
  const v = instance(t);
  const c = cargo(v);
  const one = copyWorkspace(path.join(v.dir, 'a', 'checkout-one'));
  const two = copyWorkspace(path.join(v.dir, 'bb', 'second', 'checkout-two'));
  const remap = (ws: string) => ({ RUSTFLAGS: `--remap-path-prefix=${ws}=/src` });
  t.is((await c.build(one, [], remap(one))).code, 0);
  const r = await counted(v, () => c.build(two, [], remap(two)));
  t.is(r.value.code, 0, r.value.err);
  // RUSTFLAGS reach the registry crates too: the checkout path in their arguments is keyed
  // relative to the workspace, and nothing they write contains it.
  t.is(r.hits, 7);
  t.is(r.misses, 0);
  t.is(await c.app(two), 'quiet:126 note=unset greeting=hello');
  t.deepEqual(mentions(filesUnder(path.join(two, 'target')), one), []);
});

test.serial('the daemon killed mid-build: the build still succeeds', async (t) => {
  const v = instance(t);
  const c = cargo(v);
  const ws = copyWorkspace(path.join(v.dir, 'ws'));
  const gate = path.join(v.dir, 'gate');
  const pid = (await v.stats()).daemon.pid;
  // wsinfo's build script waits for the gate: the daemon has served the first crates by then.
  const build = c.build(ws, [], { VRIFT_TEST_GATE: gate });
  const deps = path.join(ws, 'target', 'debug', 'deps');
  await waitFor(
    () => fs.existsSync(deps) && fs.readdirSync(deps).some((n) => n.startsWith('libwscore-') && n.endsWith('.rlib')),
    'wscore built before the kill',
    {
      ms: 60_000,
      everyMs: 50,
    },
  );
  process.kill(pid, 'SIGKILL');
  fs.writeFileSync(gate, '');
  const r = await build;
  t.is(r.code, 0, r.err);
  t.is(await c.app(ws), 'quiet:126 note=unset greeting=hello');
  // The next build finds a daemon again (the shim starts one) and still works.
  await c.clean(ws);
  const again = await c.build(ws, [], { VRIFT_TEST_GATE: gate });
  t.is(again.code, 0, again.err);
  t.not((await v.stats()).daemon.pid, pid);
  t.is(await c.app(ws), 'quiet:126 note=unset greeting=hello');
});

test.serial('vrift run -- cargo build puts the shim in as RUSTC_WRAPPER', async (t) => {
  const v = instance(t);
  const c = cargo(v);
  const ws = copyWorkspace(path.join(v.dir, 'ws'));
  const env = { ...c.env };
  delete env.RUSTC_WRAPPER;
  const vrun = () => run(process.execPath, [CLI, 'run', '--', 'cargo', 'build', '-j2'], { cwd: ws, env });
  const cold = await vrun();
  t.is(cold.code, 0, cold.err);
  t.regex(cold.err, /vrift: .* 0 hits, 7 misses/);
  await c.clean(ws);
  const warm = await vrun();
  t.is(warm.code, 0, warm.err);
  t.regex(warm.err, /vrift: .* 7 hits, 0 misses/);
  t.is(await c.app(ws), 'quiet:126 note=unset greeting=hello');
});
