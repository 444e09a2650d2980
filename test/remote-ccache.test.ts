import fs from 'node:fs';
import path from 'node:path';
import test from './helpers/test.js';
import type { ExecutionContext } from 'ava';
import { run } from './helpers/instance.js';
import { ensureTool, startServe, tmpDir } from './helpers/remote.js';

// ccache 4.7.5 (Debian) as a real client of `vrift serve`: one cache directory compiles and
// uploads, a second, empty one gets remote hits.
async function ccacheRound(t: ExecutionContext, remote: (url: string) => string, expectKeys: RegExp) {
  const ccache = ensureTool('ccache', 'ccache');
  const dir = tmpDir(t);
  const serve = await startServe(t, ['--store', path.join(dir, 'store')]);
  fs.writeFileSync(path.join(dir, 't.c'), '#include <stdio.h>\nint main(void) { puts("remote"); return 0; }\n');
  fs.writeFileSync(path.join(dir, 'ccache.conf'), '');
  const env = (cacheDir: string): NodeJS.ProcessEnv => ({
    ...process.env,
    CCACHE_DIR: path.join(dir, cacheDir),
    CCACHE_CONFIGPATH: path.join(dir, 'ccache.conf'),
    CCACHE_REMOTE_STORAGE: remote(serve.url),
    LC_ALL: 'C',
  });
  const compile = async (cacheDir: string) => {
    fs.rmSync(path.join(dir, 't.o'), { force: true });
    const r = await run(ccache, ['gcc', '-c', 't.c', '-o', 't.o'], { cwd: dir, env: env(cacheDir) });
    t.is(r.code, 0, r.err);
    return fs.readFileSync(path.join(dir, 't.o'));
  };
  const stats = async (cacheDir: string) => {
    const r = await run(ccache, ['--print-stats'], { env: env(cacheDir) });
    return Object.fromEntries(
      r.out
        .trim()
        .split('\n')
        .map((l) => l.split('\t'))
        .map(([k, v]) => [k, Number(v)]),
    );
  };
  const first = await compile('a');
  const sa = await stats('a');
  t.is(sa.remote_storage_miss, 1, JSON.stringify(sa));
  t.is(sa.remote_storage_error ?? 0, 0);
  const puts = (await serve.logged((ls) => ls.some((l) => l.method === 'PUT'))).filter((l) => l.method === 'PUT');
  t.true(puts.length >= 1);
  for (const p of puts) {
    t.is(p.status, 200);
    t.regex(p.path, expectKeys);
  }
  const second = await compile('b');
  t.deepEqual(second, first);
  const sb = await stats('b');
  t.is(sb.remote_storage_hit, 1, JSON.stringify(sb));
  t.is(sb.local_storage_hit ?? 0, 0);
  t.is(sb.remote_storage_error ?? 0, 0);
}

test('ccache layout=bazel against vrift serve: a second empty CCACHE_DIR gets a remote hit', async (t) => {
  await ccacheRound(t, (url) => `${url}/x|layout=bazel`, /^\/x\/ac\/[0-9a-f]{64}$/);
});

test('ccache default subdirs layout against vrift serve: a second empty CCACHE_DIR gets a remote hit', async (t) => {
  await ccacheRound(t, (url) => `${url}/ccache`, /^\/ccache\/[0-9a-v]{2}\/[0-9a-v]{31}$/);
});

test('ccache flat layout against vrift serve with a read-write token', async (t) => {
  const dir = tmpDir(t);
  fs.writeFileSync(path.join(dir, 'tokens'), 'ccache-token-rw rw\n');
  // Token in the URL as Basic auth: ccache's own syntax (user:password@).
  const ccache = ensureTool('ccache', 'ccache');
  const serve = await startServe(t, ['--store', path.join(dir, 'store'), '--tokens', path.join(dir, 'tokens'), '--host', '127.0.0.1']);
  fs.writeFileSync(path.join(dir, 't.c'), 'int f(void) { return 7; }\n');
  fs.writeFileSync(path.join(dir, 'ccache.conf'), '');
  const env = (c: string, cred: string) => ({
    ...process.env,
    CCACHE_DIR: path.join(dir, c),
    CCACHE_CONFIGPATH: path.join(dir, 'ccache.conf'),
    CCACHE_REMOTE_STORAGE: `http://${cred}@${serve.url.slice(7)}/flat|layout=flat`,
  });
  t.is((await run(ccache, ['gcc', '-c', 't.c', '-o', 't.o'], { cwd: dir, env: env('a', 'u:wrong-token') })).code, 0);
  const denied = (await serve.logged((ls) => ls.some((l) => l.method === 'PUT'))).filter((l) => l.method === 'PUT');
  t.true(denied.length >= 1 && denied.every((l) => l.status === 401));
  t.is((await run(ccache, ['gcc', '-c', 't.c', '-o', 't.o'], { cwd: dir, env: env('b', 'u:ccache-token-rw') })).code, 0);
  t.is((await run(ccache, ['gcc', '-c', 't.c', '-o', 't.o'], { cwd: dir, env: env('c', 'u:ccache-token-rw') })).code, 0);
  const r = await run(ccache, ['--print-stats'], { env: env('c', 'x:y') });
  t.regex(r.out, /remote_storage_hit\t1\n/);
});
