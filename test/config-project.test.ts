import fs from 'node:fs';
import path from 'node:path';
import test from './helpers/test.js';
import { objectOutsideScope, rustOutsideScope } from '../daemon/frontends/project-scope.js';
import { age, instance } from './helpers/instance.js';

// Configuration honoured where the user writes it: a project's velo.toml per compile, the
// running daemon's per-instance values flagged when they are not what `vrift config` says,
// values printed as a config file takes them, `clean` after a build on everything it made.

test('velo.toml enabled = false: compiles in that project (and below it) pass through, elsewhere they hit', async (t) => {
  const v = instance(t);
  v.files({ 'off/a.c': 'int a(void) { return 1; }\n', 'off/sub/deep/b.c': 'int b(void) { return 2; }\n', 'on/c.c': 'int c(void) { return 3; }\n' });
  // A compile first, so the daemon runs before the project file exists: it is read per compile.
  t.is((await v.cc(['-c', 'c.c', '-o', 'c.o'], { cwd: path.join(v.dir, 'on') })).code, 0);
  await v.stored(1);
  v.write('off/velo.toml', '[l2_cache]\nenabled = false\n');
  const conf = JSON.parse((await v.vrift(['config', '--json'], { cwd: path.join(v.dir, 'off', 'sub', 'deep') })).out);
  t.is(conf.config.enabled, false);
  t.is(conf.files.project, path.join(v.dir, 'off', 'velo.toml'));
  for (let i = 0; i < 2; i++) {
    t.is((await v.cc(['-c', 'a.c', '-o', 'a.o'], { cwd: path.join(v.dir, 'off') })).code, 0);
    t.is((await v.cc(['-c', 'b.c', '-o', 'b.o'], { cwd: path.join(v.dir, 'off', 'sub', 'deep') })).code, 0);
    t.is((await v.cc(['-c', 'c.c', '-o', 'c.o'], { cwd: path.join(v.dir, 'on') })).code, 0);
  }
  t.true(fs.existsSync(path.join(v.dir, 'off', 'sub', 'deep', 'b.o')));
  const s = await v.stats();
  t.is(s.uncacheable.disabled, 4, 'both compiles in the project, twice');
  t.is(s.hits, 2, 'the other directory hits');
  // The same switch from the build's environment, as config takes it.
  t.is((await v.cc(['-c', 'c.c', '-o', 'c.o'], { cwd: path.join(v.dir, 'on'), env: { VRIFT_ENABLED: 'no' } })).code, 0);
  t.is((await v.stats()).uncacheable.disabled, 5);
  // Edited back: applies from the next compile once `vrift config` has been asked.
  v.write('off/velo.toml', '[l2_cache]\nenabled = true\n');
  t.is(JSON.parse((await v.vrift(['config', '--json'], { cwd: path.join(v.dir, 'off') })).out).config.enabled, true);
  t.is((await v.cc(['-c', 'a.c', '-o', 'a.o'], { cwd: path.join(v.dir, 'off') })).code, 0);
  t.is((await v.stats()).misses, 2);
});

test('velo.toml cache_extensions and a bad project file: compiles pass through with the reason, the build goes on', async (t) => {
  const v = instance(t);
  v.files({ 'a.c': 'int a(void) { return 1; }\n' });
  v.write('velo.toml', '[l2_cache]\ncache_extensions = [".obj"]\n');
  t.is((await v.cc(['-c', 'a.c', '-o', 'a.o'])).code, 0);
  t.is((await v.stats()).uncacheable.not_cache_extension, 1);
  t.is((await v.cc(['-c', 'a.c', '-o', 'a.obj'])).code, 0);
  t.is((await v.stats()).misses, 1);
  v.write('velo.toml', '[l2_cache]\nenabled = "perhaps"\n');
  await v.vrift(['config']);
  const r = await v.cc(['-c', 'a.c', '-o', 'a.o']);
  t.is(r.code, 0, r.err);
  t.is((await v.stats()).uncacheable.config_error, 1);
  // vrift run says why once, and the build goes on.
  const b = await v.vrift(['run', '-q', '--', 'true']);
  t.is(b.code, 0);
  t.regex(b.err, /vrift: compiles here go without the cache: .*velo\.toml: enabled: invalid value "perhaps"/);
});

test('a per-instance value the running daemon does not apply is flagged, with how to apply it', async (t) => {
  const v = instance(t);
  v.files({ 'a.c': 'int a(void) { return 1; }\n' });
  t.is((await v.cc(['-c', 'a.c', '-o', 'a.o'])).code, 0);
  // On a loaded machine the daemon may be too busy to answer at once: config says so; asked again.
  const config = async () => {
    for (let i = 0; ; i++) {
      const c = await v.vrift(['config']);
      if (!/did not answer/.test(c.out) || i === 10) return c;
    }
  };
  let r = await config();
  t.regex(r.out, /running: pid \d+/);
  t.notRegex(r.out, /NOT APPLIED/);
  fs.writeFileSync(path.join(v.home, 'config.toml'), '[l2_cache]\nmax_local_size = "1GiB"\nenabled = true\n');
  r = await config();
  t.regex(r.out, /max_local_size = "1GiB"\s+# user \(.*config\.toml\), per instance; NOT APPLIED: the running daemon uses "50GiB"/);
  t.regex(r.out, /to apply .*: vrift daemon stop/);
  t.notRegex(r.out, /enabled = true.*NOT APPLIED/);
  const json = JSON.parse((await v.vrift(['config', '--json'])).out);
  t.deepEqual(Object.keys(json.not_applied), ['max_local_size']);
  // A project file does not set an instance value: said, not applied.
  v.write('velo.toml', '[l2_cache]\nlocal_path = "elsewhere"\n');
  r = await config();
  t.regex(r.out, /# not applied: .*velo\.toml sets local_path, a per-instance setting/);
  t.regex(r.out, new RegExp(`local_path = "${path.join(v.home, 'l2')}"`));
  t.regex((await v.vrift(['daemon', 'stop'])).out, /stopped/);
  t.is((await v.vrift(['daemon', 'start'])).code, 0);
  r = await config();
  t.regex(r.out, /running: pid \d+/);
  t.notRegex(r.out, /NOT APPLIED/);
});

test('keys outside [l2_cache] are errors like unknown keys inside it', async (t) => {
  const v = instance(t);
  fs.mkdirSync(v.home, { recursive: true });
  const user = path.join(v.home, 'config.toml');
  fs.writeFileSync(user, 'max_local_size = "5GB"\n[l2_cache]\nenabled = true\n');
  let r = await v.vrift(['config']);
  t.is(r.code, 2);
  t.regex(r.err, /config\.toml: unknown key max_local_size at the top level \(settings go in \[l2_cache\]\)/);
  fs.writeFileSync(user, '[l2-cache]\nenabled = true\n');
  r = await v.vrift(['config']);
  t.regex(r.err, /config\.toml: unknown section \[l2-cache\]/);
  fs.rmSync(user);
  v.write('velo.toml', '[l2_cache]\nenabled = true\n[l2_cache.extra]\nx = 1\n');
  r = await v.vrift(['config']);
  t.regex(r.err, /velo\.toml: unknown key extra/);
  v.write('velo.toml', 'enabled = false\n');
  t.regex((await v.vrift(['config'])).err, /velo\.toml: unknown key enabled at the top level/);
});

test('vrift config prints values as a config file takes them: pasted back, they mean the same', async (t) => {
  const v = instance(t, { VRIFT_IDLE_TIMEOUT: '' });
  fs.mkdirSync(v.home, { recursive: true });
  fs.writeFileSync(
    path.join(v.home, 'config.toml'),
    '[l2_cache]\nmax_local_size = "1536M"\nmax_age = "36h"\nremote_wait = "1500ms"\nspare_files = 7\ncache_targets = ["debug"]\n',
  );
  const human = await v.vrift(['config']);
  t.is(human.code, 0, human.err);
  t.regex(human.out, /^idle_timeout = "30m" /m);
  t.regex(human.out, /^max_local_size = "1536MiB" /m);
  t.regex(human.out, /^max_age = "36h" /m);
  t.regex(human.out, /^remote_wait = "1500ms" /m);
  const before = JSON.parse((await v.vrift(['config', '--json'])).out).config;
  const lines = human.out
    .split('\n')
    .filter((l) => /^\w+ = /.test(l))
    .map((l) => l.replace(/\s+#.*$/, ''));
  fs.writeFileSync(path.join(v.home, 'config.toml'), `[l2_cache]\n${lines.join('\n')}\n`);
  const after = JSON.parse((await v.vrift(['config', '--json'])).out);
  t.deepEqual(after.config, before);
  for (const k of ['max_local_size', 'max_age', 'idle_timeout', 'remote_wait', 'remote_timeout', 'cache_targets']) t.is(after.sources[k].source, 'user', k);
});

test('clean --all right after a build removes what the build stored; nothing lands after it', async (t) => {
  const v = instance(t);
  const n = 6;
  for (let i = 0; i < n; i++) v.write(`m${i}.c`, `int m${i}(int x) { return x * ${i + 2}; }\n`);
  age(...Array.from({ length: n }, (_, i) => path.join(v.dir, `m${i}.c`)));
  v.write('Makefile', `all: ${Array.from({ length: n }, (_, i) => `m${i}.o`).join(' ')}\n`);
  const b = await v.vrift(['run', '-q', '--', 'make', '-j2']);
  t.is(b.code, 0, b.err);
  const clean = await v.vrift(['clean', '--all']);
  t.is(clean.code, 0, clean.err);
  t.regex(clean.out, /removed [1-9]\d* files/);
  const s = await v.stats();
  t.is(s.local.entries, 0, 'no result of the build was written after the clean');
  t.is(s.local.bytes, 0);
});

test('VRIFT_DISABLE and VRIFT_DEBUG take the booleans config takes', async (t) => {
  const v = instance(t);
  v.files({ 'a.c': 'int a(void) { return 1; }\n' });
  t.is((await v.cc(['-c', 'a.c', '-o', 'a.o'])).code, 0);
  const before = (await v.stats()).requests;
  for (const off of ['yes', 'true', 'TRUE', '1', 'on']) {
    t.is((await v.cc(['-c', 'a.c', '-o', 'a.o'], { env: { VRIFT_DISABLE: off } })).code, 0);
  }
  t.is((await v.stats()).requests, before, 'the daemon was not asked');
  for (const on of ['no', 'false', '0', '']) {
    t.is((await v.cc(['-c', 'a.c', '-o', 'a.o'], { env: { VRIFT_DISABLE: on } })).code, 0);
  }
  const s = await v.stats();
  t.is(s.requests, before + 4);
  t.is(s.hits, 4);
  // VRIFT_DEBUG: a line per call in shim.log saying what happened to it (README).
  const r = await v.cc(['-c', 'a.c', '-o', 'a.o'], { env: { VRIFT_DEBUG: 'true' } });
  t.is(r.err, '');
  const log = fs.readFileSync(path.join(v.home, 'log', 'shim.log'), 'utf8');
  t.regex(log, /"msg":"hit: gcc in .*, 1 files written, exit 0"/);
});

test('cache_targets and cache_extensions: what they keep out of the cache', (t) => {
  const s = { enabled: true, base_dir: '/', cache_targets: ['debug', 'release'], cache_extensions: ['.rlib', '.rmeta', '.o', '.a'] };
  const cargo = { CARGO: '/usr/bin/cargo' };
  t.is(rustOutsideScope('/p/target/debug/deps', ['lib'], ['link'], cargo, s), undefined);
  t.is(rustOutsideScope('/p/target/x86_64-unknown-linux-gnu/release/deps', ['rlib'], [], cargo, s), undefined);
  t.is(rustOutsideScope('/p/target/debug/build/foo-0123', ['bin'], [], cargo, s), undefined, 'a build script of a listed profile');
  t.is(rustOutsideScope('/p/target/dist/deps', ['lib'], [], cargo, s), 'not_cache_target');
  t.is(rustOutsideScope('/p/target/dist/deps', ['lib'], [], {}, s), undefined, 'only when cargo runs rustc');
  t.is(rustOutsideScope('/p/target/debug/deps', ['staticlib'], [], cargo, { ...s, cache_extensions: ['.rlib'] }), 'not_cache_extension');
  t.is(rustOutsideScope('/p/target/debug/deps', ['lib'], ['dep-info', 'metadata'], cargo, { ...s, cache_extensions: ['.rlib'] }), 'not_cache_extension');
  t.is(rustOutsideScope('/p/target/debug/deps', ['proc-macro'], [], cargo, { ...s, cache_extensions: [] }), undefined, 'shared objects are not governed');
  t.is(objectOutsideScope('a.o', 'object', s), undefined);
  t.is(objectOutsideScope('a.obj', 'object', s), 'not_cache_extension');
  t.is(objectOutsideScope('a', 'object', s), undefined);
  t.is(objectOutsideScope('a.s', 'assembly', s), undefined);
});
