import fs from 'node:fs';
import path from 'node:path';
import test from './helpers/test.js';
import type { ExecutionContext } from 'ava';
import { age, instance, run, type Instance } from './helpers/instance.js';

// Promises of the README's "what makes a different compile" list, each through a real daemon
// and a real compiler: a change misses and the object is the plain compiler's, the same
// compile again hits.

/** Compiles through vrift, then plainly to plain.o (same compiler, cwd and env); returns vrift's result after checking both objects are equal. */
async function same(t: ExecutionContext, v: Instance, compiler: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = await v.cc(args, { compiler, env });
  t.is(r.code, 0, r.err);
  const out = args[args.indexOf('-o') + 1]!;
  const plain = await run(compiler, [...args.slice(0, args.indexOf('-o')), '-o', 'plain.o', ...args.slice(args.indexOf('-o') + 2)], {
    cwd: v.dir,
    env: { ...v.env, ...env },
  });
  t.is(plain.code, 0, plain.err);
  t.deepEqual(
    fs.readFileSync(path.join(v.dir, out)),
    fs.readFileSync(path.join(v.dir, 'plain.o')),
    `${compiler} ${args.join(' ')}: the object is plain ${compiler}'s`,
  );
  t.is(r.err, plain.err, "stderr is plain's");
  return r;
}

for (const cxx of ['g++', 'clang++']) {
  test(`${cxx}: a C++ compile misses, then hits byte-identical; a changed header misses`, async (t) => {
    const v = instance(t);
    v.files({ 'v.hpp': '#define VAL 3\n', 'm.cc': '#include <vector>\n#include "v.hpp"\nint f() { std::vector<int> v{1, 2, VAL}; return v[2]; }\n' });
    const args = ['-O2', '-std=c++17', '-c', 'm.cc', '-o', 'm.o'];
    await same(t, v, cxx, args);
    t.is((await v.stored(1)).stored, 1);
    await same(t, v, cxx, args);
    t.like(await v.stats(), { hits: 1, misses: 1 });
    age(v.write('v.hpp', '#define VAL 4\n'));
    await same(t, v, cxx, args);
    t.like(await v.stats(), { hits: 1, misses: 2 });
  });
}

// The environment the compiler reads is part of the key: an include path given only by the
// environment, and the locale (diagnostics' quotes differ between C and UTF-8).
const ENV_CASES: { name: string; compiler: string; src: string; args: string[]; a: NodeJS.ProcessEnv; b: NodeJS.ProcessEnv }[] = [
  { name: 'CPATH', compiler: 'gcc', src: 'm.c', args: [], a: { CPATH: 'one' }, b: { CPATH: 'two' } },
  { name: 'C_INCLUDE_PATH', compiler: 'gcc', src: 'm.c', args: [], a: { C_INCLUDE_PATH: 'one' }, b: { C_INCLUDE_PATH: 'two' } },
  { name: 'CPLUS_INCLUDE_PATH', compiler: 'g++', src: 'm.cc', args: [], a: { CPLUS_INCLUDE_PATH: 'one' }, b: { CPLUS_INCLUDE_PATH: 'two' } },
  { name: 'the locale (LC_ALL)', compiler: 'gcc', src: 'w.c', args: ['-Wall'], a: { LC_ALL: 'C' }, b: { LC_ALL: 'C.UTF-8' } },
];
for (const c of ENV_CASES) {
  test(`${c.name} is part of the key: changed, a miss with the right object and diagnostics; the same again, a hit`, async (t) => {
    const v = instance(t);
    const src = '#include <cfg.h>\nint f(void) { return CFG; }\n';
    v.files({ 'one/cfg.h': '#define CFG 1\n', 'two/cfg.h': '#define CFG 2\n', 'm.c': src, 'm.cc': src, 'w.c': 'int f(void) { int unused; return 0; }\n' });
    const args = [...c.args, '-c', c.src, '-o', 'm.o'];
    await same(t, v, c.compiler, args, c.a);
    t.is((await v.stored(1)).stored, 1);
    await same(t, v, c.compiler, args, c.a);
    t.like(await v.stats(), { hits: 1, misses: 1 });
    const r = await same(t, v, c.compiler, args, c.b);
    t.like(await v.stats(), { hits: 1, misses: 2 }, `${JSON.stringify(c.b)} is another compile`);
    if (c.name.includes('locale')) t.regex(r.err, /‘unused’/, "UTF-8 quotes, not the stored entry's");
    await v.stored(2);
    await same(t, v, c.compiler, args, c.b);
    t.like(await v.stats(), { hits: 2, misses: 2 });
  });
}

for (const opt of ['-include', '-imacros']) {
  test(`${opt}'s file is an input: its content changed, a miss with the right object`, async (t) => {
    const v = instance(t);
    v.files({ 'pre.h': '#define PRE 1\n', 'm.c': 'int f(void) { return PRE; }\n' });
    const args = [opt, 'pre.h', '-c', 'm.c', '-o', 'm.o'];
    await same(t, v, 'gcc', args);
    t.is((await v.stored(1)).stored, 1);
    await same(t, v, 'gcc', args);
    t.like(await v.stats(), { hits: 1, misses: 1 });
    age(v.write('pre.h', '#define PRE 2\n'));
    await same(t, v, 'gcc', args);
    t.like(await v.stats(), { hits: 1, misses: 2 });
  });
}

for (const [lang, compiler, file, text] of [
  ['Objective-C', 'clang', 'm.m', '#include "d.h"\n@interface Box { int v; } @end\nint f(void) { return D; }\n'],
  ['assembly with the preprocessor (.S)', 'gcc', 'a.S', '#include "d.h"\n\t.globl f\nf:\n\tmovl $D, %eax\n\tret\n'],
] as const) {
  test(`${lang} through the daemon: a miss, a hit, a changed header misses`, async (t) => {
    const v = instance(t);
    v.files({ 'd.h': '#define D 5\n', [file]: text });
    const args = ['-c', file, '-o', 'o.o'];
    await same(t, v, compiler, args);
    t.is((await v.stored(1)).stored, 1);
    await same(t, v, compiler, args);
    t.like(await v.stats(), { hits: 1, misses: 1 });
    age(v.write('d.h', '#define D 6\n'));
    await same(t, v, compiler, args);
    t.like(await v.stats(), { hits: 1, misses: 2 });
  });
}

test("__TIMESTAMP__ follows the source's mtime: the same bytes touched miss, with the new stamp", async (t) => {
  const v = instance(t);
  v.files({ 'ts.c': 'const char *stamp = __TIMESTAMP__;\n' });
  const args = ['-c', 'ts.c', '-o', 'ts.o'];
  await same(t, v, 'gcc', args);
  t.is((await v.stored(1)).stored, 1);
  await same(t, v, 'gcc', args);
  t.like(await v.stats(), { hits: 1, misses: 1 });
  const older = new Date(Date.now() - 3 * 86_400_000);
  fs.utimesSync(path.join(v.dir, 'ts.c'), older, older);
  await new Promise((r) => setTimeout(r, 100)); // its ctime (now) before the compile's start
  await same(t, v, 'gcc', args);
  t.like(await v.stats(), { hits: 1, misses: 2 });
});

test("a __DATE__ entry expires the next day (the daemon's clock moved forward a day)", async (t) => {
  const v = instance(t);
  v.files({ 'd.c': 'const char *built = __DATE__;\n', 'n.c': 'int n(void) { return 1; }\n' });
  for (const src of ['d.c', 'n.c']) await same(t, v, 'gcc', ['-c', src, '-o', `${src}.o`]);
  await v.stored(2);
  await same(t, v, 'gcc', ['-c', 'd.c', '-o', 'd.c.o']);
  t.like(await v.stats(), { hits: 1, misses: 2 });
  t.is((await v.vrift(['daemon', 'stop'])).code, 0);
  // Tomorrow for the daemon: the shim starts it with its own environment.
  const tomorrow = { VRIFT_TEST_CLOCK_SKEW_MS: String(86_400_000) };
  const r = await v.cc(['-c', 'd.c', '-o', 'd.c.o'], { env: tomorrow });
  t.is(r.code, 0, r.err);
  const n = await v.cc(['-c', 'n.c', '-o', 'n.c.o'], { env: tomorrow });
  t.is(n.code, 0, n.err);
  t.like(await v.stats(), { hits: 2, misses: 3 }, 'd.c missed, n.c (no __DATE__) still hit');
});

test('a non-default base_dir: checkouts under it share hits, one outside it does not', async (t) => {
  const v = instance(t);
  const base = path.join(v.dir, 'work');
  const roots = [path.join(base, 'one'), path.join(base, 'deeper', 'three'), path.join(v.dir, 'elsewhere', 'two')];
  for (const root of roots) {
    for (const [rel, text] of [
      ['inc/lib.h', 'int lib(int);\n'],
      ['src/lib.c', '#include "lib.h"\nint lib(int x) { return x * 2; }\n'],
    ]) {
      fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
      fs.writeFileSync(path.join(root, rel), text);
      age(path.join(root, rel));
    }
    fs.mkdirSync(path.join(root, 'build'));
  }
  const args = (root: string) => ['-O2', `-I${root}/inc`, '-c', `${root}/src/lib.c`, '-o', 'lib.o'];
  const env = { VRIFT_BASE_DIR: base };
  for (const root of roots) {
    const r = await v.cc(args(root), { cwd: path.join(root, 'build'), env });
    t.is(r.code, 0, r.err);
    const plain = await run('gcc', [...args(root).slice(0, -1), 'plain.o'], { cwd: path.join(root, 'build') });
    t.is(plain.code, 0);
    t.deepEqual(fs.readFileSync(path.join(root, 'build/lib.o')), fs.readFileSync(path.join(root, 'build/plain.o')));
    if (root === roots[0]) await v.stored(1);
  }
  t.like(await v.stats(), { hits: 1, misses: 2 }, "three (under base_dir) hit one's entry; two (outside) missed");
});
