import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import test from './helpers/test.js';
import type { ExecutionContext } from 'ava';
import { compress, decompress } from 'zstd-napi';
import { digestHex } from '../daemon/hash.js';
import { request, startServe, tmpDir } from './helpers/remote.js';
import { waitFor } from './helpers/wait.js';

const sha256 = (b: Buffer | string) => crypto.createHash('sha256').update(b).digest('hex');

function filesUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.join(e.parentPath ?? e.path, e.name));
}

test('Bazel layout: CAS by SHA-256 or BLAKE3, AC opaque, instance prefix ignored, 404 on a miss, empty blob always there', async (t) => {
  const dir = tmpDir(t);
  const s = await startServe(t, ['--store', path.join(dir, 'store')]);
  const body = Buffer.from('int x = 1;\n');
  t.is((await request(`${s.url}/cas/${sha256(body)}`, { method: 'PUT', body })).status, 200);
  t.is((await request(`${s.url}/inst/cas/${digestHex(body)}`, { method: 'PUT', body })).status, 200);
  const got = await request(`${s.url}/other/cas/${sha256(body)}`);
  t.is(got.status, 200);
  t.deepEqual(got.body, body);
  const head = await request(`${s.url}/cas/${digestHex(body)}`, { method: 'HEAD' });
  t.is(head.status, 200);
  t.is(head.headers['content-length'], String(body.length));
  const opaque = Buffer.from('cc ac anything at all');
  const key = 'ab'.repeat(32);
  t.is((await request(`${s.url}/ccache/ac/${key}`, { method: 'PUT', body: opaque })).status, 200);
  t.deepEqual((await request(`${s.url}/ac/${key}`)).body, opaque);
  t.is((await request(`${s.url}/ac/${'cd'.repeat(32)}`)).status, 404);
  t.is((await request(`${s.url}/cas/${'cd'.repeat(32)}`, { method: 'HEAD' })).status, 404);
  t.is((await request(`${s.url}/cas/${sha256('')}`)).status, 200);
  t.is((await request(`${s.url}/`)).status, 200);
  const st = JSON.parse((await request(`${s.url}/status`)).body.toString());
  t.is(st.puts, 3);
  t.true(st.hits >= 3);
  const metrics = (await request(`${s.url}/metrics`)).body.toString();
  t.regex(metrics, /vrift_serve_requests_total\{method="PUT",status="200"\} 3/);
  await s.stop();
  const log = s.accessLog.map((l) => JSON.parse(l));
  t.true(log.some((l) => l.method === 'PUT' && l.status === 200 && l.in === body.length));
});

test('a 48 MB upload without a named digest is checked both ways (SHA-256 on a worker) and stored; a wrong SHA-256 key refused', async (t) => {
  const dir = tmpDir(t);
  const s = await startServe(t, ['--store', path.join(dir, 'store')]);
  const big = crypto.randomBytes(48 * 2 ** 20);
  t.is((await request(`${s.url}/cas/${sha256(big)}`, { method: 'PUT', body: big })).status, 200);
  t.is((await request(`${s.url}/cas/${digestHex(big)}`, { method: 'PUT', body: big })).status, 200);
  const wrong = Buffer.from(big);
  wrong[wrong.length - 1] ^= 1;
  const key = sha256(big);
  t.is((await request(`${s.url}/cas/${key.slice(0, -1)}${key.endsWith('0') ? '1' : '0'}`, { method: 'PUT', body: big })).status, 400, 'matches neither digest');
  t.is((await request(`${s.url}/cas/${sha256(big)}`, { method: 'PUT', body: wrong })).status, 400);
  const got = await request(`${s.url}/cas/${sha256(big)}`);
  t.is(got.status, 200);
  t.true(got.body.equals(big));
});

test('ccache subdirs and flat keys are stored as opaque values', async (t) => {
  const dir = tmpDir(t);
  const s = await startServe(t, ['--store', path.join(dir, 'store')]);
  const v = Buffer.from('cc ac value');
  t.is((await request(`${s.url}/ccache/81/98fockmhrarl9u8jnlpsmlvmu06sic6`, { method: 'PUT', body: v })).status, 200);
  t.is((await request(`${s.url}/flat/8198fockmhrarl9u8jnlpsmlvmu06sic6`, { method: 'PUT', body: v })).status, 200);
  t.deepEqual((await request(`${s.url}/ccache/81/98fockmhrarl9u8jnlpsmlvmu06sic6`)).body, v);
  t.deepEqual((await request(`${s.url}/flat/8198fockmhrarl9u8jnlpsmlvmu06sic6`)).body, v);
  t.is((await request(`${s.url}/ccache/82/98fockmhrarl9u8jnlpsmlvmu06sic6`)).status, 404);
});

test('a CAS upload whose bytes do not match its digest gets 400 and nothing is stored', async (t) => {
  const dir = tmpDir(t);
  const store = path.join(dir, 'store');
  const s = await startServe(t, ['--store', store]);
  const claimed = sha256('the real content');
  const r = await request(`${s.url}/cas/${claimed}`, { method: 'PUT', body: 'something else' });
  t.is(r.status, 400);
  t.is((await request(`${s.url}/cas/${claimed}`, { method: 'HEAD' })).status, 404);
  t.deepEqual(filesUnder(store), []);
  // zstd-encoded upload: the digest is of the decompressed bytes.
  const raw = Buffer.alloc(100_000, 7);
  const ok = await request(`${s.url}/cas/${digestHex(raw)}`, { method: 'PUT', body: compress(raw), headers: { 'content-encoding': 'zstd' } });
  t.is(ok.status, 200);
  const bad = await request(`${s.url}/cas/${sha256('x')}`, { method: 'PUT', body: compress(raw), headers: { 'content-encoding': 'zstd' } });
  t.is(bad.status, 400);
  t.is(filesUnder(store).length, 1);
});

test('ccache subdirs keys whose first two characters are "ac" are plain keys, not Bazel AC (1 ccache object in 256)', async (t) => {
  const dir = tmpDir(t);
  const s = await startServe(t, ['--store', path.join(dir, 'store')]);
  // ccache 4.7's key: 4 hex characters, then base32hex; `subdirs` puts the first two in a directory.
  const rest = 'c4' + '0123456789abcdefghijklmnopqrstuv'.slice(3);
  const result = Buffer.from('a ccache result');
  for (const prefix of ['', '/ccache']) {
    const url = `${s.url}${prefix}/ac/${rest}`;
    t.is((await request(url, { method: 'HEAD' })).status, 404, url);
    t.is((await request(url, { method: 'PUT', body: result })).status, 200, url);
    const got = await request(url);
    t.is(got.status, 200, url);
    t.deepEqual(got.body, result);
  }
  // Bazel's AC beside it is untouched, and a Bazel-length key still has to be a hash.
  t.is((await request(`${s.url}/ac/${'ab'.repeat(32)}`)).status, 404);
  t.is((await request(`${s.url}/ac/${'g'.repeat(64)}`, { method: 'PUT', body: result })).status, 400);
});

test('many clients at once: 64 concurrent uploads and reads of distinct objects all land and read back intact', async (t) => {
  const dir = tmpDir(t);
  const s = await startServe(t, ['--store', path.join(dir, 'store'), '--access-log', 'off']);
  const bodies = Array.from({ length: 64 }, (_, i) => crypto.randomBytes(1000 + i * 4000));
  const puts = await Promise.all(bodies.map((b) => request(`${s.url}/cas/${sha256(b)}`, { method: 'PUT', body: b })));
  t.deepEqual(
    puts.map((r) => r.status),
    bodies.map(() => 200),
  );
  const gets = await Promise.all(bodies.map((b) => request(`${s.url}/cas/${sha256(b)}`)));
  gets.forEach((r, i) => t.true(r.status === 200 && r.body.equals(bodies[i]), `object ${i}`));
  const st = JSON.parse((await request(`${s.url}/status`)).body.toString());
  t.is(st.puts, 64);
});

test('bad paths get 400, other methods 405, uploads over the limit 413 with nothing stored', async (t) => {
  const dir = tmpDir(t);
  const store = path.join(dir, 'store');
  const s = await startServe(t, ['--store', store, '--max-size', '64KB']);
  const h = 'a'.repeat(64);
  for (const p of [
    '/x/../cas/' + h,
    '/../etc/passwd',
    '/cas/' + h.slice(1),
    '/ac/' + h.toUpperCase(),
    '/ac/' + h + 'a',
    '/%2e%2e/ac/' + h,
    '/in$st/ac/' + h,
    '/.hidden/ac/' + h,
    '//ac/' + h,
    '/ac/' + h + '/x',
    '/a/b/c/d/e/f/g/h/i',
  ]) {
    const r = await request(`${s.url}${p}`, { method: 'PUT', body: 'v' });
    t.is(r.status, 400, p);
    t.is((await request(`${s.url}${p}`)).status, 400, p);
  }
  t.is((await request(`${s.url}/ac/${h}`, { method: 'DELETE' })).status, 405);
  t.is((await request(`${s.url}/ac/${h}`, { method: 'POST', body: 'v' })).status, 405);
  const big = crypto.randomBytes(100_000);
  t.is((await request(`${s.url}/cas/${sha256(big)}`, { method: 'PUT', body: big })).status, 413);
  // Chunked (no Content-Length) and zstd bodies are counted as they stream.
  const bomb = compress(Buffer.alloc(1_000_000));
  t.is((await request(`${s.url}/ac/${h}`, { method: 'PUT', body: bomb, headers: { 'content-encoding': 'zstd' } })).status, 413);
  t.deepEqual(filesUnder(store), []);
});

test('tokens: 401 without or with a wrong token, 403 for a read-only token on writes, Bearer and Basic accepted', async (t) => {
  const dir = tmpDir(t);
  const store = path.join(dir, 'store');
  fs.writeFileSync(path.join(dir, 'tokens'), '# team\nrw-token-123456 rw\nro-token-123456 ro\n');
  const s = await startServe(t, ['--store', store, '--tokens', path.join(dir, 'tokens'), '--host', '127.0.0.1']);
  const body = Buffer.from('payload');
  const url = `${s.url}/cas/${sha256(body)}`;
  t.is((await request(url, { method: 'PUT', body })).status, 401);
  t.is((await request(url, { method: 'PUT', body, headers: { authorization: 'Bearer nope-nope-nope' } })).status, 401);
  t.is((await request(url, { method: 'PUT', body, headers: { authorization: 'Bearer ro-token-123456' } })).status, 403);
  const basicRo = 'Basic ' + Buffer.from('me:ro-token-123456').toString('base64');
  t.is((await request(url, { method: 'PUT', body, headers: { authorization: basicRo } })).status, 403);
  t.deepEqual(filesUnder(store), []);
  t.is((await request(url)).status, 401);
  t.is((await request(url, { headers: { authorization: basicRo } })).status, 404);
  const basicRw = 'Basic ' + Buffer.from('ci:rw-token-123456').toString('base64');
  t.is((await request(url, { method: 'PUT', body, headers: { authorization: basicRw } })).status, 200);
  t.is((await request(`${s.url}/ac/${'b'.repeat(64)}`, { method: 'PUT', body, headers: { authorization: 'Bearer rw-token-123456' } })).status, 200);
  t.deepEqual((await request(url, { headers: { authorization: 'Bearer ro-token-123456' } })).body, body);
  t.is(filesUnder(store).length, 2);
  // The numbers and the store's location are for readers; `/` answers anybody (health checks).
  for (const p of ['/status', '/metrics']) {
    t.is((await request(`${s.url}${p}`)).status, 401, p);
    t.is((await request(`${s.url}${p}`, { headers: { authorization: basicRo } })).status, 200, p);
  }
  const anon = await request(`${s.url}/`);
  t.is(anon.status, 200);
  t.false(anon.body.toString().includes(store), 'the store is not named to a stranger');
  t.true((await request(`${s.url}/`, { headers: { authorization: basicRo } })).body.toString().includes(store));
});

test('without a tokens file the server listens on loopback only; with one, on every address unless told', async (t) => {
  const dir = tmpDir(t);
  const outside = Object.values(os.networkInterfaces())
    .flat()
    .find((i) => i && i.family === 'IPv4' && !i.internal)?.address;
  t.truthy(outside, 'this machine has a non-loopback IPv4 address');
  const reach = (host: string, port: number) =>
    new Promise<boolean>((resolve) => {
      const c = net.connect(port, host, () => {
        c.destroy();
        resolve(true);
      });
      c.on('error', () => resolve(false));
    });
  const open = await startServe(t, ['--store', path.join(dir, 'a')]);
  t.is(new URL(open.url).hostname, '127.0.0.1');
  t.false(await reach(outside!, open.port), 'not reachable from outside');
  fs.writeFileSync(path.join(dir, 'tokens'), 'rw-token-123456 rw\n');
  const guarded = await startServe(t, ['--store', path.join(dir, 'b'), '--tokens', path.join(dir, 'tokens')]);
  t.true(await reach(outside!, guarded.port), 'reachable from outside with tokens');
  t.true(await reach('127.0.0.1', guarded.port));
});

test('--allow-anonymous-read lets GET through without credentials, never PUT', async (t) => {
  const dir = tmpDir(t);
  fs.writeFileSync(path.join(dir, 'tokens'), 'rw-token-123456 rw\n');
  const s = await startServe(t, ['--store', path.join(dir, 'store'), '--tokens', path.join(dir, 'tokens'), '--host', '127.0.0.1', '--allow-anonymous-read']);
  const body = Buffer.from('z');
  t.is((await request(`${s.url}/cas/${sha256(body)}`, { method: 'PUT', body })).status, 401);
  t.is((await request(`${s.url}/cas/${sha256(body)}`, { method: 'PUT', body, headers: { authorization: 'Bearer rw-token-123456' } })).status, 200);
  t.deepEqual((await request(`${s.url}/cas/${sha256(body)}`)).body, body);
});

test('zstd on GET when accepted, plain otherwise', async (t) => {
  const dir = tmpDir(t);
  const s = await startServe(t, ['--store', path.join(dir, 'store')]);
  const body = Buffer.from('abcdefgh'.repeat(100_000));
  t.is((await request(`${s.url}/cas/${digestHex(body)}`, { method: 'PUT', body })).status, 200);
  const z = await request(`${s.url}/cas/${digestHex(body)}`, { headers: { 'accept-encoding': 'gzip, zstd' } });
  t.is(z.headers['content-encoding'], 'zstd');
  t.true(z.body.length < body.length / 10);
  t.deepEqual(decompress(z.body), body);
  const plain = await request(`${s.url}/cas/${digestHex(body)}`, { headers: { 'accept-encoding': 'gzip' } });
  t.is(plain.headers['content-encoding'], undefined);
  t.deepEqual(plain.body, body);
});

test('size-based LRU eviction keeps recently used objects', async (t) => {
  const dir = tmpDir(t);
  const s = await startServe(t, ['--store', path.join(dir, 'store'), '--max-size', '100KB']);
  const blobs = [0, 1, 2, 3, 4].map((i) => Buffer.alloc(30_000, i));
  for (const [i, b] of blobs.entries()) {
    t.is((await request(`${s.url}/cas/${sha256(b)}`, { method: 'PUT', body: b })).status, 200);
    if (i === 1) t.is((await request(`${s.url}/cas/${sha256(blobs[1])}`)).status, 200); // 1 now in the in-memory cache
    if (i === 2) t.is((await request(`${s.url}/cas/${sha256(blobs[0])}`)).status, 200); // 0 used again
  }
  const present = await Promise.all(blobs.map(async (b) => (await request(`${s.url}/cas/${sha256(b)}`, { method: 'HEAD' })).status === 200));
  t.deepEqual(present, [true, false, false, true, true]);
  t.is((await request(`${s.url}/cas/${sha256(blobs[1])}`)).status, 404, 'an evicted object is not served from memory either');
  t.deepEqual((await request(`${s.url}/cas/${sha256(blobs[0])}`)).body, blobs[0]);
  const st = JSON.parse((await request(`${s.url}/status`)).body.toString());
  t.true(st.bytes <= 100_000);
});

test('a restarted server evicts by use before the restart: a hit moves the object forward on disk too', async (t) => {
  const dir = tmpDir(t);
  const store = path.join(dir, 'store');
  const blobs = [0, 1, 2].map((i) => Buffer.alloc(30_000, i + 10));
  const a = await startServe(t, ['--store', store, '--max-size', '100KB']);
  for (const b of blobs) t.is((await request(`${a.url}/cas/${sha256(b)}`, { method: 'PUT', body: b })).status, 200);
  await a.stop();
  // Stored two hours ago, 0 first: with no use since, 0 would go first.
  const file = (b: Buffer) => path.join(store, 'cas', sha256(b).slice(0, 2), sha256(b));
  const hoursAgo = (h: number) => new Date(Date.now() - h * 3600_000);
  blobs.forEach((b, i) => fs.utimesSync(file(b), hoursAgo(3 - i * 0.1), hoursAgo(3 - i * 0.1)));
  const b = await startServe(t, ['--store', store, '--max-size', '100KB']);
  t.deepEqual((await request(`${b.url}/cas/${sha256(blobs[0])}`)).body, blobs[0]); // used now
  await waitFor(() => Date.now() - fs.statSync(file(blobs[0])).mtimeMs < 60_000, "the hit's mtime written back to the file", { everyMs: 20 });
  await b.stop();
  const c = await startServe(t, ['--store', store, '--max-size', '100KB']);
  const fourth = Buffer.alloc(30_000, 99);
  t.is((await request(`${c.url}/cas/${sha256(fourth)}`, { method: 'PUT', body: fourth })).status, 200);
  const present = await Promise.all([...blobs, fourth].map(async (x) => (await request(`${c.url}/cas/${sha256(x)}`, { method: 'HEAD' })).status === 200));
  t.deepEqual(present, [true, false, true, true], 'the least recently used (1) went, not the oldest stored (0)');
  t.false(fs.existsSync(file(blobs[1])), 'its file is gone from the store as the upload is answered');
  t.true(fs.existsSync(file(blobs[0])));
});

test('a restarted server still has what was stored', async (t) => {
  const dir = tmpDir(t);
  const store = path.join(dir, 'store');
  const body = crypto.randomBytes(5000);
  const a = await startServe(t, ['--store', store]);
  t.is((await request(`${a.url}/cas/${sha256(body)}`, { method: 'PUT', body })).status, 200);
  await a.stop();
  const b = await startServe(t, ['--store', store]);
  t.deepEqual((await request(`${b.url}/cas/${sha256(body)}`)).body, body);
});

/**
 * `vrift serve` receiving an upload (half of its body sent, its temp file made) when the test
 * sends the server two signals: SIGTERM directly, then, once that one is handled (two pending
 * at once are one to the kernel), SIGTERM through the CLI, which passes it on.
 */
async function twoSignalsDuringAnUpload(t: ExecutionContext) {
  const dir = tmpDir(t);
  const store = path.join(dir, 'store');
  const s = await startServe(t, ['--store', store, '--access-log', 'off']);
  const out = { stderr: '' };
  s.proc.stderr!.on('data', (d) => (out.stderr += d));
  const exited = new Promise<[number | null, string | null]>((r) => s.proc.once('exit', (code, sig) => r([code, sig])));
  const server = Number(fs.readFileSync(`/proc/${s.proc.pid}/task/${s.proc.pid}/children`, 'utf8').trim().split(' ')[0]);
  t.true(server > 0, 'the server process');

  const body = crypto.randomBytes(256 << 10);
  const req = http.request({ host: '127.0.0.1', port: s.port, method: 'PUT', path: `/cas/${sha256(body)}`, headers: { 'content-length': body.length } });
  const answer = new Promise<number>((resolve, reject) => {
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
  });
  answer.catch(() => {}); // a failed upload fails the test's assert, not the file's worker
  req.write(body.subarray(0, body.length >> 1));
  // The server is receiving it (its temp file exists) when the signals come.
  await waitFor(() => filesUnder(path.join(store, 'tmp')).some((f) => path.basename(f).startsWith('put-')), 'the upload under way');
  process.kill(server, 'SIGTERM');
  await waitFor(() => /stopping on signal/.test(out.stderr), 'the first signal handled', { ms: 15_000 });
  s.proc.kill('SIGTERM');
  await waitFor(() => /signal ignored: already stopping/.test(out.stderr), 'the second signal ignored', { ms: 15_000 });
  return { s, store, out, exited, body, req, answer };
}

test('SIGTERM twice (a cgroup kill reaches `vrift serve` and its server, and the CLI passes its own on): an upload under way finishes, then it exits 0', async (t) => {
  const { store, exited, body, req, answer } = await twoSignalsDuringAnUpload(t);
  req.end(body.subarray(body.length >> 1));
  t.is(await answer, 200, 'the upload finished');
  t.deepEqual(await exited, [0, null], 'exited 0 after the drain, not killed by the second signal');
  t.deepEqual(fs.readFileSync(filesUnder(path.join(store, 'cas')).find((f) => f.endsWith(sha256(body)))!), body);
});

test('a third signal while it drains (someone insisting) ends it at once: exit 1, and the log names the upload it cut', async (t) => {
  const { s, store, out, exited, body, answer } = await twoSignalsDuringAnUpload(t); // the rest of the body never comes
  s.proc.kill('SIGINT'); // a Ctrl-C, passed on
  t.deepEqual(await exited, [1, null], 'exit 1: the drain was cut');
  await t.throwsAsync(answer, undefined, 'the upload was cut, not answered');
  const cut = out.stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .find((l) => l.msg === 'drain cut short: exiting before it finished');
  t.like(cut, {
    level: 'error',
    why: 'SIGINT: a third signal while stopping',
    requests: 1,
    under_way: [`PUT /cas/${sha256(body)}`],
    closing: 'requests under way',
  });
  t.deepEqual(
    filesUnder(path.join(store, 'cas')).filter((f) => f.endsWith(sha256(body))),
    [],
    'nothing stored',
  );
});
