import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import test from './helpers/test.js';
import type { ExecutionContext } from 'ava';
import { age, instance, type Stats } from './helpers/instance.js';
import { buildProject, fakeServer, PATIENT_REMOTE, refusingUrl, request, startServe, tmpDir, type Served, writeProject } from './helpers/remote.js';
import { missingOnServer, storeKeys } from './helpers/store-keys.js';

type RStats = Stats & { remote?: Record<string, number | string | boolean> };

// Machine A compiles and uploads (its daemon drains the upload queue when stopped).
async function populate(t: ExecutionContext, remote: string): Promise<Record<string, Buffer>> {
  const a = instance(t, { VRIFT_REMOTE: remote });
  writeProject(a.dir);
  // At once, as make -j would: results go up as they are made, and these three close
  // together, so in one pack.
  const objs: Record<string, Buffer> = Object.assign({}, ...(await Promise.all(['a.c', 'b.c', 'c.c'].map((f) => buildProject(t, a, [f])))));
  const s = (await a.stats()) as RStats;
  t.is(s.misses, 3);
  await a.stop();
  return objs;
}

test('B with an empty local store gets every object from the server A uploaded to: identical bytes, zero compiles', async (t) => {
  const dir = tmpDir(t);
  const serve = await startServe(t, ['--store', path.join(dir, 'store'), '--access-log', 'off']);
  const fromA = await populate(t, serve.url);
  const st = JSON.parse(await (await fetch(`${serve.url}/status`)).text());
  t.is(st.puts, 10); // 3 objects, 3 results, 3 manifests, and the pack of the three manifests

  const b = instance(t, { VRIFT_REMOTE: serve.url, ...PATIENT_REMOTE });
  writeProject(b.dir);
  const fromB = await buildProject(t, b);
  t.deepEqual(fromB, fromA);
  const s = (await b.stats()) as RStats;
  t.is(s.hits, 3);
  t.is(s.misses, 0);
  // Two requests for three compiles: the first manifest, with its result and object
  // attached, names the pack A uploaded; the other two manifests came in that pack.
  t.is(s.remote!.hits, 2);
  t.is(s.remote!.packs, 1);
  t.is(s.remote!.from_packs, 2);
  t.is(s.remote!.attached, 6);
  t.is(s.remote!.errors, 0);
  t.true(Number(s.remote!.bytes_down) > 0);
  t.is((await b.until((x) => x.local.blobs >= 3)).local.blobs, 3); // fetched objects entered B's local store (when lookups paused)
  // A second build in B is served locally: no more remote traffic.
  await buildProject(t, b);
  const s2 = (await b.stats()) as RStats;
  t.is(s2.hits, 6);
  t.is(s2.remote!.hits, 2);
});

// After a pull: B built the old tree, so its own manifests know the old header only; A built
// the new one and uploaded. B's build of the new tree gets A's objects: a local manifest with no
// entry for these inputs still asks the server for its manifest.
test("after a pull, a compile whose local manifest knows only the old inputs gets the teammate's result from the server: no compile", async (t) => {
  const dir = tmpDir(t);
  const serve = await startServe(t, ['--store', path.join(dir, 'store'), '--access-log', 'off']);
  const b = instance(t, { VRIFT_REMOTE: serve.url, ...PATIENT_REMOTE });
  writeProject(b.dir);
  await buildProject(t, b);
  t.like(await b.stats(), { misses: 3, hits: 0 });

  const pulled = (d: string) => {
    fs.writeFileSync(path.join(d, 'common.h'), '#define COMMON 43\n');
    age(path.join(d, 'common.h'));
  };
  const a = instance(t, { VRIFT_REMOTE: serve.url, ...PATIENT_REMOTE });
  writeProject(a.dir);
  pulled(a.dir);
  const fromA = await buildProject(t, a);
  t.like(await a.stats(), { misses: 3 });
  await a.stop(); // drains its uploads

  pulled(b.dir);
  const fromB = await buildProject(t, b);
  t.deepEqual(fromB, fromA);
  const s = (await b.stats()) as RStats;
  t.like(s, { misses: 3, hits: 3 }, 'the new tree: three hits, no compile');
  t.true(Number(s.remote!.hits) >= 1, JSON.stringify(s.remote));
  // Kept in B's own manifests: the same build again is served locally, and so is the old tree.
  await buildProject(t, b);
  const again = (await b.stats()) as RStats;
  t.like(again, { misses: 3, hits: 6 });
  t.is(again.remote!.hits, s.remote!.hits);
});

test('remote_url and remote_token from the user config file, or the token from VRIFT_REMOTE_TOKEN, reach a server that wants a token', async (t) => {
  const dir = tmpDir(t);
  fs.writeFileSync(path.join(dir, 'tokens'), 'rw-token-abcdef12 rw\n');
  const serve = await startServe(t, ['--store', path.join(dir, 'store'), '--access-log', 'off', '--tokens', path.join(dir, 'tokens'), '--host', '127.0.0.1']);
  const puts = async () =>
    JSON.parse(await (await fetch(`${serve.url}/status`, { headers: { authorization: 'Bearer rw-token-abcdef12' } })).text()).puts as number;
  // From config.toml: uploads go up.
  const a = instance(t);
  fs.mkdirSync(a.home, { recursive: true });
  fs.writeFileSync(path.join(a.home, 'config.toml'), `[l2_cache]\nremote_url = "${serve.url}"\nremote_token = "rw-token-abcdef12"\n`);
  writeProject(a.dir);
  const fromA = await buildProject(t, a);
  const sa = (await a.stats()) as RStats;
  t.is(sa.remote?.url, serve.url);
  await a.stop();
  t.true((await puts()) >= 9, "A uploaded with the config file's token");
  // From the environment, against the same server: hits.
  // Patient: on a loaded machine a lookup could stop waiting (remote_wait) and compile.
  const b = instance(t, { VRIFT_REMOTE: serve.url, VRIFT_REMOTE_TOKEN: 'rw-token-abcdef12', VRIFT_REMOTE_TIMEOUT: '10s', VRIFT_REMOTE_WAIT: '10s' });
  writeProject(b.dir);
  t.deepEqual(await buildProject(t, b), fromA);
  const sb = (await b.stats()) as RStats;
  t.is(sb.hits, 3);
  t.is(sb.remote!.errors, 0);
  // No token: the server says 401, counted, and B compiles locally.
  const c = instance(t, { VRIFT_REMOTE: serve.url, ...PATIENT_REMOTE });
  writeProject(c.dir);
  t.deepEqual(await buildProject(t, c), fromA);
  const sc = (await c.stats()) as RStats;
  t.is(sc.hits, 0);
  t.true(Number(sc.remote!.errors) >= 1, JSON.stringify(sc.remote));
});

test('read_only never uploads', async (t) => {
  const dir = tmpDir(t);
  const serve = await startServe(t, ['--store', path.join(dir, 'store'), '--access-log', 'off']);
  const ro = instance(t, { VRIFT_REMOTE: serve.url, VRIFT_READ_ONLY: '1' });
  writeProject(ro.dir);
  await buildProject(t, ro, ['a.c']);
  await ro.stop();
  t.is(JSON.parse(await (await fetch(`${serve.url}/status`)).text()).puts, 0);
  const s = (await ro.stats()) as RStats;
  t.is(s.remote!.read_only, true);
  t.is(s.remote!.uploads, 0);
});

test('vrift run --cache-remote points the daemon it starts at the server', async (t) => {
  const dir = tmpDir(t);
  const serve = await startServe(t, ['--store', path.join(dir, 'store'), '--access-log', 'off']);
  const a = instance(t);
  writeProject(a.dir);
  const r = await a.vrift(['run', '--cache-remote', serve.url, '--', 'gcc', '-c', 'a.c', '-o', 'a.o']);
  t.is(r.code, 0, r.err);
  t.notRegex(r.err, /running daemon uses remote/);
  const s = (await a.stats()) as RStats;
  t.is(s.remote?.url, serve.url);
  // A daemon already running with another remote, and no compile waiting: restarted with
  // this one, after its uploads went up.
  const second = await fakeServer(t, (_req, res) => res.writeHead(404).end());
  const otherUrl = `${second.url}/x`;
  const other = await a.vrift(['run', '-q', '--cache-remote', otherUrl, '--', 'true']);
  t.is(other.code, 0);
  t.true(other.err.includes(`restarted the daemon to use remote ${otherUrl} (it used ${serve.url})`), other.err);
  t.is(((await a.stats()) as RStats).remote?.url, otherUrl);
  // Everything a.c's compile stored (its object, result and manifest) is on the first server.
  const keys = storeKeys(a.home);
  t.true(keys.cas.length >= 1 && keys.ac.length >= 2, JSON.stringify(keys));
  t.deepEqual(await missingOnServer(serve.url, keys), []);
  const again = await a.vrift(['run', '-q', '--cache-remote', otherUrl, '--', 'true']);
  t.is(again.err, '', 'the same remote: nothing to do');
});

test("the server killed in the middle of B's build: B finishes with correct objects", async (t) => {
  const dir = tmpDir(t);
  const serve = await startServe(t, ['--store', path.join(dir, 'store'), '--access-log', 'off']);
  const fromA = await populate(t, serve.url);
  const b = instance(t, { VRIFT_REMOTE: serve.url, ...PATIENT_REMOTE });
  writeProject(b.dir);
  // d.c and e.c: compiles nobody uploaded, asked for after the server is gone.
  for (const [f, n] of [
    ['d.c', 4],
    ['e.c', 5],
  ] as const)
    fs.writeFileSync(path.join(b.dir, f), `#include "common.h"\nint f${n}(void) { return COMMON + ${n}; }\n`);
  age(path.join(b.dir, 'd.c'), path.join(b.dir, 'e.c'));
  const first = await buildProject(t, b, ['a.c']);
  await serve.stop();
  // b.c and c.c were in the pack the first hit fetched: still hits without the server.
  const rest = await buildProject(t, b, ['b.c', 'c.c']);
  t.deepEqual({ ...first, ...rest }, fromA);
  const more = await buildProject(t, b, ['d.c', 'e.c']);
  t.is(Object.keys(more).length, 2);
  const s = (await b.stats()) as RStats;
  // a.c hits from the server; b.c and c.c hit from the pack that answer fetched when A's three
  // results went up in one pack (on a loaded machine one may have gone up alone: it then
  // compiles, which is what a dead server must cost).
  t.true(s.hits >= 1 && s.hits <= 3, `hits ${s.hits}`);
  t.is(s.hits + s.misses, 5);
  // a.c's own answer may name the pack too (its manifest went up thin once the pack was sealed):
  // then every hit came from the pack.
  const fromPacks = Number(s.remote!.from_packs);
  t.true(fromPacks === s.hits - 1 || fromPacks === s.hits, `from_packs ${fromPacks}, hits ${s.hits}`);
  // The first failure cools the remote down; a request already in flight with it (a lookup of
  // an object that was not in the pack) may fail alongside and be counted too.
  const failed = Number(s.remote!.errors) + Number(s.remote!.timeouts);
  t.true(failed >= 1 && failed <= 2, `failures counted: ${failed}`);
  t.true(Number(s.remote!.skipped) >= 1, 'e.c skipped the remote (cooling down)');
});

// A proxy in front of a populated server that spoils what it returns in one way.
// `garbage` and `hang` spoil every answer (the check at start included); `-on-get` only the
// answers to lookups (GET), after a check at start that went well.
type Spoil = 'wrong-bytes' | 'truncated' | 'garbage' | 'hang' | 'http-500' | 'garbage-on-get' | 'hang-on-get';

async function spoiled(t: ExecutionContext, upstream: Served, how: Spoil): Promise<string> {
  if (how === 'garbage' || how === 'hang') {
    const sockets = new Set<net.Socket>();
    const srv = net.createServer((s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {});
      if (how === 'garbage') s.once('data', () => s.end('\x00\x17 this is not HTTP \xff\r\n\r\n'));
      // hang: accept and never answer
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    t.teardown(
      () =>
        new Promise<void>((r) => {
          for (const s of sockets) s.destroy();
          srv.close(() => r());
        }),
    );
    return `http://127.0.0.1:${(srv.address() as net.AddressInfo).port}`;
  }
  const f = await fakeServer(t, (req, res) => {
    if (req.method !== 'GET') {
      req.resume();
      res.writeHead(req.method === 'HEAD' ? 404 : 200, { 'content-length': 0 });
      return res.end();
    }
    if (how === 'http-500') {
      res.writeHead(500, { 'content-length': 0 });
      return res.end();
    }
    if (how === 'garbage-on-get') return void req.socket.end('\x00\x17 this is not HTTP \xff\r\n\r\n');
    if (how === 'hang-on-get') return; // never answers
    http.get(`${upstream.url}${req.url}`, (up) => {
      const chunks: Buffer[] = [];
      up.on('data', (d) => chunks.push(d));
      up.on('end', () => {
        const body = Buffer.concat(chunks);
        // Objects: on their own under /cas/, or attached to a manifest (a bundle, blobs last).
        const isCas = req.url!.includes('/cas/') || body.subarray(0, 4).toString() === 'VRB1';
        if (up.statusCode !== 200 || !isCas) {
          res.writeHead(up.statusCode!, { 'content-length': body.length });
          return res.end(body);
        }
        if (how === 'wrong-bytes') {
          body[req.url!.includes('/cas/') ? body.length >> 1 : body.length - 3] ^= 0xff;
          res.writeHead(200, { 'content-length': body.length });
          return res.end(body);
        }
        // truncated: promise the whole object, send half, hang up
        res.writeHead(200, { 'content-length': body.length });
        res.write(body.subarray(0, body.length >> 1), () => res.destroy());
      });
    });
  });
  return f.url;
}

for (const how of ['wrong-bytes', 'truncated', 'garbage', 'hang', 'http-500', 'garbage-on-get', 'hang-on-get'] as const) {
  test(`a server that answers with ${how}: B compiles locally, correct objects, the failure is counted and the remote cools down`, async (t) => {
    const dir = tmpDir(t);
    const serve = await startServe(t, ['--store', path.join(dir, 'store'), '--access-log', 'off']);
    const fromA = await populate(t, serve.url);
    const bad = await spoiled(t, serve, how);
    // A short deadline where the failure is one (hang); otherwise a loaded machine's slow
    // proxy could time out before the answer whose kind this test is about arrives.
    const b = instance(t, { VRIFT_REMOTE: bad, VRIFT_REMOTE_TIMEOUT: how.startsWith('hang') ? '1s' : '5s' });
    writeProject(b.dir);
    const fromB = await buildProject(t, b);
    t.deepEqual(fromB, fromA);
    // A hanging server: the build may be done before the check at start times out (1 s).
    const hangs = how === 'hang' || how === 'hang-on-get';
    const s = (hangs ? await b.until((x) => Number((x as RStats).remote?.timeouts) >= 1) : await b.stats()) as RStats;
    t.is(s.hits, 0);
    t.is(s.misses, 3);
    const r = s.remote!;
    // The requests in flight before the first failure came back (lookups stop waiting after
    // remote_wait, so a compile and its upload's HEAD may start meanwhile), then the
    // cool-down: no more tries.
    const failed = Number(r.errors) + Number(r.timeouts);
    t.true(failed >= 1 && failed <= 4, JSON.stringify(r));
    if (hangs) t.true(Number(r.timeouts) >= 1);
    if (how.endsWith('-on-get')) t.true(Number(r.misses) + Number(r.hits) === 0 && failed >= 1, 'a lookup asked and failed');
    // Compiles that asked at once (after the check at start) may each get wrong bytes.
    if (how === 'wrong-bytes') t.true(Number(r.integrity) >= 1 && Number(r.integrity) <= failed, JSON.stringify(r));
    t.true(Number(r.skipped) >= 2, JSON.stringify(r));
    t.is(r.cooling_down, true);
    // What was fetched wrongly never entered the store; local compiles did (written at a pause).
    t.is((await b.until((x) => x.local.blobs >= 3, 'the three local objects written')).local.blobs, 3);
  });
}

test('an unreachable server (nothing listening) costs nothing but a counted error', async (t) => {
  const url = await refusingUrl(t);
  t.is(
    await request(url).then(
      () => 'answered',
      (e: NodeJS.ErrnoException) => e.code,
    ),
    'ECONNREFUSED',
  );
  const b = instance(t, { VRIFT_REMOTE: url });
  writeProject(b.dir);
  await buildProject(t, b);
  const s = (await b.stats()) as RStats;
  t.is(s.misses, 3);
  t.is(s.remote!.errors, 1);
  t.true(Number(s.remote!.skipped) >= 2);
});
