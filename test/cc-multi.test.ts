import fs from 'node:fs';
import path from 'node:path';
import test from './helpers/test.js';
import { planSplit, SPLIT_TMP } from '../daemon/frontends/gcc/split.js';
import { age, instance, run, SHIM, type Instance } from './helpers/instance.js';
import { workloadTree } from './helpers/workloads.js';
import { waitFor } from './helpers/wait.js';

// Commands with several sources (`cc -c a.c b.c`, `cc a.c b.c -o prog`): split into one cached
// compile per source (and the link of their objects), with everything the build sees (files,
// stdout/stderr, exit code) as the one command gives it. The tests with a daemon run one
// after another: each runs builds with parallel compiles of its own.

const penv = (cwd = '/p') => ({ cwd, env: {}, readFile: () => '' });
const plan = (line: string, compiler: 'gcc' | 'clang' = 'gcc') => planSplit(line.split(' '), { ...penv(), compiler });

test('split plans: one compile per source with the same options, the link of their objects in place of the sources', (t) => {
  t.deepEqual(plan('-O2 -c a.c -Iinc b.c -DX'), {
    kind: 'split',
    compiles: [
      ['-O2', '-c', 'a.c', '-Iinc', '-DX'],
      ['-O2', '-c', '-Iinc', 'b.c', '-DX'],
    ],
    link: null,
  });
  const T = SPLIT_TMP;
  t.deepEqual(plan('-O2 -Iinc a.c dir/b.c -o prog x.o -lm -Wl,-O1 -z now -pthread'), {
    kind: 'split',
    compiles: [
      ['-O2', '-Iinc', 'a.c', '-pthread', '-c', '-o', `${T}0-a.o`],
      ['-O2', '-Iinc', 'dir/b.c', '-pthread', '-c', '-o', `${T}1-b.o`],
    ],
    link: ['-O2', '-Iinc', `${T}0-a.o`, `${T}1-b.o`, '-o', 'prog', 'x.o', '-lm', '-Wl,-O1', '-z', 'now', '-pthread'],
  });
  // One source and a link: cached as a compile and a link too.
  t.like(plan('a.c -o a'), { kind: 'split', link: [`${T}0-a.o`, '-o', 'a'] });
  t.like(plan('-c -MD a.c b.c'), { kind: 'split' });
});

test('split plans: link-only options stay out of the compiles (clang -Werror fails a compile that keeps one)', (t) => {
  const T = SPLIT_TMP;
  for (const opt of ['-fuse-ld=bfd', '--ld-path=/usr/bin/ld', '-rtlib=libgcc', '--rtlib=libgcc', '-unwindlib=libgcc', '-static-pie', '-static', '-nostdlib']) {
    t.deepEqual(
      plan(`-Werror a.c b.c ${opt} -o p`, 'clang'),
      {
        kind: 'split',
        compiles: [
          ['-Werror', 'a.c', '-c', '-o', `${T}0-a.o`],
          ['-Werror', 'b.c', '-c', '-o', `${T}1-b.o`],
        ],
        link: ['-Werror', `${T}0-a.o`, `${T}1-b.o`, opt, '-o', 'p'],
      },
      opt,
    );
  }
});

test('split plans: what would tell the split from the one command passes through', (t) => {
  const cases: [string, string][] = [
    ['-c a.c b.c -o x.o', 'multiple_sources'],
    ['-c a.c b.o', 'multiple_sources'],
    ['-c a.c b.cc', 'multiple_sources'],
    ['-c -x c a b', 'multiple_sources'],
    ['-c a.c -x none b.c', 'multiple_sources'],
    ['-c a.c -', 'stdin_source'],
    ['-c a.c b.c -MF deps.d -MD', 'multiple_sources'],
    ['-c a.c b.c -Wp,-MD,deps.d', 'multiple_sources'],
    ['-c a.c dir/a.c', 'multiple_sources'],
    ['-c a.c b.c @more', 'multiple_sources'],
    ['-c a.c b.c -save-temps', 'unsupported_option'],
    ['-c a.c b.s', 'unsupported_language'],
    ['-c a.s b.s', 'unsupported_language'],
    ['-c a.c b.c -pass-exit-codes', 'multiple_sources'],
    ['a.c b.c -o prog -flto', 'link_with_sources'],
    ['a.c b.c -o prog -MD', 'link_with_sources'],
    ['a.c b.c -o prog -fstack-usage', 'unsupported_option'],
  ];
  for (const [line, reason] of cases) t.like(plan(line), { kind: 'pass', reason }, line);
  t.like(plan('-c a.c b.c -lm', 'clang'), { kind: 'pass', reason: 'multiple_sources' });
  t.like(plan('-c a.c b.c -lm', 'gcc'), { kind: 'split' });
});

// Plain gcc's outputs of `args` in `cwd` (a fresh copy each time), then the same through vrift.
// `prepare` runs before each.
async function same(t: import('ava').ExecutionContext, v: Instance, args: string[], cwd: string, outputs: string[], prepare = () => {}) {
  const reset = () => {
    for (const f of outputs) fs.rmSync(path.join(cwd, f), { force: true });
    prepare();
  };
  reset();
  const plain = await run('gcc', args, { cwd, env: v.env });
  const want = outputs.map((f) => (fs.existsSync(path.join(cwd, f)) ? fs.readFileSync(path.join(cwd, f)) : null));
  reset();
  const got = await v.cc(args, { cwd });
  t.is(got.code, plain.code, args.join(' '));
  t.is(got.out, plain.out);
  t.is(got.err, plain.err);
  outputs.forEach((f, i) => t.deepEqual(fs.existsSync(path.join(cwd, f)) ? fs.readFileSync(path.join(cwd, f)) : null, want[i], `${f} as gcc writes it`));
  return got;
}

// A test's own TMPDIR (others run at the same time): where a split's private directories go.
function tmpdir(v: Instance): string {
  const d = path.join(v.dir, 'tmp');
  fs.mkdirSync(d, { recursive: true });
  return d;
}
const splitDirs = (v: Instance) => fs.readdirSync(path.join(v.dir, 'tmp')).filter((n) => n.startsWith('vrift-split-'));

test.serial(
  "zstd's lib/common in one -c command and its tests' programs compiled and linked in one command each: identical to gcc's, warm compiles nothing",
  async (t) => {
    t.timeout(15 * 60_000);
    const v = instance(t);
    const tree = workloadTree('zstd', path.join(v.dir, 'zstd'));
    const common = path.join(tree, 'lib', 'common');
    const sources = fs
      .readdirSync(common)
      .filter((f) => f.endsWith('.c'))
      .sort();
    const objs = sources.map((f) => f.replace(/\.c$/, '.o'));
    const args = ['-O2', '-g', '-Wall', '-DXXH_NAMESPACE=ZSTD_', '-c', ...sources];
    const TMPDIR = tmpdir(v);

    // The tests' Makefile links its small programs in one command: `$(LINK.c) $^ -o $@`.
    const tests = path.join(tree, 'tests');
    const progs = ['datagen', 'poolTests'];
    const make = (cc: string) => run('make', ['-s', ...progs, `CC=${cc}`], { cwd: tests, env: { ...v.env, TMPDIR } });
    t.is((await make('cc')).code, 0);
    const plainProgs = progs.map((p) => fs.readFileSync(path.join(tests, p)));

    for (const round of ['cold', 'warm']) {
      await v.vrift(['stats', '--zero']);
      await same(t, v, args, common, objs);
      for (const p of progs) fs.rmSync(path.join(tests, p));
      const r = await make(`${SHIM} cc`);
      t.is(r.code, 0, r.err);
      t.deepEqual(
        progs.map((p) => fs.readFileSync(path.join(tests, p))),
        plainProgs,
        `${round}: executables byte-identical to gcc's`,
      );
      const s = await v.until((x) => x.stored >= (round === 'cold' ? sources.length + 9 + 2 : 0));
      t.is(s.uncacheable.multiple_sources ?? 0, 0);
      t.is(s.uncacheable.link_with_sources ?? 0, 0);
      if (round === 'cold') {
        // 8 + 2 + 7 compiles, the 2 links.
        t.is(s.misses, sources.length + 9 + 2, JSON.stringify(s));
        t.is(s.not_stored.input_too_new ?? 0, 0);
      } else {
        t.is(s.misses, 0, JSON.stringify(s));
        t.is(s.hits, sources.length + 9 + 2);
      }
    }
    t.deepEqual(splitDirs(v), [], 'private directories removed');
  },
);

test.serial('a source with an error: the others are compiled and the error reported as gcc does, nothing linked, exit 1', async (t) => {
  const v = instance(t);
  v.files({
    'a.c': 'int a(void) { return 1; }\n',
    'bad.c': '#warning first\nint g(void) { return nope; }\n',
    'c.c': 'int c(void) { return 3; }\n#warning after\n',
    'm.c': 'int a(void);\nint main(void) { return a(); }\n',
  });
  // An object of the failing source from before: as gcc, left as it was.
  const stale = () => void v.write('bad.o', 'stale');
  const c = await same(t, v, ['-c', 'a.c', 'bad.c', 'c.c'], v.dir, ['a.o', 'bad.o', 'c.o'], stale);
  t.is(c.code, 1);
  t.regex(c.err, /first[\s\S]*nope[\s\S]*after/);
  t.is(fs.readFileSync(path.join(v.dir, 'bad.o'), 'utf8'), 'stale');
  // An executable from before: no link, so it stays.
  const l = await same(t, v, ['-O2', 'm.c', 'a.c', 'bad.c', 'c.c', '-o', 'prog'], v.dir, ['prog'], () => void v.write('prog', 'old'));
  t.is(l.code, 1);
  t.is(fs.readFileSync(path.join(v.dir, 'prog'), 'utf8'), 'old');
  // Again: the good sources now hit, the bad one fails the same way again.
  await same(t, v, ['-c', 'a.c', 'bad.c', 'c.c'], v.dir, ['a.o', 'bad.o', 'c.o'], stale);
  const s = await v.stats();
  t.true(s.hits >= 2);
  t.true(s.compile_failed >= 3);
});

test.serial('depfiles of each source, and clang: split outputs are what the one command writes', async (t) => {
  const v = instance(t);
  v.files({ 'h.h': '#define N 2\n', 'a.c': '#include "h.h"\nint a(void) { return N; }\n', 'm.c': 'int a(void);\nint main(void) { return a() - 2; }\n' });
  for (const round of [0, 1]) {
    await same(t, v, ['-c', '-MMD', '-MP', '-g', 'a.c', 'm.c'], v.dir, ['a.o', 'm.o', 'a.d', 'm.d']);
    for (const cc of ['gcc', 'clang']) {
      const args = ['-O2', '-g', 'm.c', 'a.c', '-o', `prog-${cc}`];
      fs.rmSync(path.join(v.dir, `prog-${cc}`), { force: true });
      const plain = await run(cc, args, { cwd: v.dir, env: v.env });
      const want = fs.readFileSync(path.join(v.dir, `prog-${cc}`));
      fs.rmSync(path.join(v.dir, `prog-${cc}`));
      const r = await v.cc(args, { compiler: cc });
      t.is(r.code, plain.code);
      t.is(r.err, plain.err);
      t.deepEqual(fs.readFileSync(path.join(v.dir, `prog-${cc}`)), want, `${cc}: executable byte-identical`);
    }
    if (round === 1) t.like(await v.stats(), { hits: 8, misses: 0 });
    else {
      t.like(await v.until((x) => x.stored >= 8), { misses: 8, stored: 8 });
      await v.vrift(['stats', '--zero']);
    }
  }
});

test.serial('what a split cannot do exactly passes through whole, as gcc runs it', async (t) => {
  const v = instance(t);
  v.files({ 'a.c': 'int a(void) { return 1; }\n', 'b.c': 'int main(void) { return 0; }\n', 'c.cc': 'int c() { return 2; }\n' });
  await same(t, v, ['-c', 'a.c', 'b.c', '-o', 'x.o'], v.dir, ['x.o', 'a.o', 'b.o']);
  await same(t, v, ['-c', 'a.c', 'c.cc'], v.dir, ['a.o', 'c.o']);
  await same(t, v, ['-c', '-x', 'c', 'a.c', 'b.c'], v.dir, ['a.o', 'b.o']);
  const s = await v.stats();
  t.is(s.uncacheable.multiple_sources, 3);
  t.is(s.hits + s.misses, 0);
});

// A compiler that records how many of its compiles run at once.
function overlapCompiler(v: Instance): { cc: string; max(): number } {
  const dir = path.join(v.dir, 'overlap');
  fs.mkdirSync(dir);
  const cc = path.join(v.dir, 'occ');
  fs.writeFileSync(
    cc,
    `#!/bin/sh
case " $* " in *" -c "*) : > "${dir}/run.$$"; ls "${dir}" | grep -c '^run\\.' >> "${dir}/log"; sleep 0.4;; esac
gcc "$@"; rc=$?
rm -f "${dir}/run.$$"
exit $rc
`,
    { mode: 0o755 },
  );
  return {
    cc,
    max: () => Math.max(0, ...fs.readFileSync(path.join(dir, 'log'), 'utf8').split('\n').filter(Boolean).map(Number)),
  };
}

function sources(v: Instance, n: number, bad = -1): string[] {
  const names: string[] = [];
  for (let i = 0; i < n; i++) {
    names.push(v.write(`s${i}.c`, i === bad ? `int f${i}(void) { return nope; }\n` : `#warning source ${i}\nint f${i}(void) { return ${i}; }\n`));
  }
  age(...names);
  return names.map((f) => path.basename(f));
}

test.serial('under make -j4 the compiles run in parallel on jobserver tokens; without one, one at a time; output in source order', async (t) => {
  t.timeout(5 * 60_000);
  const v = instance(t);
  const occ = overlapCompiler(v);
  const srcs = sources(v, 6);
  // make before 4.4 hands its jobserver only to recipes it takes for a make (`+`).
  fs.writeFileSync(path.join(v.dir, 'Makefile'), `all:\n\t+${SHIM} ${occ.cc} -c ${srcs.join(' ')}\nserial:\n\t${SHIM} ${occ.cc} -c ${srcs.join(' ')}\n`);
  const plain = await run('gcc', ['-c', ...srcs], { cwd: v.dir, env: v.env });
  const r = await run('make', ['-s', '-j4', 'all'], { cwd: v.dir, env: v.env });
  t.is(r.code, 0, r.err);
  t.is(r.err, plain.err, 'warnings in source order');
  t.true(occ.max() >= 2, `at most ${occ.max()} at once`);
  t.like((await v.stats()) as unknown as Record<string, number>, { misses: 6, split_commands: 1 });

  fs.rmSync(path.join(v.dir, 'overlap', 'log'));
  for (const s of srcs) fs.appendFileSync(path.join(v.dir, s), '\n');
  age(...srcs.map((s) => path.join(v.dir, s)));
  const serial = await run('make', ['-s', '-j4', 'serial'], { cwd: v.dir, env: v.env });
  t.is(serial.code, 0, serial.err);
  t.is(occ.max(), 1, 'no jobserver for this recipe: one at a time');
});

test.serial('a fifo jobserver: tokens taken for parallel compiles and all given back, also when one fails or the command is killed', async (t) => {
  t.timeout(5 * 60_000);
  const v = instance(t);
  const occ = overlapCompiler(v);
  const srcs = sources(v, 6, 3);
  const fifo = path.join(v.dir, 'jobs');
  t.is((await run('mkfifo', [fifo])).code, 0);
  // Held open read-write here, as make holds it; 3 tokens for 4 jobs.
  const fd = fs.openSync(fifo, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
  t.teardown(() => fs.closeSync(fd));
  fs.writeSync(fd, '+++');
  const tokens = () => {
    const b = Buffer.alloc(16);
    try {
      return fs.readSync(fd, b, 0, 16, null);
    } catch {
      return 0;
    }
  };
  const env = { MAKEFLAGS: ` -j4 --jobserver-auth=fifo:${fifo}`, TMPDIR: tmpdir(v) };
  const plain = await run('gcc', ['-c', ...srcs], { cwd: v.dir, env: v.env });
  const r = await v.cc(['-c', ...srcs], { compiler: occ.cc, env });
  t.is(r.code, 1);
  t.is(r.code, plain.code);
  t.is(r.err, plain.err, 'stderr as gcc prints it, in source order');
  t.true(occ.max() >= 2, `at most ${occ.max()} at once`);
  t.is(tokens(), 3, 'every token back');
  fs.writeSync(fd, '+++');

  // Killed while its compiles run: they stop, the tokens and the private directory go.
  fs.rmSync(path.join(v.dir, 'overlap', 'log'));
  fs.writeFileSync(path.join(v.dir, 'main.c'), 'int main(void) { return 0; }\n');
  const { spawn } = await import('node:child_process');
  const child = spawn(SHIM, [occ.cc, 'main.c', ...srcs.filter((_, i) => i !== 3), '-o', 'prog'], { cwd: v.dir, env: { ...v.env, ...env }, stdio: 'ignore' });
  const logFile = path.join(v.dir, 'overlap', 'log');
  await waitFor(() => fs.existsSync(logFile), 'the compiles to start', { everyMs: 20 });
  child.kill('SIGTERM');
  const [, sig] = (await new Promise((res) => child.on('exit', (...a) => res(a)))) as [number | null, string | null];
  t.is(sig, 'SIGTERM');
  t.is(tokens(), 3, 'every token back after SIGTERM');
  t.false(fs.existsSync(path.join(v.dir, 'prog')));
  t.deepEqual(splitDirs(v), [], 'private directory removed');
});
