import fs from 'node:fs';
import path from 'node:path';
import test from './helpers/test.js';
import { run } from './helpers/instance.js';
import { objects } from './helpers/workloads.js';
import { cold, copyTree, edit, FLAGS, liveStatus, liveUntil, make, missesSince, plainObjects, readers, slowSource, snapshot, wait } from './helpers/live.js';

// Live mode end to end on a real project (helpers/live.ts): an edit, then `vrift live wait`,
// then the build: it compiles nothing, and its objects are those of a plain gcc build of the
// edited tree.

test.serial(
  'a header many files include, then a .c file: warmed in the background, the next builds compile nothing, objects as plain gcc, tree untouched',
  async (t) => {
    t.timeout(15 * 60_000);
    const { v, src, n } = await cold(t);

    // A header included by most files, changed so that some objects change. The tree and the
    // counters are looked at before the edit: warming may start as soon as it is written.
    const root = path.dirname(path.dirname(path.dirname(src)));
    const conf = path.join(src, 'luaconf.h');
    const readersOfConf = readers(src, 'luaconf.h');
    t.true(readersOfConf >= 30, `${readersOfConf} compiles read luaconf.h`);
    const tree = snapshot(root);
    const s0 = await liveStatus(v);
    edit(conf, '#define LUA_IDSIZE\t60', '#define LUA_IDSIZE\t61');
    const st = fs.statSync(conf);
    tree.set(path.relative(root, conf), `${st.size} ${st.mtimeMs}`); // the edit's own change
    // `vrift live wait` returns once it is all warmed, and says so.
    const w = await v.vrift(['live', 'wait', '--timeout', '300']);
    t.is(w.code, 0, w.err);
    t.regex(w.err, new RegExp(`^vrift: ready: next build all hits \\(warmed ${readersOfConf} in [\\d.]+ s\\)$`, 'm'));
    let s = await liveStatus(v);
    t.like(s.round, { compiles: readersOfConf, done: readersOfConf, warmed: readersOfConf, failed: 0, not_cached: 0, over: true });
    t.deepEqual(snapshot(root), tree, 'warming changed nothing in the build tree');
    t.is(s.warmed - s0.warmed, readersOfConf, JSON.stringify(s));
    t.is(s.failed, 0);
    t.is(s.priority, 'SCHED_IDLE');
    t.true(s.cpu_ms > 0);

    // The build make does next (its dependency lines): every compile a hit.
    const before = await v.stats();
    const inc = await make(v, src, 'o');
    t.is(inc.code, 0, inc.err);
    const after = await v.stats();
    t.is(missesSince(before, after), 0, 'the build after the edit compiled nothing');
    t.true(after.hits - before.hits >= 20, `${after.hits - before.hits} hits`);
    s = await liveStatus(v);
    t.is(s.used - s0.used, after.hits - before.hits, 'each hit used a warmed entry');

    // All of it, from clean: still nothing compiled, and the objects are plain gcc's of the edited tree.
    t.is((await run('make', ['clean'], { cwd: src })).code, 0);
    const b2 = await v.stats();
    t.is((await make(v, src, 'o')).code, 0);
    t.is(missesSince(b2, await v.stats()), 0, 'a clean build after the edit compiled nothing');
    const want = await plainObjects(t, v, src);
    const got = objects(src);
    t.is(got.size, n);
    t.deepEqual(
      [...got.keys()].filter((k) => !got.get(k)!.equals(want.get(k)!)),
      [],
      'objects byte-identical to a plain gcc build of the edited tree',
    );

    // A .c file: its one compile is warmed.
    const warmedBefore = (await liveStatus(v)).warmed;
    edit(path.join(src, 'lstrlib.c'), '"invalid capture index"', '"invalid capture index (edited)"');
    s = await wait(t, v);
    t.is(s.warmed, warmedBefore + 1, JSON.stringify(s));
    const b3 = await v.stats();
    t.is((await make(v, src, 'o')).code, 0);
    t.is(missesSince(b3, await v.stats()), 0, 'the build after the .c edit compiled nothing');
    const want2 = await plainObjects(t, v, src);
    t.true(objects(src).get('lstrlib.o')!.equals(want2.get('lstrlib.o')!));
    t.is((await liveStatus(v)).never_used, 0);
  },
);

test.serial("an edit that breaks the compile: warming stores nothing, and the build reports gcc's error exactly", async (t) => {
  t.timeout(15 * 60_000);
  const { v, src } = await cold(t);
  const { local } = await v.stats();
  edit(path.join(src, 'lapi.c'), 'const char lua_ident[] =', 'int vrift_broken = ;\nconst char lua_ident[] =');
  const s = await wait(t, v);
  t.is(s.failed, 1, JSON.stringify(s));
  t.is(s.warmed, 0);
  t.like(s.round, { compiles: 1, done: 1, failed: 1, over: true });
  t.regex((await v.vrift(['live', 'status'])).out, /^live: ready: warmed 0 of 1 in [\d.]+ s; the next build compiles 1 \(1 failing\)$/m);
  const now = (await v.stats()).local;
  t.deepEqual([now.entries, now.blobs], [local.entries, local.blobs], 'nothing stored');

  const viaVrift = await make(v, src, 'lapi.o');
  t.not(viaVrift.code, 0);
  const csrc = copyTree(v, src);
  fs.rmSync(path.join(csrc, 'lapi.o'), { force: true });
  const plain = await run('make', ['lapi.o', 'CC=gcc', FLAGS], { cwd: csrc, env: { ...v.env, VRIFT_DISABLE: '1' } });
  t.not(plain.code, 0);
  t.regex(plain.err, /error/);
  t.is(viaVrift.err, plain.err, "the build's error is gcc's, byte for byte");
  t.is(viaVrift.code, plain.code);
});

test.serial('a build that needs a compile being warmed waits for it or compiles it itself, never both; the newest edit is warmed first', async (t) => {
  t.timeout(15 * 60_000);
  const { v, src } = await cold(t, (src) => slowSource(src), 'slow.o');
  // lua.h: included by most files, not by slow.c (so slow.c is queued by its own edit only).
  const affected = readers(src, ' lua.h') + 1;
  fs.appendFileSync(path.join(src, 'lua.h'), '/* edited */\n');
  await liveUntil(v, (s) => s.queued > 0 || s.running > 0, 'the header edit queued');
  fs.appendFileSync(path.join(src, 'slow.c'), 'int slow_edited;\n');
  // slow.c changed last: warmed ahead of the compiles the header edit queued, so those are
  // still waiting when it runs (however many a slow machine got through meanwhile).
  const seen = await liveUntil(v, (s) => s.running_sources.some((f) => f.endsWith('/slow.c')), 'slow.c being warmed');
  t.true(seen.queued > 0, `slow.c warmed before the header's queued compiles: ${JSON.stringify(seen)}`);
  // Not ready: status says how far it got, and a wait that gives up says so and exits 1.
  t.regex((await v.vrift(['live', 'status'])).out, new RegExp(`^live: warming: \\d+ of ${affected}\\b`, 'm'));
  const early = await v.vrift(['live', 'wait', '--timeout', '100ms']);
  t.is(early.code, 1, early.err);
  t.regex(early.err, new RegExp(`^vrift: still warming: \\d+ of ${affected}\\b`, 'm'));

  // The build asks for the very compile being warmed, then for everything.
  fs.rmSync(path.join(src, 'slow.o'));
  const b1 = await v.stats();
  const r1 = await make(v, src, 'slow.o');
  t.is(r1.code, 0, r1.err);
  const b2 = await v.stats();
  t.is((await run('make', ['clean'], { cwd: src })).code, 0);
  const r2 = await make(v, src, 'o');
  t.is(r2.code, 0, r2.err);
  const misses = missesSince(b1, await v.stats());
  const s = await wait(t, v);
  t.log(JSON.stringify({ slowMisses: missesSince(b1, b2), misses, affected, warmed: s.warmed, fresh: s.fresh, left_to_build: s.left_to_build }));
  // Each affected compile ran exactly once: warmed in the background, or compiled by the build.
  t.is(s.warmed + misses, affected, JSON.stringify({ misses, affected, s }));
  t.is(s.failed, 0);
  // The build compiled what it took from warming: the cache has every compile, so ready.
  t.like(s.round, { compiles: affected, done: affected, failed: 0, not_cached: 0, over: true });
  t.regex((await v.vrift(['live', 'status'])).out, /^live: ready: next build all hits /m);
  const want = await plainObjects(t, v, src, 'slow.o');
  const got = objects(src);
  t.is(got.size, 39);
  t.deepEqual(
    [...got.keys()].filter((k) => !got.get(k)!.equals(want.get(k)!)),
    [],
  );
});
