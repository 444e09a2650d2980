import fs from 'node:fs';
import path from 'node:path';
import test from './helpers/test.js';
import { instance, type Stats } from './helpers/instance.js';
import { fakeServer } from './helpers/remote.js';

// Where settings come from, through a real daemon: velo.toml found walking up from the
// compile's directory, VRIFT_* over the files, a CLI flag over the environment.

test('velo.toml found walking up from a subdirectory applies to its compiles; VRIFT_ENABLED overrides it', async (t) => {
  const v = instance(t);
  v.write('velo.toml', '[l2_cache]\nenabled = false\n');
  v.files({ 'src/deep/er/a.c': 'int a(void) { return 1; }\n' });
  const sub = path.join(v.dir, 'src', 'deep', 'er');
  t.is((await v.cc(['-c', 'a.c', '-o', 'a.o'], { cwd: sub })).code, 0);
  t.like(await v.stats(), { misses: 0, uncacheable: { disabled: 1 } }, 'the file two levels up turned vrift off');
  t.is((await v.cc(['-c', 'a.c', '-o', 'a.o'], { cwd: sub, env: { VRIFT_ENABLED: '1' } })).code, 0);
  t.like(await v.stats(), { misses: 1, uncacheable: { disabled: 1 } }, 'the environment turned it back on');
  // Outside the project (no velo.toml above): the default.
  fs.mkdirSync(path.join(v.home, '..', 'elsewhere'));
  fs.copyFileSync(path.join(sub, 'a.c'), path.join(v.home, '..', 'elsewhere', 'a.c'));
  t.is((await v.cc(['-c', 'a.c', '-o', 'a.o'], { cwd: path.join(v.home, '..', 'elsewhere') })).code, 0);
  t.like(await v.stats(), { uncacheable: { disabled: 1 } });
});

test('the remote: config.toml names one, VRIFT_REMOTE overrides it, vrift run --cache-remote overrides both', async (t) => {
  const answer404 = (_req: unknown, res: { writeHead(n: number): { end(): void } }) => res.writeHead(404).end();
  const [file, env, flag] = await Promise.all([fakeServer(t, answer404), fakeServer(t, answer404), fakeServer(t, answer404)]);
  const v = instance(t, { VRIFT_REMOTE: env.url });
  fs.mkdirSync(v.home, { recursive: true });
  fs.writeFileSync(path.join(v.home, 'config.toml'), `[l2_cache]\nremote_url = "${file.url}"\n`);
  v.files({ 'a.c': 'int a(void) { return 1; }\n', 'b.c': 'int b(void) { return 2; }\n' });
  t.is((await v.cc(['-c', 'a.c', '-o', 'a.o'])).code, 0);
  const s1 = (await v.stats()) as Stats & { remote?: { url: string } };
  t.is(s1.remote?.url, env.url, 'the environment over the file');
  t.true(env.requests.length > 0, "the lookup went to the environment's server");
  t.deepEqual(file.requests, []);
  const r = await v.vrift(['run', '-q', '--cache-remote', flag.url, '--', 'gcc', '-c', 'b.c', '-o', 'b.o']);
  t.is(r.code, 0, r.err);
  t.is(((await v.stats()) as Stats & { remote?: { url: string } }).remote?.url, flag.url, 'the flag over the environment');
  t.true(flag.requests.length > 0, "the lookup went to the flag's server");
  t.deepEqual(file.requests, []);
});
