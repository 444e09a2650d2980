import fs from 'node:fs';
import path from 'node:path';
import test from './helpers/test.js';
import { splitDepRules } from '../daemon/frontends/cc/deps-mode.js';
import { parseGccArgs } from '../daemon/frontends/gcc/args.js';
import { age, instance, run, SHIM, type Instance, type Stats } from './helpers/instance.js';
import { workloadTree } from './helpers/workloads.js';

// Dependency generation as Makefiles do it (`$(CC) -MM $(SOURCES) > Makefile.dep`, redis):
// real gcc, the native shim, a real daemon per test.

function project(t: Parameters<typeof instance>[0]): Instance {
  const v = instance(t);
  v.files({
    'inc/config.h': '#define ANSWER 42\n',
    'inc/util.h': '#include "config.h"\nstatic inline int answer(void) { return ANSWER; }\n',
    'inc/extra.h': '#define EXTRA 1\n',
    // A system header (-isystem): -MM never lists it, yet it decides what a.c includes.
    'sys/feature.h': '#define WANT_EXTRA 0\n',
    'src/a.c': '#include <stdio.h>\n#include <feature.h>\n#include "util.h"\n#if WANT_EXTRA\n#include "extra.h"\n#endif\nint a(void) { return answer(); }\n',
    // __TIME__ changes no dependency list: it must not keep the call from being stored.
    'src/b.c': '#include "config.h"\nint b(void) { return ANSWER; }\nconst char *when = __TIME__;\n',
  });
  fs.mkdirSync(path.join(v.dir, 'first'));
  return v;
}

const DEPS = ['-MM', '-Ifirst', '-Iinc', '-isystem', 'sys', 'src/a.c', 'src/b.c'];

async function same(t: Parameters<typeof instance>[0], v: Instance, args = DEPS): Promise<string> {
  const plain = await run('gcc', args, { cwd: v.dir, env: v.env });
  t.is(plain.code, 0, plain.err);
  const r = await v.cc(args);
  t.is(r.code, 0, r.err);
  t.deepEqual(r.stdout, plain.stdout, 'the same bytes as gcc prints');
  t.deepEqual(r.stderr, plain.stderr);
  // The entry is built from the shim's one-way report, at the daemon's next pause; `vrift
  // stats` waits for it. Without this the next call can race the report (a miss, not a bug).
  await v.stats();
  return r.out;
}

test("gcc -MM over several sources: the second call is a hit with gcc's exact output", async (t) => {
  const v = project(t);
  const first = await same(t, v);
  t.regex(first, /^a\.o: src\/a\.c inc\/util\.h inc\/config\.h\nb\.o: src\/b\.c inc\/config\.h\n$/);
  t.like(await v.stats(), { misses: 1, hits: 0 });
  await same(t, v);
  t.like(await v.stats(), { misses: 1, hits: 1 });
  // -M (every header) and -MM -MP -MT are calls of their own, each cached.
  for (const args of [
    ['-M', ...DEPS.slice(1)],
    ['-MM', '-MP', '-MT', 'x.o', ...DEPS.slice(1)],
  ]) {
    await same(t, v, args);
    await same(t, v, args);
  }
  t.like(await v.stats(), { misses: 3, hits: 3 });
});

test('gcc -MM misses when a system header it does not list changes what a source includes', async (t) => {
  const v = project(t);
  await same(t, v);
  await same(t, v);
  t.like(await v.stats(), { misses: 1, hits: 1 });
  age(v.write('sys/feature.h', '#define WANT_EXTRA 1\n'));
  const out = await same(t, v);
  t.regex(out, /inc\/extra\.h/, 'extra.h is a dependency now');
  t.like(await v.stats(), { misses: 2, hits: 1 });
  await same(t, v);
  t.like(await v.stats(), { misses: 2, hits: 2 });
});

test('gcc -MM misses on a changed listed header and on a same-named header earlier on the path', async (t) => {
  const v = project(t);
  await same(t, v);
  await same(t, v);
  age(v.write('inc/config.h', '#define ANSWER 43\n#include "extra.h"\n'));
  t.regex(await same(t, v), /inc\/extra\.h/);
  t.like(await v.stats(), { misses: 2, hits: 1 });
  await same(t, v);
  // util.h now comes from first/, searched before inc/.
  age(v.write('first/util.h', 'static inline int answer(void) { return 7; }\n'));
  t.regex(await same(t, v), /first\/util\.h/);
  t.like(await v.stats(), { misses: 3, hits: 2 });
});

test("gcc -MM in a second checkout: a hit when the output names no checkout path, a miss (with that checkout's paths) when it does", async (t) => {
  const v = instance(t);
  for (const co of ['one', 'two']) {
    age(v.write(`${co}/inc/config.h`, '#define ANSWER 42\n'), v.write(`${co}/src/a.c`, '#include "config.h"\nint a(void) { return ANSWER; }\n'));
  }
  const rel = ['-MM', '-Iinc', 'src/a.c'];
  const abs = (co: string) => ['-MM', `-I${path.join(v.dir, co, 'inc')}`, 'src/a.c'];
  for (const co of ['one', 'two']) {
    for (const args of [rel, abs(co)]) {
      const plain = await run('gcc', args, { cwd: path.join(v.dir, co), env: v.env });
      const r = await v.cc(args, { cwd: path.join(v.dir, co) });
      t.is(r.code, 0, r.err);
      t.deepEqual(r.stdout, plain.stdout, `${co}: ${args.join(' ')}`);
      await v.stats(); // its entry built (from the one-way report) before the next lookup
    }
  }
  t.regex((await run('gcc', abs('two'), { cwd: path.join(v.dir, 'two') })).out, /two\/inc\/config\.h/);
  // one: two misses; two: the relative call hits, the absolute one (its output names one/) misses.
  t.like(await v.stats(), { misses: 3, hits: 1 });
});

test("gcc -MM -MF file and -M -o file: the file is written on a hit, byte-identical to gcc's; the -M rerun never touches it", async (t) => {
  const v = project(t);
  for (const [args, out] of [
    [['-MM', '-MP', '-Iinc', '-isystem', 'sys', '-MF', 'deps/a.d', 'src/a.c'], 'deps/a.d'],
    [['-M', '-Iinc', '-isystem', 'sys', 'src/b.c', '-o', 'deps/b.d'], 'deps/b.d'],
  ] as const) {
    fs.mkdirSync(path.join(v.dir, 'deps'), { recursive: true });
    const plain = await run('gcc', [...args], { cwd: v.dir, env: v.env });
    t.is(plain.code, 0, plain.err);
    const want = fs.readFileSync(path.join(v.dir, out));
    fs.rmSync(path.join(v.dir, out));
    const r1 = await v.cc([...args]);
    t.is(r1.code, 0, r1.err);
    t.is(r1.out, '');
    t.deepEqual(fs.readFileSync(path.join(v.dir, out)), want);
    await v.stats(); // the entry is built (and, for -MM, the -M run made) when the daemon pauses
    t.deepEqual(fs.readFileSync(path.join(v.dir, out)), want, "left alone by the daemon's -M run");
    fs.rmSync(path.join(v.dir, out));
    const r2 = await v.cc([...args]);
    t.is(r2.code, 0, r2.err);
    t.deepEqual(fs.readFileSync(path.join(v.dir, out)), want);
  }
  t.like(await v.stats(), { misses: 2, hits: 2 });
});

test('gcc -MM that fails (a missing header) fails every time and stores nothing', async (t) => {
  const v = project(t);
  age(v.write('src/c.c', '#include "nope.h"\n'));
  const args = ['-MM', '-Iinc', 'src/b.c', 'src/c.c'];
  const plain = await run('gcc', args, { cwd: v.dir, env: v.env });
  t.not(plain.code, 0);
  for (let i = 0; i < 2; i++) {
    const r = await v.cc(args);
    t.is(r.code, plain.code);
    t.deepEqual(r.stdout, plain.stdout);
    t.is(r.err, plain.err);
  }
  t.like(await v.stats(), { hits: 0, stored: 0, compile_failed: 2 });
});

test('the parser: -M/-MM to stdout over sources of one language is a dependency call; anything else passes', (t) => {
  const penv = { cwd: '/w', env: {}, readFile: () => '' };
  t.like(parseGccArgs(['-MM', '-I../deps/hiredis', '-DX=1', '-MP', '-MT', 'foo', 'adlist.c', 'ae.c'], penv), {
    kind: 'deps',
    mode: 'MM',
    lang: 'c',
    sources: ['adlist.c', 'ae.c'],
    keyArgs: ['-I', '../deps/hiredis', '-D', 'X=1', '-MP', '-MT', 'foo'],
  });
  t.like(parseGccArgs(['-M', 'a.cc'], penv), { kind: 'deps', mode: 'M', lang: 'c++' });
  t.like(parseGccArgs(['-MM', '-MF', 'a.d', 'a.c'], penv), { kind: 'deps', outFile: 'a.d' });
  t.like(parseGccArgs(['-MM', 'a.c', '-o', 'b.d'], penv), { kind: 'deps', outFile: 'b.d' });
  for (const args of [
    ['-MM', 'a.c', '-o', 'a.d', '-MF', 'b.d'],
    ['-MM', 'a.c', '-o', '-'],
    ['-MM', 'a.c', 'b.cc'],
    ['-MM', '-E', 'a.c'],
    ['-MM', '-MD', 'a.c'],
    ['-MM', '-c', 'a.c'],
  ]) {
    t.like(parseGccArgs(args, penv), { kind: 'pass' }, args.join(' '));
  }
});

test('splitDepRules: one rule per source, phony targets skipped', (t) => {
  t.deepEqual(splitDepRules('a.o: a.c x.h \\\n y.h\nx.h:\ny.h:\nb.o: b.c\n', 2), [['a.c', 'x.h', 'y.h'], ['b.c']]);
  t.is(splitDepRules('a.o: a.c\n', 2), undefined);
});

test('redis from Debian sources: `make Makefile.dep` through the shim is a hit the second time, byte-identical to plain gcc', async (t) => {
  t.timeout(5 * 60_000);
  const v = instance(t);
  const src = workloadTree('redis', path.join(v.dir, 'redis'));
  const dep = path.join(src, 'src', 'Makefile.dep');
  const make = (cc: string, env: NodeJS.ProcessEnv = v.env) => run('make', ['Makefile.dep', 'MALLOC=libc', `CC=${cc}`], { cwd: path.join(src, 'src'), env });
  t.is((await make('gcc', { ...v.env, VRIFT_DISABLE: '1' })).code, 0);
  const plain = fs.readFileSync(dep);
  t.true(plain.length > 10_000 && /^server\.o: server\.c /m.test(plain.toString()), 'gcc -MM over every redis source');
  let first: Stats | undefined;
  for (let i = 0; i < 2; i++) {
    fs.rmSync(dep);
    const r = await make(`${SHIM} gcc`);
    t.is(r.code, 0, r.err);
    t.deepEqual(fs.readFileSync(dep), plain);
    // The store write of a miss lands after the shim has its answer: the second run must find it.
    if (i === 0) first = await v.until((s) => s.misses > 0 && s.stored >= s.misses, 'the first run stored');
  }
  const s = await v.stats();
  t.true(first!.misses > 0, JSON.stringify(first));
  t.is(s.misses, first!.misses, 'the second run misses nothing');
  t.is(s.hits - first!.hits, first!.hits + first!.misses, 'every call of the second run is a hit');
});
