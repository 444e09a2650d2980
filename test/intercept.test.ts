import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from './helpers/test.js';
import { interceptEnv } from '../shim/intercept.js';
import { CLI, instance, ROOT, run, type Instance } from './helpers/instance.js';

// `vrift run` and its exec interceptor (native/intercept.c): every exec of a compiler,
// whatever name or path the build uses, reaches the cache; nothing else changes.

const FIXTURES = path.join(ROOT, 'test', 'fixtures', 'intercept');

const vrun = (v: Instance, args: string[], o: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) =>
  run(process.execPath, [CLI, 'run', ...args], { cwd: o.cwd ?? v.dir, env: { ...v.env, ...o.env } });

function summary(err: string): { hits: number; misses: number; uncacheable: number } {
  const m = /vrift: [\d.]+ s, (\d+) hits, (\d+) misses, (\d+) uncacheable/.exec(err);
  if (!m) throw new Error(`no summary line in: ${err}`);
  return { hits: Number(m[1]), misses: Number(m[2]), uncacheable: Number(m[3]) };
}

// Built without vrift, into the test's own directory.
function tool(v: Instance, name: string, extra: string[] = []): string {
  const out = path.join(v.dir, '..', name + extra.join(''));
  execFileSync('gcc', ['-O1', '-o', out, path.join(FIXTURES, `${name}.c`), ...extra]);
  return out;
}

function sources(v: Instance, n: number) {
  v.files(Object.fromEntries(Array.from({ length: n }, (_, i) => [`src/m${i}.c`, `int m${i}(int x) { return x * ${i + 3}; }\n`])));
}

test('a CMake tree configured without vrift: vrift run -- make caches its compiles, the rebuild is all hits with the same objects', async (t) => {
  const v = instance(t);
  sources(v, 3);
  v.write('src/CMakeLists.txt', 'cmake_minimum_required(VERSION 3.10)\nproject(t C)\nadd_library(t STATIC m0.c m1.c m2.c)\n');
  const build = path.join(v.dir, 'build');
  fs.mkdirSync(build);
  const conf = await run('cmake', ['../src'], { cwd: build, env: v.env });
  t.is(conf.code, 0, conf.err);
  t.regex(fs.readFileSync(path.join(build, 'CMakeCache.txt'), 'utf8'), /^CMAKE_C_COMPILER:FILEPATH=\/usr\/bin\/cc$/m);
  const a = await vrun(v, ['--', 'make'], { cwd: build });
  t.is(a.code, 0, a.err);
  t.deepEqual(summary(a.err), { hits: 0, misses: 3, uncacheable: 0 });
  const objs = () => [0, 1, 2].map((i) => fs.readFileSync(path.join(build, 'CMakeFiles', 't.dir', `m${i}.c.o`)));
  const first = objs();
  t.is((await run('make', ['clean'], { cwd: build })).code, 0);
  const b = await vrun(v, ['--', 'make'], { cwd: build });
  t.is(b.code, 0, b.err);
  t.deepEqual(summary(b.err), { hits: 3, misses: 0, uncacheable: 0 });
  t.deepEqual(objs(), first);
  t.true(fs.existsSync(path.join(build, 'libt.a')));
});

test('CC=/usr/bin/gcc, gcc-12, x86_64-linux-gnu-gcc or a link of any name to gcc: each compile reaches the cache; a link named gcc to another program does not', async (t) => {
  const v = instance(t);
  sources(v, 2);
  v.write('Makefile', 'all: src/m0.o src/m1.o\nclean:\n\trm -f src/*.o\n');
  const links = path.join(v.dir, 'links');
  fs.mkdirSync(links);
  fs.symlinkSync('/usr/bin/cc', path.join(links, 'my-compiler'));
  let first = true;
  for (const cc of ['/usr/bin/gcc', 'gcc-12', 'x86_64-linux-gnu-gcc', path.join(links, 'my-compiler')]) {
    await run('make', ['clean'], { cwd: v.dir });
    const r = await vrun(v, ['--', 'make', `CC=${cc}`]);
    t.is(r.code, 0, r.err);
    // One compiler, one set of arguments: the first name compiles, the others hit.
    t.deepEqual(summary(r.err), first ? { hits: 0, misses: 2, uncacheable: 0 } : { hits: 2, misses: 0, uncacheable: 0 }, cc);
    first = false;
  }
  // Known by the file, not the name: "gcc" that is really echo runs as echo, untouched.
  fs.symlinkSync('/bin/echo', path.join(links, 'gcc'));
  const e = await vrun(v, ['--', path.join(links, 'gcc'), '-c', 'x.c']);
  t.is(e.code, 0, e.err);
  t.is(e.out, '-c x.c\n');
  t.deepEqual(summary(e.err), { hits: 0, misses: 0, uncacheable: 0 });
});

test('a build tool that starts the compiler with posix_spawn, posix_spawnp, execvp, execv or execl reaches the cache', async (t) => {
  const v = instance(t);
  sources(v, 1);
  const spawner = tool(v, 'spawner');
  let first = true;
  for (const [mode, cc] of [
    ['posix_spawn', '/usr/bin/cc'],
    ['posix_spawnp', 'cc'],
    ['execvp', 'gcc'],
    ['execv', '/usr/bin/gcc-12'],
    ['execl', '/usr/bin/cc'],
    ['execlp', 'cc'],
  ]) {
    fs.rmSync(path.join(v.dir, 'src', 'm0.o'), { force: true });
    const r = await vrun(v, ['--', spawner, mode, cc, '-c', 'src/m0.c', '-o', 'src/m0.o']);
    t.is(r.code, 0, `${mode}: ${r.err}`);
    t.deepEqual(summary(r.err), first ? { hits: 0, misses: 1, uncacheable: 0 } : { hits: 1, misses: 0, uncacheable: 0 }, mode);
    t.true(fs.existsSync(path.join(v.dir, 'src', 'm0.o')), mode);
    first = false;
  }
  // An argv[0] other than the file's name (clang++ reads its mode there) is left alone and counted.
  const own = await vrun(v, ['--', spawner, 'argv0', '/usr/bin/gcc', 'gcc-12', '-c', 'src/m0.c', '-o', 'src/m0.o']);
  t.is(own.code, 0, own.err);
  t.deepEqual(summary(own.err), { hits: 0, misses: 0, uncacheable: 0 });
  t.regex(own.err, /, 1 calls went around the cache/);
  // A failing compile fails the same way, with the compiler's own exit code.
  v.files({ 'bad.c': 'int f( {\n' });
  const bad = await vrun(v, ['--', spawner, 'posix_spawnp', 'cc', '-c', 'bad.c', '-o', 'bad.o']);
  t.is(bad.code, 1);
  t.regex(bad.err, /bad\.c:1:\d+: error/);
});

test('CMake configured under vrift run records the real compiler, not the shims directory', async (t) => {
  const v = instance(t);
  sources(v, 1);
  v.write('src/CMakeLists.txt', 'cmake_minimum_required(VERSION 3.10)\nproject(t C CXX)\nadd_library(t STATIC m0.c)\n');
  const build = path.join(v.dir, 'build');
  fs.mkdirSync(build);
  const r = await vrun(v, ['--', 'cmake', '../src'], { cwd: build });
  t.is(r.code, 0, r.err);
  const cache = fs.readFileSync(path.join(build, 'CMakeCache.txt'), 'utf8');
  t.regex(cache, /^CMAKE_C_COMPILER:FILEPATH=\/usr\/bin\/cc$/m);
  t.regex(cache, /^CMAKE_CXX_COMPILER:FILEPATH=\/usr\/bin\/c\+\+$/m);
  t.false(cache.includes(path.join(v.home, 'shims')));
  t.false(cache.includes('vrift-shim'));
  const m = await vrun(v, ['--', 'make'], { cwd: build });
  t.is(m.code, 0, m.err);
  t.is(summary(m.err).misses, 1);
});

test('the compiler runs without the interceptor and with the shims directory first on PATH, as plain masquerade has it', async (t) => {
  const v = instance(t);
  sources(v, 1);
  const dump = path.join(v.dir, 'seen');
  // A wrapper script is a compiler by its name, like the shim takes it.
  // Appended: the daemon may compile a sample again in the background, in its own environment.
  const cc = v.write('wrap/cc', `#!/bin/sh\necho "[$LD_PRELOAD] $PATH" >> ${dump}\nexec /usr/bin/gcc "$@"\n`);
  fs.chmodSync(cc, 0o755);
  const r = await vrun(v, ['--', 'make', `CC=${cc}`, 'src/m0.o'], { env: { LD_PRELOAD: '' } });
  t.is(r.code, 0, r.err);
  t.is(summary(r.err).misses, 1);
  const seen = fs.readFileSync(dump, 'utf8').split('\n')[0];
  t.true(seen.startsWith(`[] ${path.join(v.home, 'shims')}:`), seen);
});

test('non-compiler execs are unchanged under vrift run: a make check tree gives the same output, exit codes, argv, environment and errors', async (t) => {
  const v = instance(t);
  const argdump = tool(v, 'argdump');
  const spawner = tool(v, 'spawner');
  // Statically linked: the interceptor cannot reach it, it still runs as before.
  const argdumpStatic = tool(v, 'argdump', ['-static']);
  v.write(
    't/ok.sh',
    `#!/bin/sh\necho "ok $# [$1] [$2]"\nenv | grep -v -e '^VRIFT_' -e '^LD_PRELOAD=' -e '^RUSTC_WRAPPER=' -e '^_=' | sort\n${argdump} 0 'a b' '' "\\$x" '*'\n`,
  );
  v.write('t/fail.sh', '#!/bin/sh\necho failing >&2\nexit 3\n');
  v.write(
    't/missing.sh',
    `#!/bin/sh\n/nonexistent/prog arg\necho "sh: $?"\nnosuchcommand\necho "sh: $?"\n${spawner} execvp nosuchcommand; echo "spawner: $?"\n${spawner} posix_spawn /nonexistent/x; echo "spawner: $?"\n${spawner} execve ./t; echo "spawner: $?"\n`,
  );
  // A compiler-named file that cannot be run fails in the shell, as it would without vrift.
  fs.mkdirSync(path.join(v.dir, 'noexec'));
  fs.copyFileSync('/usr/bin/gcc', path.join(v.dir, 'noexec', 'gcc'));
  fs.chmodSync(path.join(v.dir, 'noexec', 'gcc'), 0o644);
  v.write(
    't/noexec.sh',
    `#!/bin/sh\n${path.join(v.dir, 'noexec', 'gcc')} --version\necho "sh: $?"\n${spawner} execv ${path.join(v.dir, 'noexec', 'gcc')} --version; echo "spawner: $?"\n`,
  );
  v.write(
    't/env.sh',
    `#!/bin/sh\nenv -i A=1 ${argdump} 0 x\nenv B=2 ${argdump} 5 y; echo "exit $?"\n${spawner} posix_spawnp argdump 4 z 2>&1; echo "exit $?"\n`,
  );
  v.write('t/static.sh', `#!/bin/sh\n${argdumpStatic} 6 'q r' | grep -v '^env PATH='; echo "exit $?"\n`);
  v.write(
    'Makefile',
    [
      'TESTS = t/ok.sh t/fail.sh t/missing.sh t/noexec.sh t/env.sh t/static.sh',
      'check: $(TESTS:%=%.run)',
      '%.run:',
      '\t@echo "== $*"; sh $* "one two" three; echo "== $* exited $$?"',
      't/fail.sh.run:',
      '\t@sh t/fail.sh',
      '',
    ].join('\n'),
  );
  for (const f of ['t/ok.sh', 't/fail.sh', 't/missing.sh', 't/noexec.sh', 't/env.sh', 't/static.sh']) fs.chmodSync(path.join(v.dir, f), 0o755);
  const env = { ...v.env, PATH: `${path.dirname(argdump)}:${v.env.PATH}` };
  const plain = await run('make', ['-k', 'check'], { cwd: v.dir, env });
  const under = await vrun(v, ['-q', '--', 'make', '-k', 'check'], { env });
  t.is(plain.code, 2);
  t.is(under.code, plain.code);
  t.is(under.out, plain.out);
  t.is(under.err, plain.err);
  t.regex(plain.out, /argv\[2\] \[a b\]\nargv\[3\] \[\]\nargv\[4\] \[\$x\]\nargv\[5\] \[\*\]/);
  t.regex(plain.out, /spawner: 127/);
  t.regex(plain.err, /spawner: execvp: No such file or directory/);
  t.regex(plain.err, /spawner: posix_spawn: No such file or directory/);
  t.regex(plain.err, /spawner: execve: Permission denied/);
  t.regex(plain.out, /exit 5/);
  t.regex(plain.out, /sh: 126\n[\s\S]*spawner: 127/);
  t.regex(plain.err, /spawner: execv: Permission denied/);
  t.regex(plain.out, /argv\[2\] \[q r\]\n[\s\S]*exit 0/);
  // The interceptor was there: the same tree compiling through cc reaches the cache.
  v.files({ 'c.c': 'int c;\n' });
  const c = await vrun(v, ['--', 'sh', '-c', 'cc -c c.c'], { env });
  t.is(summary(c.err).misses, 1);
});

test('fail open: a missing library or one that does not load leaves vrift run to PATH masquerade', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vrift-ic-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const missing = interceptEnv(process.env, dir, { lib: path.join(dir, 'nope.so') });
  t.false(missing.ok);
  const junk = path.join(dir, 'libvrift-intercept.so');
  fs.writeFileSync(junk, 'not an ELF file');
  const broken = interceptEnv(process.env, dir, { lib: junk });
  t.false(broken.ok);
  if (!broken.ok) t.regex(broken.reason, /cannot be preloaded|invalid ELF|too short/);
  const good = interceptEnv(process.env, dir);
  t.true(good.ok);
  if (good.ok) t.is(good.env.VRIFT_MASQUERADE, dir);
});
