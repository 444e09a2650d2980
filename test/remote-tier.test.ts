import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import test from './helpers/test.js';
import type { ExecutionContext } from 'ava';
import { digestHex } from '../daemon/hash.js';
import { memoryLogger } from '../daemon/log.js';
import { IdleWriter } from '../daemon/store/idle-writer.js';
import { LocalStore } from '../daemon/store/local.js';
import { WriteBehind } from '../daemon/store/write-behind.js';
import { HttpTier } from '../daemon/tiers/http.js';
import { PROBE_DIGEST } from '../daemon/tiers/types.js';
import { TieredStore } from '../daemon/tiers/tiered.js';
import { decodeBundle, decodePack, encodeBundle, encodePack, isBundle } from '../daemon/tiers/bundle.js';
import { fakeServer, PATIENT, request, startServe, tieredAt, tmpDir } from './helpers/remote.js';
import { certificates } from './helpers/tls.js';
import { waitFor } from './helpers/wait.js';

test('HttpTier with tokens: rw Bearer writes, ro Bearer reads but cannot write, Basic from the URL', async (t) => {
  const dir = tmpDir(t);
  fs.writeFileSync(path.join(dir, 'tokens'), 'writer-token-1 rw\nreader-token-1 ro\n');
  const s = await startServe(t, ['--store', path.join(dir, 'store'), '--tokens', path.join(dir, 'tokens'), '--host', '127.0.0.1', '--access-log', 'off']);
  const log = memoryLogger().child('remote');
  const rw = new HttpTier(s.url, { token: 'writer-token-1', log, ...PATIENT });
  const ro = new HttpTier(s.url, { token: 'reader-token-1', log, ...PATIENT });
  const basic = new HttpTier(s.url.replace('http://', 'http://me:writer-token-1@'), { log, ...PATIENT });
  const anon = new HttpTier(s.url, { log, ...PATIENT });
  t.teardown(() => Promise.all([rw, ro, basic, anon].map((x) => x.close())).then(() => {}));
  const blob = Buffer.from('team object');
  await rw.putBlob(blob);
  t.deepEqual(await ro.getBlob(digestHex(blob)), blob);
  await t.throwsAsync(ro.putEntry('1'.repeat(64), Buffer.from('x')), { message: /HTTP 403/ });
  t.like(ro.counters(), { errors: 1, hits: 1 });
  await basic.putEntry('2'.repeat(64), Buffer.from('y'));
  t.deepEqual(await rw.getEntry('2'.repeat(64)), Buffer.from('y'));
  t.is(await anon.getEntry('2'.repeat(64)), undefined);
  t.like(anon.counters(), { errors: 1, misses: 0 }); // a 401 is a failure, not a miss
  t.true(anon.url.indexOf('@') < 0 && basic.url.indexOf('writer') < 0); // credentials never shown
});

test('a remote that fails is skipped for the cool-down, then tried again', async (t) => {
  let now = 1_000_000;
  let fail = true;
  const f = await fakeServer(t, (_req, res) => {
    res.writeHead(fail ? 503 : 404, { 'content-length': 0 });
    res.end();
  });
  // Patient deadlines: the failure here is the 503, not a loaded machine's slow connect.
  const tier = new HttpTier(f.url, { log: memoryLogger().child('r'), coolDownMs: 30_000, now: () => now, ...PATIENT });
  t.teardown(() => tier.close());
  const k = 'c'.repeat(64);
  t.is(await tier.getEntry(k), undefined);
  t.is(await tier.getEntry(k), undefined);
  t.is(await tier.getBlob(k), undefined);
  t.is(f.requests.length, 1);
  t.like(tier.counters(), { errors: 1, skipped: 2 });
  now += 29_999;
  t.is(await tier.getEntry(k), undefined);
  t.is(f.requests.length, 1);
  now += 2;
  fail = false;
  // The period is over: the lookup is still skipped, and one background probe asks.
  t.is(await tier.getEntry(k), undefined);
  await tier.probed();
  t.deepEqual(f.requests.slice(1), [`HEAD /cas/${PROBE_DIGEST}`]);
  t.false(tier.coolingDown());
  t.is(await tier.getEntry(k), undefined);
  t.is(f.requests.length, 3);
  t.like(tier.counters(), { errors: 1, misses: 1, skipped: 4 });
});

test('TieredStore: uploads never block puts; a full queue drops and counts; concurrent reads share one request', async (t) => {
  const dir = tmpDir(t);
  const held: (() => void)[] = [];
  const f = await fakeServer(t, (req, res) => {
    req.resume();
    // Uploads hang until released; lookups miss after a moment.
    if (req.method === 'PUT' || req.method === 'HEAD')
      held.push(() => {
        res.writeHead(req.method === 'HEAD' ? 404 : 200, { 'content-length': 0 });
        res.end();
      });
    else
      setTimeout(() => {
        res.writeHead(404, { 'content-length': 0 });
        res.end();
      }, 50);
  });
  const local = new LocalStore({ root: path.join(dir, 'l2') });
  await local.open();
  const remote = new HttpTier(f.url, { log: memoryLogger().child('r'), ...PATIENT });
  const s = new TieredStore({ local, remote, log: memoryLogger().child('t'), queueLimit: 2, concurrency: 1 });
  t.teardown(async () => {
    for (const r of held.splice(0)) r();
    await s.close();
    await local.close();
  });
  for (let i = 0; i < 5; i++) await s.putBlob(Buffer.from(`blob ${i}`)); // returns with the server hanging
  t.like(s.stats(), { queued: 2, upload_dropped: 3 });
  t.is(await local.hasBlob(digestHex('blob 4')), true);
  const k = '9'.repeat(64);
  const reads = await Promise.all([s.getEntry(k), s.getEntry(k), s.getEntry(k)]);
  t.deepEqual(reads, [undefined, undefined, undefined]);
  t.is(f.requests.filter((r) => r.startsWith('GET')).length, 1);
  await waitFor(() => s.stats().queued === 0, 'the queue to drain', { each: () => held.splice(0).forEach((r) => r()) });
  await s.flush();
  t.like(s.stats(), { uploads: 2, queued: 0 });
});

test('TieredStore: uploads taken before the remote cooled down under them, and offers made meanwhile up to the queue limit, wait and go up once it answers again; past the limit the oldest waiting are dropped and counted', async (t) => {
  const dir = tmpDir(t);
  let now = 1_000_000;
  let failed = false;
  const stored: string[] = [];
  // Nothing is answered until both first uploads are taken (the object's HEAD waits): the
  // remote cools down under both, not before the entry is offered.
  const held: (() => void)[] = [];
  let answering = false;
  const f = await fakeServer(t, (req, res) => {
    req.resume();
    req.on('end', () => {
      const answer = () => {
        // The first upload fails (as a slow answer would): the remote cools down under it.
        let status = req.method === 'PUT' ? 200 : 404;
        if (req.method === 'PUT' && !failed) {
          failed = true;
          status = 503;
        } else if (status === 200) stored.push(req.url!);
        res.writeHead(status, { 'content-length': 0 });
        res.end();
      };
      if (answering) answer();
      else held.push(answer);
    });
  });
  const local = new LocalStore({ root: path.join(dir, 'l2') });
  await local.open();
  const remote = new HttpTier(f.url, { log: memoryLogger().child('r'), coolDownMs: 30_000, now: () => now, ...PATIENT });
  let looks = 0;
  const s = new TieredStore({ local, remote, log: memoryLogger().child('t'), packs: false, uploadRecheckMs: 20, queueLimit: 6, uploadsLooked: () => looks++ });
  t.teardown(async () => {
    await s.close();
    await local.close();
  });
  const obj = Buffer.from('an object');
  const key = 'e'.repeat(64);
  await s.putBlob(obj);
  await s.putEntry(key, Buffer.from('its entry')); // goes up after the object
  answering = true;
  for (const answer of held.splice(0)) answer();
  await waitFor(() => remote.coolingDown(), 'the failed upload to cool the remote down');
  // Offered while cooling down: an object and its entry, three times; the queue holds 6, so
  // the third pair takes the place of the first (the oldest waiting; counted).
  const offered: string[] = [];
  for (let i = 0; i < 3; i++) {
    const o = Buffer.from(`offered while cooling down ${i}`);
    const k = String(i).repeat(64);
    await s.putBlob(o);
    await s.putEntry(k, Buffer.from(`its entry ${i}`));
    offered.push(`/cas/${digestHex(o)}`, `/ac/${k}`);
  }
  t.like(s.stats(), { upload_dropped: 2, queued: 6 });
  // Still cooling down: the held uploads look for the remote (three times more) and find it off;
  // nothing goes up, nothing is given up.
  const from = looks;
  await waitFor(() => looks >= from + 3, 'the held uploads to look for the remote three times');
  t.deepEqual(stored, []);
  t.like(s.stats(), { upload_dropped: 2, queued: 6 });
  now += 30_001; // the cool-down is over: its probe finds the remote, the held six go up
  await waitFor(() => s.stats().queued === 0, 'the held uploads to go up');
  const expected = [`/cas/${digestHex(obj)}`, `/ac/${key}`, ...offered.slice(2)];
  t.deepEqual([...stored].sort(), [...expected].sort());
  // In order: each entry went up after every object offered before it.
  for (const [i, u] of expected.entries()) {
    if (!u.startsWith('/ac/')) continue;
    for (const b of expected.slice(0, i).filter((x) => x.startsWith('/cas/'))) t.true(stored.indexOf(b) < stored.indexOf(u), `${b} before ${u}`);
  }
  t.like(s.stats(), { upload_dropped: 2 });
  t.false(remote.coolingDown());
});

test('TieredStore: a newer value of an entry still queued replaces it; one already going up is followed by the newer', async (t) => {
  const dir = tmpDir(t);
  const held: (() => void)[] = [];
  const puts: [string, string][] = [];
  const f = await fakeServer(t, (req, res) => {
    const body: Buffer[] = [];
    req.on('data', (c: Buffer) => body.push(c));
    req.on('end', () => {
      const answer = () => {
        res.writeHead(req.method === 'PUT' ? 200 : 404, { 'content-length': 0 });
        res.end();
      };
      if (req.method !== 'PUT') return answer();
      puts.push([req.url!, Buffer.concat(body).toString()]);
      held.push(answer); // every upload hangs until released
    });
  });
  const local = new LocalStore({ root: path.join(dir, 'l2') });
  await local.open();
  const remote = new HttpTier(f.url, { log: memoryLogger().child('r'), ...PATIENT });
  const s = new TieredStore({ local, remote, log: memoryLogger().child('t'), concurrency: 1, packs: false });
  t.teardown(async () => {
    for (const r of held.splice(0)) r();
    await s.close();
    await local.close();
  });
  const [a, b] = ['a'.repeat(64), 'b'.repeat(64)];
  await s.putEntry(a, Buffer.from('a v1'));
  await waitFor(() => puts.length === 1, 'a v1 on its way up (held)');
  await s.putEntry(b, Buffer.from('b v1')); // waits behind it
  await s.putEntry(b, Buffer.from('b v2')); // replaces it
  await s.putEntry(a, Buffer.from('a v2')); // follows the upload in flight
  await s.putEntry(a, Buffer.from('a v3')); // ... as the newest
  await waitFor(() => s.stats().queued === 0, 'the queue to drain', { each: () => held.splice(0).forEach((r) => r()) });
  await s.flush();
  const mine = puts.filter(([u]) => u.includes('/ac/'));
  t.deepEqual(
    mine.map(([u, v]) => `${u.slice(-3)} ${v}`),
    [`${a.slice(-3)} a v1`, `${b.slice(-3)} b v2`, `${a.slice(-3)} a v3`],
  );
  t.like(s.stats(), { queued: 0, queued_bytes: 0 });
});

test('TieredStore: an entry whose object was refused by the server (and is too big to ride inline) is not uploaded; one whose object rides inline is', async (t) => {
  const dir = tmpDir(t);
  const puts: string[] = [];
  const f = await fakeServer(t, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const n = Buffer.concat(chunks).length;
      if (req.method === 'PUT') puts.push(req.url!);
      // Objects over 1.5 MB are over this server's limit; everything else is taken.
      const status = req.method === 'PUT' ? (n > 1_500_000 ? 413 : 200) : 404;
      res.writeHead(status, { 'content-length': 0 });
      res.end();
    });
  });
  const local = new LocalStore({ root: path.join(dir, 'l2') });
  await local.open();
  const remote = new HttpTier(f.url, { log: memoryLogger().child('r'), ...PATIENT });
  const s = new TieredStore({ local, remote, log: memoryLogger().child('t'), packs: false });
  t.teardown(async () => {
    await s.close();
    await local.close();
  });
  const big = Buffer.alloc(2_000_000, 1);
  const dBig = await s.putBlob(big);
  const small = Buffer.alloc(1000, 2);
  const dSmall = await s.putBlob(small);
  const [kBig, kSmall] = ['1'.repeat(64), '2'.repeat(64)];
  await s.putEntry(kBig, Buffer.from('entry naming the big object'), { blobs: [dBig] });
  await s.putEntry(kSmall, Buffer.from('entry naming the small object'), { blobs: [dSmall] });
  await s.flush();
  t.true(
    puts.some((u) => u.endsWith(`/cas/${dBig}`)),
    'the big object was tried',
  );
  t.false(
    puts.some((u) => u.endsWith(`/ac/${kBig}`)),
    'its entry was held back',
  );
  t.true(
    puts.some((u) => u.endsWith(`/ac/${kSmall}`)),
    'the other went up',
  );
  t.like(s.stats(), { upload_orphans: 1, errors: 1 });
  t.false(remote.coolingDown(), 'a 413 is about that object, not the server');
});

test('bundles: an entry uploaded with its attachments gives a fresh machine the rest without more requests; a bundle with a wrong blob is refused', async (t) => {
  const dir = tmpDir(t);
  const s = await startServe(t, ['--store', path.join(dir, 'store'), '--access-log', 'off']);
  const open = (name: string) => tieredAt(t, dir, name, s.url, { timeoutMs: 10_000 });
  const a = await open('a');
  const obj = Buffer.from('object bytes '.repeat(100));
  const d = await a.store.putBlob(obj);
  const [manifest, result] = ['1'.repeat(64), '2'.repeat(64)];
  await a.store.putEntry(result, Buffer.from('the result'));
  await a.store.putEntry(manifest, Buffer.from('the manifest'), { entries: [result], blobs: [d] });
  await a.store.flush();

  const b = await open('b');
  t.deepEqual(await b.store.getEntry(manifest), Buffer.from('the manifest'));
  t.deepEqual(await b.store.getEntry(result), Buffer.from('the result'));
  t.deepEqual(await b.store.getBlob(d), obj);
  t.like(b.store.stats(), { hits: 1, attached: 2, errors: 0 });
  // Written into the local store once lookups pause (no close needed).
  await waitFor(async () => (await b.local.getEntry(manifest)) !== undefined, "the manifest in b's local store (written last)");
  t.deepEqual(await b.local.getBlob(d), obj, 'the attachments are in the local store');
  t.deepEqual(await b.local.getEntry(manifest), Buffer.from('the manifest'));
  t.deepEqual(await b.local.getEntry(result), Buffer.from('the result'));

  // A lying server: the attached blob does not match its digest. Nothing from that answer is used.
  const bad = encodeBundle({ value: Buffer.from('m2'), entries: [['3'.repeat(64), Buffer.from('r')]], blobs: [[d, Buffer.from('not the object')]] });
  const put = await request(`${s.url}/ac/${'4'.repeat(64)}`, { method: 'PUT', body: bad });
  t.is(put.status, 200);
  const c = await open('c');
  t.is(await c.store.getEntry('4'.repeat(64)), undefined);
  t.like(c.store.stats(), { integrity: 1, attached: 0 });
  t.is(await c.local.getEntry('3'.repeat(64)), undefined);
  t.false(await c.local.hasBlob(d));
});

// A Bazel-layout cache in memory that can be made to lie: what the pack tests talk to.
async function memoryCache(t: ExecutionContext) {
  const data = new Map<string, Buffer>();
  const lie = new Set<string>(); // paths answered with other bytes
  const f = await fakeServer(t, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const p = req.url!;
      if (req.method === 'PUT') {
        data.set(p, Buffer.concat(chunks));
        res.writeHead(200, { 'content-length': 0 });
        return res.end();
      }
      const v = data.get(p);
      if (!v) {
        res.writeHead(404, { 'content-length': 0 });
        return res.end();
      }
      const body = lie.has(p) ? Buffer.concat([v.subarray(0, -1), Buffer.from('!')]) : v;
      res.writeHead(200, { 'content-length': body.length });
      res.end(req.method === 'HEAD' ? undefined : body);
    });
  });
  const gets = () => f.requests.filter((r) => r.startsWith('GET '));
  return { ...f, data, lie, gets };
}

test("packs: entries uploaded one after another go up as one pack; a fresh machine's first hit fetches it and the others need no request; members nobody asks for stay out of the local store", async (t) => {
  const dir = tmpDir(t);
  const srv = await memoryCache(t);
  const a = await tieredAt(t, dir, 'a', srv.url, { timeoutMs: 10_000 });
  const keys: { m: string; r: string; d: string; obj: Buffer }[] = [];
  for (let i = 0; i < 4; i++) {
    const obj = Buffer.from(`object ${i} `.repeat(50));
    const d = await a.store.putBlob(obj);
    const [m, r] = [digestHex(`manifest ${i}`), digestHex(`result ${i}`)];
    await a.store.putEntry(r, Buffer.from(`the result ${i}`));
    await a.store.putEntry(m, Buffer.from(`the manifest ${i}`), { entries: [r], blobs: [d] });
    keys.push({ m, r, d, obj });
  }
  await a.store.flush();
  const packs = [...srv.data.keys()].filter((p) => p.startsWith('/cas/') && srv.data.get(p)!.subarray(0, 4).toString() === 'VRP1');
  t.is(packs.length, 1, 'one pack');
  t.like(a.store.stats(), { packs_uploaded: 1 });
  for (const k of keys) {
    const v = srv.data.get(`/ac/${k.m}`)!;
    t.true(isBundle(v));
    const b = decodeBundle(v);
    t.is(`/cas/${b.pack}`, packs[0], 'each member names the pack');
    t.deepEqual(b.value, Buffer.from(`the manifest ${keys.indexOf(k)}`));
    t.is(b.blobs.length + b.entries.length, 0, 'and goes up thin: its attachments are in the pack');
    t.truthy(srv.data.get(`/cas/${k.d}`), 'and on their own');
  }

  const b = await tieredAt(t, dir, 'b', srv.url, { timeoutMs: 10_000 });
  for (const [i, k] of keys.slice(0, 3).entries()) {
    t.deepEqual(await b.store.getEntry(k.m), Buffer.from(`the manifest ${i}`));
    t.deepEqual(await b.store.getEntry(k.r), Buffer.from(`the result ${i}`));
    t.deepEqual(await b.store.getBlob(k.d), k.obj);
  }
  t.deepEqual(srv.gets(), [`GET /ac/${keys[0].m}`, `GET ${packs[0]}`], 'two requests for three hits');
  t.like(b.store.stats(), { packs: 1, from_packs: 2, attached: 6, errors: 0 });
  await b.store.settle();
  for (const k of keys.slice(0, 3)) t.truthy(await b.local.getEntry(k.m));
  t.is(await b.local.getEntry(keys[3].m), undefined, 'a member nobody asked for is not written');
  t.deepEqual(await b.store.getEntry(keys[3].m), Buffer.from('the manifest 3'), 'until asked for');
  t.is(srv.gets().length, 2);

  // A server that returns wrong bytes for the pack: nothing in it is used, and like any
  // remote that lies, this one cools down (the lookups that follow compile locally).
  srv.lie.add(packs[0]);
  const c = await tieredAt(t, dir, 'c', srv.url, { timeoutMs: 10_000 });
  t.deepEqual(await c.store.getEntry(keys[0].m), Buffer.from('the manifest 0'));
  t.is(await c.store.getEntry(keys[0].r), undefined);
  t.is(await c.store.getEntry(keys[1].m), undefined);
  t.like(c.store.stats(), { packs: 0, from_packs: 0, attached: 0, integrity: 1, cooling_down: true });
  t.is(srv.gets().length, 2 + 2);

  // A pack gone from the server (evicted): the thin values still work, one request each.
  srv.data.delete(packs[0]);
  const d = await tieredAt(t, dir, 'd', srv.url, { timeoutMs: 10_000 });
  t.deepEqual(await d.store.getEntry(keys[2].m), Buffer.from('the manifest 2'));
  t.deepEqual(await d.store.getEntry(keys[2].r), Buffer.from('the result 2'));
  t.deepEqual(await d.store.getBlob(keys[2].d), keys[2].obj);
  t.like(d.store.stats(), { packs: 0, hits: 3, misses: 1, errors: 0 });
});

test('packs: a member whose attachment does not match its digest is refused (and counted); the lookup then asks for its own key', async (t) => {
  const dir = tmpDir(t);
  const srv = await memoryCache(t);
  const obj = Buffer.from('the real object');
  const [m1, m2, d] = [digestHex('m1'), digestHex('m2'), digestHex(obj)];
  const member = encodeBundle({ value: Buffer.from('bad manifest'), entries: [], blobs: [[d, Buffer.from('not the object')]] });
  const pack = encodePack([[m2, member]]);
  srv.data.set(`/cas/${digestHex(pack)}`, pack);
  srv.data.set(`/ac/${m1}`, encodeBundle({ value: Buffer.from('good manifest'), entries: [], blobs: [[d, obj]], pack: digestHex(pack) }));
  srv.data.set(`/ac/${m2}`, Buffer.from('plain manifest from the server'));
  const b = await tieredAt(t, dir, 'b', srv.url, { timeoutMs: 10_000 });
  t.deepEqual(await b.store.getEntry(m1), Buffer.from('good manifest'));
  t.deepEqual(await b.store.getEntry(m2), Buffer.from('plain manifest from the server'));
  t.deepEqual(await b.store.getBlob(d), obj);
  t.like(b.store.stats(), { packs: 1, from_packs: 0, integrity: 1, errors: 1 });
  t.deepEqual(
    srv.gets().map((g) => g.slice(0, 8)),
    ['GET /ac/', 'GET /cas', 'GET /ac/'],
  );
  // A malformed pack (right digest, not a pack) is refused as a whole.
  const junk = Buffer.from('VRP1 but no msgpack \xc1');
  srv.data.set(`/cas/${digestHex(junk)}`, junk);
  srv.data.set(`/ac/${digestHex('m3')}`, encodeBundle({ value: Buffer.from('m3'), entries: [], blobs: [], pack: digestHex(junk) }));
  const c = await tieredAt(t, dir, 'c', srv.url, { timeoutMs: 10_000 });
  t.deepEqual(await c.store.getEntry(digestHex('m3')), Buffer.from('m3'));
  t.is(await c.store.getEntry(m2).then((v) => v?.toString()), 'plain manifest from the server');
  t.like(c.store.stats(), { packs: 0, integrity: 1 });
});

// A pack of `n` members of `size` bytes each (their plain values also on the server under
// /ac/), and m0's thin value naming it: the first lookup of m0 fetches the pack.
function packOnServer(srv: { data: Map<string, Buffer> }, n: number, size: number): string[] {
  const keys = Array.from({ length: n }, (_, i) => digestHex(`member ${i}`));
  const value = (i: number) => Buffer.from(`${i}`.padEnd(size, '.'));
  const pack = encodePack(keys.map((k, i) => [k, value(i)]));
  srv.data.set(`/cas/${digestHex(pack)}`, pack);
  keys.forEach((k, i) => srv.data.set(`/ac/${k}`, value(i)));
  srv.data.set(`/ac/${keys[0]}`, encodeBundle({ value: value(0), entries: [], blobs: [], pack: digestHex(pack) }));
  return keys;
}

test('packs: members nobody asked for are dropped prefetchKeepMs after the pack arrived; a later lookup asks for its own key', async (t) => {
  const dir = tmpDir(t);
  const srv = await memoryCache(t);
  const keys = packOnServer(srv, 3, 100);
  // The default keep: the next lookup comes from the pack.
  const a = await tieredAt(t, dir, 'a', srv.url, { timeoutMs: 10_000 });
  t.is((await a.store.getEntry(keys[0]))?.toString()[0], '0');
  t.like(a.store.stats(), { packs: 1 });
  t.is((await a.store.getEntry(keys[1]))?.toString()[0], '1');
  t.like(a.store.stats(), { from_packs: 1 });
  t.is(srv.gets().length, 2, 'the pack answered the second lookup');
  // A keep of 1 ms: its timer is armed before m0's lookup returns (that lookup waits for the
  // pack), so it has fired once a 50 ms timer armed after it has.
  const b = await tieredAt(t, dir, 'b', srv.url, { timeoutMs: 10_000, prefetchKeepMs: 1 });
  t.is((await b.store.getEntry(keys[0]))?.toString()[0], '0');
  t.like(b.store.stats(), { packs: 1 });
  await new Promise((r) => setTimeout(r, 50));
  t.is((await b.store.getEntry(keys[1]))?.toString()[0], '1');
  t.like(b.store.stats(), { packs: 1, from_packs: 0 });
  t.deepEqual(
    srv
      .gets()
      .slice(2)
      .map((g) => g.slice(0, 8)),
    ['GET /ac/', 'GET /cas', 'GET /ac/'],
    'm1 asked for on its own',
  );
});

test('packs: members are held up to prefetchMaxBytes, the oldest dropped first', async (t) => {
  const dir = tmpDir(t);
  const srv = await memoryCache(t);
  const keys = packOnServer(srv, 5, 1000);
  // 5 000 bytes arrive, 2 500 may stay: m3 and m4.
  const b = await tieredAt(t, dir, 'b', srv.url, { timeoutMs: 10_000, prefetchMaxBytes: 2500 });
  t.is((await b.store.getEntry(keys[0]))?.toString()[0], '0');
  for (const i of [4, 3, 1]) t.is((await b.store.getEntry(keys[i]))?.toString()[0], `${i}`);
  t.like(b.store.stats(), { packs: 1, from_packs: 2 });
  t.deepEqual(
    srv.gets(),
    [`GET /ac/${keys[0]}`, `GET /cas/${digestHex(encodePack(keys.map((k, i) => [k, Buffer.from(`${i}`.padEnd(1000, '.'))])))}`, `GET /ac/${keys[1]}`],
    'm1 was dropped: asked for on its own',
  );
});

test('waitMs: a lookup stops waiting for a slow remote and misses; while that request is overdue no more are queued; its answer is kept for next time', async (t) => {
  const dir = tmpDir(t);
  const held: (() => void)[] = [];
  const f = await fakeServer(t, (req, res) => {
    req.resume();
    held.push(() => {
      res.writeHead(200, { 'content-length': 5 });
      res.end('value');
    });
  });
  const local = new LocalStore({ root: path.join(dir, 'l2') });
  await local.open();
  const remote = new HttpTier(f.url, { log: memoryLogger().child('r'), connectTimeoutMs: 10_000, timeoutMs: 30_000 });
  const s = new TieredStore({ local, remote, log: memoryLogger().child('t'), readOnly: true, waitMs: 50 });
  t.teardown(async () => {
    for (const r of held.splice(0)) r();
    await s.close();
    await local.close();
  });
  const [k1, k2] = ['5'.repeat(64), '6'.repeat(64)];
  t.is(await s.getEntry(k1), undefined, 'no answer within 50 ms: a miss');
  t.is(await s.getEntry(k2), undefined, 'not asked: the first request is overdue');
  await waitFor(() => f.requests.length >= 1, 'the first request at the server'); // on its way
  t.is(f.requests.length, 1);
  t.like(s.stats(), { late: 1, skipped: 1 });
  for (const r of held.splice(0)) r();
  await waitFor(async () => {
    await s.settle();
    return (await local.getEntry(k1)) !== undefined;
  }, 'the late answer written to the local store');
  t.deepEqual(await s.getEntry(k1), Buffer.from('value'), 'the late answer was kept');
  t.is(f.requests.length, 1);
});

test('the check at start: lookups wait for it at most waitMs, never send requests of their own to a remote that does not answer, and the tier cools down', async (t) => {
  const dir = tmpDir(t);
  const f = await fakeServer(t, (req) => void req.resume()); // accepts, never answers
  const local = new LocalStore({ root: path.join(dir, 'l2') });
  await local.open();
  // The check's deadline is 2 s, not a few hundred ms: a loaded CI machine that stalls this
  // process past it would end the check before the server took in its request (none counted).
  const remote = new HttpTier(f.url, { log: memoryLogger().child('r'), connectTimeoutMs: PATIENT.connectTimeoutMs, timeoutMs: 2000 });
  const s = new TieredStore({ local, remote, log: memoryLogger().child('t'), readOnly: true, waitMs: 50 });
  t.teardown(async () => {
    await s.close();
    await local.close();
  });
  const checked = s.checkRemote();
  const keys = ['7', '8', '9'].map((c) => c.repeat(64));
  t.deepEqual(await Promise.all(keys.map((k) => s.getEntry(k))), [undefined, undefined, undefined]);
  t.is(await s.getEntry('a'.repeat(64)), undefined);
  await checked;
  t.is(f.requests.length, 1, 'only the check went out');
  t.regex(f.requests[0], /^HEAD \/cas\//);
  t.true(remote.coolingDown(), 'no answer to the check: cooling down');
  t.is(await s.getEntry('b'.repeat(64)), undefined);
  t.is(f.requests.length, 1);
  t.like(s.stats(), { timeouts: 1, errors: 0 });
  t.true(Number(s.stats().skipped) >= 5, JSON.stringify(s.stats()));
});

test('the check at start against a server that answers: lookups go on as usual', async (t) => {
  const dir = tmpDir(t);
  const f = await fakeServer(t, (req, res) => {
    req.resume();
    res.writeHead(req.method === 'HEAD' ? 404 : 200, req.method === 'HEAD' ? {} : { 'content-length': 2 });
    res.end(req.method === 'HEAD' ? undefined : 'ok');
  });
  const local = new LocalStore({ root: path.join(dir, 'l2') });
  await local.open();
  const remote = new HttpTier(f.url, { log: memoryLogger().child('r'), ...PATIENT });
  const s = new TieredStore({ local, remote, log: memoryLogger().child('t'), readOnly: true, waitMs: 5_000 });
  t.teardown(async () => {
    await s.close();
    await local.close();
  });
  void s.checkRemote();
  t.deepEqual(await s.getEntry('c'.repeat(64)), Buffer.from('ok'));
  t.false(remote.coolingDown());
  t.deepEqual(
    f.requests.map((r) => r.split(' ')[0]),
    ['HEAD', 'GET'],
  );
});

test('vrift serve over TLS', async (t) => {
  const dir = tmpDir(t);
  const { ca: caFile, cert, key } = certificates(dir);
  const s = await startServe(t, ['--store', path.join(dir, 'store'), '--tls-cert', cert, '--tls-key', key, '--access-log', 'off']);
  t.true(s.url.startsWith('https://'));
  const ca = fs.readFileSync(caFile);
  const body = Buffer.from('over tls');
  const call = (method: string, data?: Buffer) =>
    new Promise<{ status: number; body: Buffer }>((resolve, reject) => {
      const r = https.request(`${s.url}/cas/${digestHex(body)}`, { method, ca, agent: false }, (res) => {
        const c: Buffer[] = [];
        res.on('data', (d) => c.push(d));
        res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(c) }));
      });
      r.on('error', reject);
      r.end(data);
    });
  t.is((await call('PUT', body)).status, 200);
  t.deepEqual((await call('GET')).body, body);
  // An untrusted certificate is a failure for the client tier, never a hit.
  const tier = new HttpTier(s.url, { log: memoryLogger().child('r'), ...PATIENT });
  t.teardown(() => tier.close());
  t.is(await tier.getBlob(digestHex(body)), undefined);
  t.is(tier.counters().errors, 1);
});

test('a server that trickles a byte now and then (never idle for the idle deadline) times out on the whole exchange, is counted and cooled down', async (t) => {
  const f = await fakeServer(t, (req, res) => {
    req.resume();
    if (req.method === 'HEAD') {
      res.writeHead(404, { 'content-length': 0 });
      return res.end();
    }
    res.writeHead(200, { 'content-length': 100_000 });
    const tick = setInterval(() => res.write('x'), 100);
    res.on('close', () => clearInterval(tick));
  });
  const tier = new HttpTier(f.url, { log: memoryLogger().child('r'), connectTimeoutMs: PATIENT.connectTimeoutMs, timeoutMs: 300 });
  t.teardown(() => tier.close());
  t.is(await tier.getEntry('7'.repeat(64)), undefined);
  t.like(tier.counters(), { timeouts: 1, hits: 0 });
  t.true(tier.coolingDown());
  // A streamed blob too (its size known: the deadline grows with it, then ends).
  const tier2 = new HttpTier(f.url, { log: memoryLogger().child('r'), connectTimeoutMs: PATIENT.connectTimeoutMs, timeoutMs: 300 });
  t.teardown(() => tier2.close());
  const st = (await tier2.getBlobStream('8'.repeat(64), 2000))!;
  await t.throwsAsync(async () => {
    for await (const _ of st);
  });
  t.like(tier2.counters(), { timeouts: 1, hits: 0 });
});

test('a remote that keeps failing is left alone longer each time; one answer resets that', async (t) => {
  let now = 1_000_000;
  let fail = true;
  const f = await fakeServer(t, (_req, res) => {
    res.writeHead(fail ? 503 : 404, { 'content-length': 0 });
    res.end();
  });
  const tier = new HttpTier(f.url, { log: memoryLogger().child('r'), coolDownMs: 30_000, now: () => now, ...PATIENT });
  t.teardown(() => tier.close());
  const k = 'd'.repeat(64);
  const probe = async () => {
    t.true(tier.coolingDown()); // starts the probe
    await tier.probed();
  };
  await tier.getEntry(k); // fails: 30 s
  now += 30_001;
  await probe(); // fails again: 60 s
  t.is(f.requests.length, 2);
  t.true(tier.coolingDown());
  now += 59_000;
  await tier.getEntry(k);
  t.is(f.requests.length, 2, 'still cooling down after 59 s');
  now += 1_001;
  fail = false;
  await probe(); // answered: back, streak reset
  t.is(f.requests.length, 3);
  t.false(tier.coolingDown());
  fail = true;
  await tier.getEntry(k); // fails: back to 30 s
  t.is(f.requests.length, 4);
  now += 30_001;
  await probe();
  t.is(f.requests.length, 5);
  t.like(tier.counters(), { errors: 4 }); // probes that fail count too
});

// A server that keeps every PUT's body by path and has nothing else.
async function keeper(t: ExecutionContext): Promise<{ url: string; puts: Map<string, Buffer>; order: string[] }> {
  const puts = new Map<string, Buffer>();
  const order: string[] = [];
  const f = await fakeServer(t, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method === 'PUT') {
        puts.set(req.url!, Buffer.concat(chunks));
        order.push(req.url!);
      }
      res.writeHead(req.method === 'PUT' ? 200 : 404, { 'content-length': 0 });
      res.end();
    });
  });
  return { url: f.url, puts, order };
}

test('through the write-behind, puts go up at once from memory while their local writes wait; a bundle takes its attachments from what waits; the local write uploads nothing again', async (t) => {
  const dir = tmpDir(t);
  const srv = await keeper(t);
  const later = new IdleWriter(memoryLogger().child('w'), { idleMs: 60_000 });
  const { local, store } = await tieredAt(t, dir, 'a', srv.url, { later, packs: false });
  const w = new WriteBehind(store, later, {
    local,
    offerBlob: (d, n, data) => store.offerBlob(d, n, data),
    offerEntry: (k, v, a) => store.offerEntry(k, v, a),
  });
  const obj = Buffer.from('an object file');
  const result = Buffer.from('a result naming it');
  const manifest = Buffer.from('a manifest naming the result');
  const [rk, mk] = [digestHex(Buffer.from('r')), digestHex(Buffer.from('m'))];
  const d = await w.putBlob(obj);
  await w.putEntry(rk, result);
  await w.putEntry(mk, manifest, { entries: [rk], blobs: [d] });
  await store.flush();
  t.deepEqual(srv.puts.get(`/cas/${d}`), obj);
  t.deepEqual(srv.puts.get(`/ac/${rk}`), result);
  const b = decodeBundle(srv.puts.get(`/ac/${mk}`)!);
  t.deepEqual(b.value, manifest);
  t.deepEqual(b.entries, [[rk, result]]);
  t.deepEqual(b.blobs, [[d, obj]]);
  t.is(srv.order.indexOf(`/cas/${d}`), 0, 'the object before the entries that name it');
  t.is(await local.getEntry(mk), undefined, 'the local write still waits for a pause');
  await w.settle();
  t.deepEqual(await local.getEntry(mk), manifest);
  t.deepEqual(await local.getBlob(d), obj);
  await store.flush();
  t.is(srv.order.length, 3);
  t.is(store.stats().queued, 0);
});

test('a pack is sealed packMaxAgeMs after its first member even while members keep coming', async (t) => {
  const dir = tmpDir(t);
  const srv = await keeper(t);
  const { store } = await tieredAt(t, dir, 'a', srv.url, { packQuietMs: 60_000, packMaxAgeMs: 300 });
  let n = 0;
  const pack = () => [...srv.puts.entries()].find(([u, v]) => u.startsWith('/cas/') && v.subarray(0, 4).toString() === 'VRP1');
  // A member every 20 ms: never quiet for packQuietMs.
  for (; n < 1000 && !pack(); n++) {
    const k = digestHex(Buffer.from(`k${n}`));
    store.offerEntry(k, Buffer.from(`v${n}`), { entries: [] });
    await new Promise((r) => setTimeout(r, 20));
  }
  const found = pack();
  t.truthy(found, 'a pack went up');
  // Sealed by age, not quiet (60 s): on a loaded machine the pack may go up within the same
  // 20 ms wait as its last member, so it can hold every member offered so far.
  t.true(decodePack(found![1]).length >= 2 && decodePack(found![1]).length <= n);
});
