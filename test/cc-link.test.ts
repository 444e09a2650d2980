import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import test from './helpers/test.js';
import { age, instance, run } from './helpers/instance.js';

// Links through gcc (daemon/frontends/link.ts): real gcc and GNU ld, the native shim, a
// real daemon per test.

async function project(t: Parameters<typeof instance>[0]) {
  const v = instance(t);
  v.files({
    'f.c': 'int f(void) { return 3; }\n',
    'g.c': 'int f(void) { return 4; }\n',
    'm.c': 'int f(void);\nint main(void) { return f(); }\n',
    'v.map': '{ global: main; local: *; };\n',
  });
  fs.mkdirSync(path.join(v.dir, 'early'));
  fs.mkdirSync(path.join(v.dir, 'lib'));
  for (const c of [
    ['-c', 'f.c'],
    ['-c', 'g.c'],
    ['-c', 'm.c'],
    ['-c', '-fPIC', 'g.c', '-o', 'g.pic.o'],
  ])
    t.is((await run('gcc', c, { cwd: v.dir })).code, 0);
  t.is((await run('ar', ['rcs', 'lib/libf.a', 'f.o'], { cwd: v.dir })).code, 0);
  age(...['f.o', 'g.o', 'm.o', 'g.pic.o', 'lib/libf.a'].map((f) => path.join(v.dir, f)));
  return v;
}

const LINK = ['-o', 'prog', 'm.o', '-Learly', '-Llib', '-lf', '-Wl,--version-script=v.map', '-lm'];

const sha256 = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

async function exitCode(v: { dir: string }): Promise<number> {
  return (await run(path.join(v.dir, 'prog'), [], { cwd: v.dir })).code;
}

test('a link misses, then hits with a byte-identical executable; what ld read decides', async (t) => {
  const v = await project(t);
  t.is((await run('gcc', [...LINK.slice(0, 1), 'plain', ...LINK.slice(2)], { cwd: v.dir })).code, 0);
  const plain = fs.readFileSync(path.join(v.dir, 'plain'));
  t.is((await v.cc(LINK)).code, 0);
  t.is((await v.stored(1)).stored, 1);
  fs.rmSync(path.join(v.dir, 'prog'));
  t.is((await v.cc(LINK)).code, 0);
  t.deepEqual(fs.readFileSync(path.join(v.dir, 'prog')), plain);
  t.is(fs.statSync(path.join(v.dir, 'prog')).mode & 0o111, 0o111, 'executable');
  t.is(await exitCode(v), 3);
  t.like(await v.stats(), { hits: 1, misses: 1 });

  // An archive that only -l names (not on the command line) changed: a miss, and the new code.
  t.is((await run('ar', ['rcs', 'lib/libf.a', 'g.o'], { cwd: v.dir })).code, 0);
  fs.rmSync(path.join(v.dir, 'lib/libf.a'));
  t.is((await run('ar', ['rcs', 'lib/libf.a', 'g.o'], { cwd: v.dir })).code, 0);
  age(path.join(v.dir, 'lib/libf.a'));
  t.is((await v.cc(LINK)).code, 0);
  t.is(await exitCode(v), 4);
  t.like(await v.stats(), { hits: 1, misses: 2 });

  // The version script (a -Wl option's file) changed: a miss.
  age(v.write('v.map', '{ global: main; f; local: *; };\n'));
  t.is((await v.cc(LINK)).code, 0);
  t.like(await v.stored(3), { hits: 1, misses: 3 });
  // Back to the first script: the entry stored for it hits again.
  age(v.write('v.map', '{ global: main; local: *; };\n'));
  t.is((await v.cc(LINK)).code, 0);
  t.like(await v.stats(), { hits: 2, misses: 3 });
});

// libf.a in lib/, then a libf.so put into early/, which ld searches first: the link must
// take it, so the stored one must not be served.
for (const [how, args] of [
  ['-L', LINK],
  ["ld's own -L (-Wl,-L, searched after the driver's)", ['-o', 'prog', 'm.o', '-Learly', '-Wl,-Llib', '-lf']],
] as const) {
  test(`a same-named library appearing earlier on the search path is a miss, and is linked (found through ${how})`, async (t) => {
    const v = await project(t);
    t.is((await v.cc([...args])).code, 0);
    t.is((await v.stored(1)).stored, 1);
    t.is(await exitCode(v), 3);
    t.is((await run('gcc', ['-shared', '-o', 'early/libf.so', 'g.pic.o'], { cwd: v.dir })).code, 0);
    age(path.join(v.dir, 'early/libf.so'));
    t.is((await v.cc([...args])).code, 0);
    t.like(await v.stats(), { hits: 0, misses: 2 });
    t.is((await run(path.join(v.dir, 'prog'), [], { cwd: v.dir, env: { ...process.env, LD_LIBRARY_PATH: path.join(v.dir, 'early') } })).code, 4);
  });
}

test('links that compile, write a second output or only probe pass through with a reason; a failed link is not stored', async (t) => {
  const v = await project(t);
  const cases: [string[], string][] = [
    [['-o', 'prog', 'm.c', 'f.o', '-flto'], 'link_with_sources'],
    [['-o', 'prog', 'm.o', 'f.o', '-Wl,-Map=prog.map'], 'link_option'],
    [['-o', 'prog', 'm.o', 'f.o', '-flto'], 'link_option'],
    [['-o', 'prog', 'm.o', 'f.o', '-fuse-ld=bfd'], 'link_option'],
    [['-v', '-o', 'prog', 'm.o', 'f.o'], 'link_option'],
    [['m.o', 'f.o'], 'link_no_output'],
  ];
  for (const [args, reason] of cases) {
    t.is((await v.cc(args)).code, 0, args.join(' '));
    t.is((await v.stats()).uncacheable[reason] >= 1, true, `${args.join(' ')}: ${reason}`);
  }
  t.true(fs.existsSync(path.join(v.dir, 'prog.map')));
  const bad = await v.cc(['-o', 'prog', 'm.o']); // f is undefined
  t.not(bad.code, 0);
  t.regex(bad.err, /undefined reference to `f'/);
  t.is((await v.stats()).compile_failed, 1);
  t.is((await v.cc(['-o', 'prog', 'm.o'])).code, bad.code, 'failed again, not served');
});

test("a response file's content is part of the key, not its name", async (t) => {
  const v = await project(t);
  age(v.write('objs.rsp', 'm.o -Llib -lf\n'));
  t.is((await v.cc(['-o', 'prog', '@objs.rsp'])).code, 0);
  t.is((await v.stored(1)).stored, 1);
  t.is(await exitCode(v), 3);
  // The same content under another name: the same link, served.
  age(v.write('other.rsp', 'm.o -Llib -lf\n'));
  fs.rmSync(path.join(v.dir, 'prog'));
  t.is((await v.cc(['-o', 'prog', '@other.rsp'])).code, 0);
  t.like(await v.stats(), { hits: 1, misses: 1 });
  t.is(await exitCode(v), 3);
  // Only an option inside it changes (-s strips the executable): a different link.
  age(v.write('objs.rsp', 'm.o -Llib -lf -s\n'));
  t.is((await v.cc(['-o', 'prog', '@objs.rsp'])).code, 0);
  t.like(await v.stats(), { hits: 1, misses: 2 });
  t.is((await run('gcc', ['-o', 'plain', 'm.o', '-Llib', '-lf', '-s'], { cwd: v.dir })).code, 0);
  t.deepEqual(fs.readFileSync(path.join(v.dir, 'prog')), fs.readFileSync(path.join(v.dir, 'plain')));
});

test('a thin archive (its members not listed by ld) is never stored; options that read unlisted files or make the output random pass', async (t) => {
  const v = await project(t);
  t.is((await run('ar', ['rcT', 'lib/libt.a', 'f.o'], { cwd: v.dir })).code, 0);
  age(path.join(v.dir, 'lib/libt.a'));
  const args = ['-o', 'prog', 'm.o', '-Llib', '-lt'];
  t.is((await v.cc(args)).code, 0);
  t.is(await exitCode(v), 3);
  t.is((await v.stats()).not_stored.link_thin_archive, 1);
  fs.copyFileSync(path.join(v.dir, 'g.o'), path.join(v.dir, 'f.o')); // the member changes, the thin archive's bytes do not
  age(path.join(v.dir, 'f.o'));
  t.is((await v.cc(args)).code, 0);
  t.is(await exitCode(v), 4);
  t.is((await v.stats()).hits, 0);
  age(v.write('keep.txt', 'main\n'));
  for (const extra of [['-Wl,--retain-symbols-file=keep.txt'], ['-Wl,--build-id=uuid']]) {
    t.is((await v.cc(['-o', 'prog', 'm.o', 'g.o', ...extra])).code, 0, extra.join(' '));
  }
  t.is((await v.stats()).uncacheable.link_option, 2);
});

test('a large executable (over the streaming threshold) is stored and restored by streaming, byte-identical', async (t) => {
  const v = await project(t);
  age(v.write('big.c', 'const char big[12 << 20] = { 1, 2, 3 };\nint f(void) { return big[1]; }\n'));
  t.is((await run('gcc', ['-c', 'big.c'], { cwd: v.dir })).code, 0);
  age(path.join(v.dir, 'big.o'));
  const args = ['-o', 'prog', 'm.o', 'big.o'];
  t.is((await v.cc(args)).code, 0);
  const want = fs.readFileSync(path.join(v.dir, 'prog'));
  t.true(want.length > 12 << 20);
  t.is((await v.stored(1)).stored, 1);
  fs.rmSync(path.join(v.dir, 'prog'));
  t.is((await v.cc(args)).code, 0);
  // Compared by digest: ava's deepEqual walks a Buffer byte by byte, minutes for these 12 MB.
  t.is(sha256(fs.readFileSync(path.join(v.dir, 'prog'))), sha256(want), 'byte-identical');
  t.is(await exitCode(v), 2);
  t.like(await v.stats(), { hits: 1, misses: 1 });
});

test('clang links are cached the same way: byte-identical to plain clang, a changed archive misses', async (t) => {
  const v = await project(t);
  t.is((await run('clang', ['-o', 'plain', ...LINK.slice(2)], { cwd: v.dir })).code, 0);
  t.is((await v.cc(LINK, { compiler: 'clang' })).code, 0);
  await v.stored(1);
  fs.rmSync(path.join(v.dir, 'prog'));
  t.is((await v.cc(LINK, { compiler: 'clang' })).code, 0);
  t.deepEqual(fs.readFileSync(path.join(v.dir, 'prog')), fs.readFileSync(path.join(v.dir, 'plain')));
  t.is(await exitCode(v), 3);
  fs.rmSync(path.join(v.dir, 'lib/libf.a'));
  t.is((await run('ar', ['rcs', 'lib/libf.a', 'g.o'], { cwd: v.dir })).code, 0);
  age(path.join(v.dir, 'lib/libf.a'));
  t.is((await v.cc(LINK, { compiler: 'clang' })).code, 0);
  t.is(await exitCode(v), 4);
  t.like(await v.stats(), { hits: 1, misses: 2 });
});
