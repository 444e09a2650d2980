import fs from 'node:fs';
import path from 'node:path';
import test from './helpers/test.js';
import { age, instance, JS_SHIM, run } from './helpers/instance.js';

test('every command answers --help', async (t) => {
  const v = instance(t);
  for (const cmd of [
    [],
    ['daemon'],
    ['daemon', 'start'],
    ['daemon', 'stop'],
    ['daemon', 'status'],
    ['stats'],
    ['clean'],
    ['verify'],
    ['config'],
    ['shims-dir'],
    ['run'],
    ['demo'],
    ['mount'],
    ['unmount'],
    ['mounts'],
  ]) {
    const r = await v.vrift([...cmd, '--help']);
    t.is(r.code, 0, cmd.join(' '));
    t.regex(r.out, /Usage: vrift/, cmd.join(' '));
  }
  const d = await run(process.execPath, [path.join(path.dirname(JS_SHIM), '../daemon/main.js'), '--help']);
  t.is(d.code, 0);
  t.regex(d.out, /Usage: vriftd/);
});

test('vrift run masquerades as cc for make, and the rebuild is all hits', async (t) => {
  const v = instance(t);
  const srcs = [0, 1, 2].map((i) => v.write(`m${i}.c`, `int m${i}(int x) { return x + ${i}; }\n`));
  age(...srcs);
  // make's default $(CC) is cc, found on PATH: the shims directory comes first.
  v.write('Makefile', 'all: m0.o m1.o m2.o\nclean:\n\trm -f *.o\n');
  const a = await v.vrift(['run', '--', 'make', '-j2']);
  t.is(a.code, 0, a.err);
  t.regex(a.err, /vrift: [\d.]+ s, 0 hits, 3 misses, 0 uncacheable, hit rate 0\.0%/);
  await run('make', ['clean'], { cwd: v.dir });
  const b = await v.vrift(['run', '--', 'make', '-j2']);
  t.is(b.code, 0, b.err);
  t.regex(b.err, /vrift: [\d.]+ s, 3 hits, 0 misses, 0 uncacheable, hit rate 100\.0%/);
  for (const i of [0, 1, 2]) t.true(fs.existsSync(path.join(v.dir, `m${i}.o`)));
  // A failing build's exit code comes through.
  v.write('Makefile', 'all:\n\texit 3\n');
  t.is((await v.vrift(['run', '--', 'make'])).code, 2);
});

test('config shows each value and where it came from; bad values are clear errors', async (t) => {
  const v = instance(t, { VRIFT_MAX_LOCAL_SIZE: '2GB', VRIFT_IDLE_TIMEOUT: '' });
  v.write('velo.toml', '[l2_cache]\nbase_dir = "/tmp"\nmax_age = "7d"\n');
  fs.mkdirSync(v.home, { recursive: true });
  fs.writeFileSync(path.join(v.home, 'config.toml'), '[l2_cache]\nidle_timeout = "10m"\nmax_local_size = "1GB"\n');
  const r = await v.vrift(['config', '--json']);
  t.is(r.code, 0, r.err);
  const c = JSON.parse(r.out);
  t.is(c.config.max_local_size, 2 * 1024 ** 3);
  t.is(c.sources.max_local_size.source, 'env');
  t.is(c.config.base_dir, '/tmp');
  t.is(c.sources.base_dir.source, 'project');
  // max_age is per instance: a project's velo.toml does not set it (and says so).
  t.is(c.config.max_age, 0);
  t.deepEqual(c.ignored, [{ key: 'max_age', where: path.join(v.dir, 'velo.toml') }]);
  t.is(c.config.idle_timeout, 600_000);
  t.is(c.sources.idle_timeout.source, 'user');
  t.is(c.sources.enabled.source, 'default');
  const human = await v.vrift(['config']);
  t.regex(human.out, /max_local_size = "2GiB"\s+# env \(VRIFT_MAX_LOCAL_SIZE\), per instance/);
  v.write('velo.toml', '[l2_cache]\nmax_local_size = "lots"\n');
  const bad = await v.vrift(['config']);
  t.is(bad.code, 2);
  t.regex(bad.err, /velo\.toml: max_local_size: "lots" is not a size/);
  v.write('velo.toml', '[l2_cache]\nno_such_key = 1\n');
  t.regex((await v.vrift(['config'])).err, /unknown key no_such_key/);
});

test('stats --zero, clean --all and daemon stop/status', async (t) => {
  const v = instance(t);
  age(v.write('a.c', 'int a(void) { return 1; }\n'));
  t.is((await v.cc(['-c', 'a.c', '-o', 'a.o'])).code, 0);
  t.is((await v.cc(['-c', 'a.c', '-o', 'a.o'])).code, 0);
  let s = await v.stats();
  t.is(s.hits, 1);
  t.true(s.local.bytes > 0);
  const human = await v.vrift(['stats']);
  t.regex(human.out, /hits\s+1\s+\(hit rate 50\.0%\)/);
  t.is((await v.vrift(['stats', '--zero'])).code, 0);
  s = await v.stats();
  t.is(s.hits, 0);
  const clean = await v.vrift(['clean', '--all']);
  t.is(clean.code, 0, clean.err);
  t.regex(clean.out, /removed \d+ files/);
  s = await v.stats();
  t.is(s.local.bytes, 0);
  t.is((await v.cc(['-c', 'a.c', '-o', 'a.o'])).code, 0);
  t.is((await v.stats()).misses, 1, 'cleaned store misses');
  // Stats survive a daemon restart.
  t.is((await v.vrift(['daemon', 'stop'])).code, 0);
  t.is((await v.vrift(['daemon', 'status'])).code, 1);
  t.is((await v.stats()).misses, 1);
  t.is((await v.vrift(['daemon', 'status'])).code, 0);
  const bad = await v.vrift(['clean', '--max-size', 'huge']);
  t.is(bad.code, 2);
  t.regex(bad.err, /--max-size.*'huge' is invalid/);
});

test('a frozen daemon: the build goes on without it, and stats count the calls that went around the cache', async (t) => {
  const v = instance(t);
  age(v.write('f.c', 'int f(void) { return 7; }\n'));
  t.is((await v.cc(['-c', 'f.c', '-o', 'f.o'])).code, 0);
  const pid = (await v.stats()).daemon.pid as number;
  process.kill(pid, 'SIGSTOP');
  t.teardown(() => process.kill(pid, 'SIGCONT'));
  fs.rmSync(path.join(v.dir, 'f.o'));
  const r = await v.cc(['-c', 'f.c', '-o', 'f.o'], { env: { VRIFT_CONNECT_TIMEOUT_MS: '300', VRIFT_TIMEOUT_MS: '300' } });
  process.kill(pid, 'SIGCONT');
  t.is(r.code, 0, r.err);
  t.true(fs.existsSync(path.join(v.dir, 'f.o')), 'the compiler ran');
  let s = await v.stats();
  // Resumed, the daemon may still read the abandoned request from its socket and answer it
  // (a hit nobody reads): timing decides, so only the first call's miss is certain.
  t.is(s.misses, 1);
  t.true(s.hits <= 1);
  const fb = s.shim_fallbacks as Record<string, number>;
  t.is((fb.connect ?? 0) + (fb.timeout ?? 0), 1, JSON.stringify(fb));
  t.regex((await v.vrift(['stats'])).out, /shim went around the cache\s+1/);
  // Lines from before the last --zero, and torn lines, are not counted.
  fs.appendFileSync(path.join(v.home, 'log', 'fallback.ndjson'), '{"ts":1,"reason":"timeout"}\n{"ts":');
  t.deepEqual((await v.stats()).shim_fallbacks, fb);
  t.is((await v.vrift(['stats', '--zero'])).code, 0);
  s = await v.stats();
  t.deepEqual(s.shim_fallbacks, {});
});

test('the TypeScript shim: miss, hit with identical bytes and replayed warnings, fail open', async (t) => {
  const v = instance(t);
  age(v.write('w.c', 'int f(int x) { int unused; return x; }\n'));
  const js = (args: string[], env: NodeJS.ProcessEnv = {}) => run(process.execPath, [JS_SHIM, 'gcc', ...args], { cwd: v.dir, env: { ...v.env, ...env } });
  const a = await js(['-Wall', '-c', 'w.c', '-o', 'w.o']);
  t.is(a.code, 0, a.err);
  const obj = fs.readFileSync(path.join(v.dir, 'w.o'));
  fs.rmSync(path.join(v.dir, 'w.o'));
  const b = await js(['-Wall', '-c', 'w.c', '-o', 'w.o']);
  t.is(b.code, 0);
  t.deepEqual(b.stderr, a.stderr);
  t.regex(b.err, /unused variable/);
  t.deepEqual(fs.readFileSync(path.join(v.dir, 'w.o')), obj);
  const s = await v.stats();
  t.is(s.hits, 1);
  t.is(s.misses, 1);
  const bad = await js(['-c', 'nope.c', '-o', 'n.o']);
  t.not(bad.code, 0);
  t.regex(bad.err, /nope\.c/);
  const off = await js(['-c', 'w.c', '-o', 'w2.o'], { VRIFT_DISABLE: '1' });
  t.is(off.code, 0);
  t.is((await v.stats()).hits, 1);
});
