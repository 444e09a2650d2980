import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { Readable } from 'node:stream';
import { compress } from 'zstd-napi';
import test from './helpers/test.js';
import type { ExecutionContext } from 'ava';
import { writeBigSource } from '../bench/big-source.js';
import { isVriftError } from '../ipc/errors.js';
import { digestHex } from '../daemon/hash.js';
import { F_DATE, F_INCBIN, F_TIME, hashLarge, scanFlags } from '../daemon/hot/file-hashes.js';
import { memoryLogger } from '../daemon/log.js';
import { LocalStore } from '../daemon/store/api.js';
import { chunkSearcher, STREAM_MIN } from '../daemon/store/blob-stream.js';
import { HttpTier } from '../daemon/tiers/http.js';
import { TieredStore } from '../daemon/tiers/tiered.js';
import { isSpareName } from '../daemon/store/write.js';
import { age, instance, type Stats } from './helpers/instance.js';
import { fakeServer, request, startServe, tmpDir, type Served } from './helpers/remote.js';

// Objects of STREAM_MIN bytes and more never sit in a daemon's memory whole: they are
// streamed file → store, store → file, and store ↔ server, hashed as they pass.

const BIG = STREAM_MIN + 3 * 2 ** 20 + 12345;
type RStats = Stats & { remote?: Record<string, number | string | boolean> };

function chunks(data: Buffer, size = 256 * 1024): Readable {
  let i = 0;
  return new Readable({
    read() {
      this.push(i < data.length ? data.subarray(i, (i += size)) : null);
    },
  });
}

async function store(t: ExecutionContext, root?: string): Promise<{ s: LocalStore; root: string }> {
  root ??= path.join(tmpDir(t), 'l2');
  const s = new LocalStore({ root, log: memoryLogger().child('store') });
  await s.open();
  t.teardown(() => s.close());
  return { s, root };
}

// (t.deepEqual on buffers of megabytes takes minutes: compare them directly.)
function same(t: ExecutionContext, a: Buffer | undefined, b: Buffer, what?: string): void {
  t.true(a?.equals(b), what);
}
function sameObjs(t: ExecutionContext, a: Record<string, Buffer>, b: Record<string, Buffer>): void {
  t.deepEqual(Object.keys(a).sort(), Object.keys(b).sort());
  for (const k of Object.keys(b)) same(t, a[k], b[k], k);
}

const blobFile = (root: string, d: string) => path.join(root, 'cas-v1', d.slice(0, 2), d);
const tmpFiles = (root: string) => fs.readdirSync(path.join(root, 'tmp')).filter((n) => !isSpareName(n));

test('a streamed blob round-trips through the store: stream in, whole read, streamed out, copied to a file', async (t) => {
  const { s, root } = await store(t);
  const data = randomBytes(BIG);
  const d = digestHex(data);
  // Without a size up front the zstd frame does not record one; with it, it does.
  t.deepEqual(await s.putBlobStream(chunks(data)), { digest: d, size: data.length });
  same(t, await s.getBlob(d), data);
  const other = Buffer.concat([data.subarray(1), Buffer.from('x')]);
  t.deepEqual(await s.putBlobStream(chunks(other), { sizeHint: other.length }), { digest: digestHex(other), size: other.length });
  same(t, await s.getBlob(digestHex(other)), other);

  const dest = path.join(root, '..', 'out.o');
  t.is(await s.copyBlobTo(d, dest, 0o755), data.length);
  same(t, fs.readFileSync(dest), data);
  t.is(fs.statSync(dest).mode & 0o777, 0o755);
  const opened = await s.openBlob(d);
  t.is(opened!.size, data.length);
  const got: Buffer[] = [];
  for await (const c of opened!.stream) got.push(c as Buffer);
  same(t, Buffer.concat(got), data);
  // The same content again: deduplicated, nothing new written.
  const writes = s.counters().writes;
  await s.putBlobStream(chunks(data), { digest: d });
  t.is(s.counters().writes, writes);
  t.deepEqual(tmpFiles(root), []);
});

test('a streamed put whose bytes do not match the digest it claims stores nothing', async (t) => {
  const { s, root } = await store(t);
  const data = randomBytes(BIG);
  const e = await t.throwsAsync(s.putBlobStream(chunks(data), { digest: 'ab'.repeat(32) }));
  t.true(isVriftError(e) && e.code === 'EINTEGRITY');
  t.is(await s.getBlob(digestHex(data)), undefined);
  t.is(s.usage().blobs, 0);
  t.deepEqual(tmpFiles(root), []);
  // A source that fails halfway leaves nothing behind either.
  let n = 0;
  const failing = new Readable({
    read() {
      if (n++ < 3) this.push(randomBytes(1 << 20));
      else this.destroy(new Error('disk went away'));
    },
  });
  await t.throwsAsync(s.putBlobStream(failing), { message: /disk went away/ });
  t.deepEqual(tmpFiles(root), []);
});

test('a corrupt large blob is a miss: the destination is left alone and the file removed', async (t) => {
  const { s, root } = await store(t);
  const data = randomBytes(BIG);
  const { digest } = await s.putBlobStream(chunks(data));
  const f = blobFile(root, digest);
  const fd = fs.openSync(f, 'r+');
  fs.writeSync(fd, Buffer.from([0xff, 0x00, 0xff]), 0, 3, Math.floor(fs.statSync(f).size / 2));
  fs.closeSync(fd);
  const dest = path.join(root, '..', 'out.o');
  fs.writeFileSync(dest, 'previous object');
  t.is(await s.copyBlobTo(digest, dest), undefined);
  t.is(fs.readFileSync(dest, 'utf8'), 'previous object');
  t.false(fs.existsSync(f));
  t.is(s.counters().corrupt, 1);
  t.deepEqual(
    fs.readdirSync(path.dirname(dest)).filter((n) => n.includes('.vrift-')),
    [],
  );
  t.is(await s.copyBlobTo(digest, dest), undefined); // now simply missing
});

test('chunkSearcher finds a needle across chunk seams', (t) => {
  const hay = Buffer.from(`${'x'.repeat(1000)}/home/user/project${'y'.repeat(1000)}`);
  for (const step of [1, 3, 7, 1000, 1005, 5000]) {
    const s = chunkSearcher('/home/user/project');
    for (let i = 0; i < hay.length; i += step) s.feed(hay.subarray(i, i + step));
    t.true(s.found(), `step ${step}`);
    const miss = chunkSearcher('/home/user/projects');
    for (let i = 0; i < hay.length; i += step) miss.feed(hay.subarray(i, i + step));
    t.false(miss.found(), `step ${step}`);
  }
});

test('HttpTier streams a large blob up and down against vrift serve; the server checks the digest the client names', async (t) => {
  const dir = tmpDir(t);
  const serve = await startServe(t, ['--store', path.join(dir, 'store'), '--access-log', 'off']);
  const tier = new HttpTier(serve.url, { log: memoryLogger().child('http'), connectTimeoutMs: 15_000, timeoutMs: 15_000 });
  t.teardown(() => tier.close());
  const data = randomBytes(BIG);
  const d = digestHex(data);
  await tier.putBlobStream(d, data.length, async () => chunks(data));
  const got: Buffer[] = [];
  for await (const c of (await tier.getBlobStream(d))!) got.push(c as Buffer);
  same(t, Buffer.concat(got), data);
  t.like(tier.counters(), { uploads: 1, hits: 1, errors: 0 });
  t.is(await tier.getBlobStream('cd'.repeat(32)), undefined);
  t.like(tier.counters(), { misses: 1 });
  // A client that says its keys are SHA-256 is held to it; an unknown function is refused.
  const small = Buffer.from('named digest');
  const put = (h: string) => request(`${serve.url}/cas/${digestHex(small)}`, { method: 'PUT', body: small, headers: { 'x-digest-function': h } });
  t.is((await put('sha256')).status, 400);
  t.is((await put('md5')).status, 400);
  t.is((await put('blake3')).status, 200);
});

test('HttpTier: a large blob with wrong bytes, or cut short, fails its stream and is counted', async (t) => {
  const data = randomBytes(BIG);
  const d = digestHex(data);
  for (const how of ['wrong-bytes', 'truncated'] as const) {
    const f = await fakeServer(t, (_req, res) => {
      const body = Buffer.from(data);
      res.writeHead(200, { 'content-length': body.length });
      if (how === 'wrong-bytes') {
        body[body.length >> 1] ^= 1;
        return res.end(body);
      }
      res.write(body.subarray(0, body.length >> 1), () => res.destroy());
    });
    const tier = new HttpTier(f.url, { log: memoryLogger().child('http'), connectTimeoutMs: 15_000, timeoutMs: 15_000 });
    t.teardown(() => tier.close());
    const local = (await store(t)).s;
    const s = new TieredStore({ local, remote: tier, log: memoryLogger().child('t') });
    const dest = path.join(tmpDir(t), 'x.o');
    t.is(await s.copyBlobTo(d, dest), undefined, how);
    t.false(fs.existsSync(dest));
    t.is(local.usage().blobs, 0);
    t.like(tier.counters(), how === 'wrong-bytes' ? { errors: 1, integrity: 1, hits: 0 } : { errors: 1, hits: 0 });
    t.true(tier.coolingDown());
  }
});

test('HttpTier: a body that never ends (zstd frames of zeros) stops at the size the entry gave, or at the body limit', async (t) => {
  const data = randomBytes(BIG);
  const d = digestHex(data);
  const frame = compress(Buffer.alloc(1 << 20));
  // Without a bound this test never ends (each ~100-byte frame is 1 MiB of zeros).
  const f = await fakeServer(t, (_req, res) => {
    res.writeHead(200, { 'content-encoding': 'zstd' });
    const more = () => {
      while (!res.destroyed && res.write(frame));
      if (!res.destroyed) res.once('drain', more);
    };
    res.on('error', () => {});
    more();
  });
  const tier = new HttpTier(f.url, { log: memoryLogger().child('http'), connectTimeoutMs: 15_000, timeoutMs: 15_000, maxBodyBytes: 4 * BIG });
  t.teardown(() => tier.close());
  const local = (await store(t)).s;
  const s = new TieredStore({ local, remote: tier, log: memoryLogger().child('t') });
  const dest = path.join(tmpDir(t), 'x.o');
  t.is(await s.copyBlobTo(d, dest, undefined, BIG), undefined);
  t.false(fs.existsSync(dest));
  t.is(local.usage().blobs, 0);
  t.like(tier.counters(), { errors: 1, hits: 0 });
  // Without a size, the tier's body limit bounds it.
  const tier2 = new HttpTier(f.url, { log: memoryLogger().child('http'), connectTimeoutMs: 15_000, timeoutMs: 15_000, maxBodyBytes: 4 * BIG });
  t.teardown(() => tier2.close());
  const st = (await tier2.getBlobStream(d))!;
  let n = 0;
  await t.throwsAsync(async () => {
    for await (const c of st) n += (c as Buffer).length;
  });
  t.true(n <= 4 * BIG, `${n} bytes read`);
  t.like(tier2.counters(), { errors: 1, hits: 0 });
});

// The storing rate is injected so that the extra time a body buys is far from the server's
// delay on either side: 1 MB at 20 bytes/ms buys 50 s more than the 1.5 s idle deadline, an
// answer after 6 s comes well inside it; 1 KB buys 50 ms, so the same answer is a timeout.
test('HttpTier: a server that stores an upload before it answers (an S3-backed vrift serve) gets more time after a large body than after a small one', async (t) => {
  const f = await fakeServer(t, (req, res) => {
    req.resume();
    req.on('end', () =>
      setTimeout(() => {
        res.writeHead(200, { 'content-length': 0 });
        res.end();
      }, 6000),
    );
  });
  const tier = new HttpTier(f.url, { log: memoryLogger().child('http'), connectTimeoutMs: 15_000, timeoutMs: 1500, storeBytesPerMs: 20 });
  t.teardown(() => tier.close());
  const data = randomBytes(1_000_000);
  await tier.putBlobStream(digestHex(data), data.length, async () => chunks(data));
  t.like(tier.counters(), { uploads: 1, errors: 0, timeouts: 0 });
  t.false(tier.coolingDown());
  const small = randomBytes(1000);
  await t.throwsAsync(tier.putBlob(small), { message: /timed out/ });
  t.like(tier.counters(), { uploads: 1, timeouts: 1 });
});

// ---- through daemons ----

// Generous remote timeouts: what these tests check is the large objects' integrity, and on a
// loaded machine (the suite runs two files at once) the daemon's start-up probe of the
// server could otherwise time out and cool the remote down before the first lookup.
const patient = (url: string) => ({ VRIFT_REMOTE: url, VRIFT_REMOTE_TIMEOUT: '10s', VRIFT_REMOTE_WAIT: '10s' });

function bigProject(dir: string): void {
  writeBigSource(path.join(dir, 'big.c'), BIG, Buffer.from('vrift big-blob test'));
  fs.writeFileSync(path.join(dir, 'small.c'), 'int small(void) { return 7; }\n');
  age(path.join(dir, 'big.c'), path.join(dir, 'small.c'));
}

async function compileAll(t: ExecutionContext, inst: ReturnType<typeof instance>): Promise<Record<string, Buffer>> {
  const out: Record<string, Buffer> = {};
  for (const f of ['big.c', 'small.c']) {
    const o = f.replace(/\.c$/, '.o');
    fs.rmSync(path.join(inst.dir, o), { force: true });
    const r = await inst.cc(['-c', f, '-o', o]);
    t.is(r.code, 0, r.err);
    out[o] = fs.readFileSync(path.join(inst.dir, o));
  }
  return out;
}

async function machineA(t: ExecutionContext, serve: Served): Promise<Record<string, Buffer>> {
  const a = instance(t, patient(serve.url));
  bigProject(a.dir);
  const objs = await compileAll(t, a);
  t.true(objs['big.o'].length > BIG);
  // A hit from A's own store is streamed into place too.
  const again = await compileAll(t, a);
  sameObjs(t, again, objs);
  const s = (await a.stats()) as RStats;
  t.like(s, { hits: 2, misses: 2 });
  await a.stop(); // drains the uploads
  return objs;
}

test('a large object compiled on A is streamed to the server and from it to B: identical bytes, no compile on B', async (t) => {
  const dir = tmpDir(t);
  const serve = await startServe(t, ['--store', path.join(dir, 'store'), '--access-log', 'off']);
  const fromA = await machineA(t, serve);
  const b = instance(t, patient(serve.url));
  bigProject(b.dir);
  const fromB = await compileAll(t, b);
  sameObjs(t, fromB, fromA);
  const s = (await b.stats()) as RStats;
  t.like(s, { hits: 2, misses: 0 });
  t.is(s.remote!.errors, 0);
  t.true(Number(s.remote!.bytes_down) > BIG / 2);
  t.is((await b.until((x) => x.local.blobs >= 2)).local.blobs, 2);
});

for (const how of ['wrong-bytes', 'truncated'] as const) {
  test(`a server that sends a large object with ${how}: B compiles it locally and counts the failure`, async (t) => {
    const dir = tmpDir(t);
    const serve = await startServe(t, ['--store', path.join(dir, 'store'), '--access-log', 'off']);
    const fromA = await machineA(t, serve);
    // Entries come through untouched; the large CAS object is spoiled.
    const proxy = await fakeServer(t, (req, res) => {
      if (req.method !== 'GET') {
        req.resume();
        res.writeHead(req.method === 'HEAD' ? 404 : 200, { 'content-length': 0 });
        return res.end();
      }
      // Streamed through as it comes (a loaded machine may take seconds to read the whole
      // object; B must see its bytes flowing, then spoiled, not an idle connection).
      http.get(`${serve.url}${req.url}`, (up) => {
        const length = Number(up.headers['content-length']);
        res.writeHead(up.statusCode!, Number.isFinite(length) ? { 'content-length': length } : {});
        if (up.statusCode !== 200 || !(length >= STREAM_MIN)) return up.pipe(res);
        let at = 0;
        up.on('data', (c: Buffer) => {
          const [from, to] = [at, (at += c.length)];
          if (how === 'wrong-bytes') {
            if (from <= length - 100 && length - 100 < to) c[length - 100 - from] ^= 1;
            return res.write(c);
          }
          if (to < length >> 1) return res.write(c);
          if (from < length >> 1) res.write(c.subarray(0, (length >> 1) - from), () => res.destroy());
        });
        up.on('end', () => how === 'wrong-bytes' && res.end());
      });
    });
    const b = instance(t, patient(proxy.url));
    bigProject(b.dir);
    const r = await b.cc(['-c', 'big.c', '-o', 'big.o']);
    t.is(r.code, 0, r.err);
    same(t, fs.readFileSync(path.join(b.dir, 'big.o')), fromA['big.o']);
    const s = (await b.stats()) as RStats;
    t.like(s, { hits: 0, misses: 1 });
    t.is(s.remote!.errors, 1, JSON.stringify(s.remote));
    if (how === 'wrong-bytes') t.is(s.remote!.integrity, 1);
    t.deepEqual(
      fs.readdirSync(b.dir).filter((n) => n.includes('.vrift-')),
      [],
    );
  });
}

test('a large input is hashed in chunks: same digest, and tokens across chunk seams are seen', (t) => {
  const dir = tmpDir(t);
  const f = path.join(dir, 'big.h');
  const data = Buffer.from(randomBytes(3 * 2 ** 20).map((b) => 32 + (b % 90))); // no token by accident
  fs.writeFileSync(f, data);
  t.deepEqual(hashLarge(f), { hash: digestHex(data), flags: 0, size: data.length });
  // "__TIME__" straddling the first 1 MiB boundary, ".incbin" straddling the second.
  Buffer.from('__TIME__').copy(data, 2 ** 20 - 3);
  Buffer.from('.incbin').copy(data, 2 * 2 ** 20 - 6);
  fs.writeFileSync(f, data);
  const r = hashLarge(f);
  t.is(r.hash, digestHex(data));
  t.is(r.flags, F_TIME | F_INCBIN);
  t.is(r.flags, scanFlags(data));
});

test('archives, ELF files and Rust metadata are hashed without the token scan (no source starts like them)', (t) => {
  const dir = tmpDir(t);
  const body = Buffer.from(randomBytes(3 * 2 ** 20).map((b) => 32 + (b % 90)));
  Buffer.from('__TIME__ .incbin __DATE__').copy(body, 2 ** 20 + 5);
  for (const [name, magic] of [
    ['lib.rlib', '!<arch>\n'],
    ['x.o', '\x7fELF'],
    ['lib.rmeta', 'rust\0\0\0'],
  ] as const) {
    const data = Buffer.concat([Buffer.from(magic, 'latin1'), body]);
    const f = path.join(dir, name);
    fs.writeFileSync(f, data);
    t.deepEqual(hashLarge(f), { hash: digestHex(data), flags: 0, size: data.length }, name);
    t.is(scanFlags(data.subarray(0, 2 ** 20 + 100)), 0, name);
  }
  // A text file with the tokens is still scanned, small or large.
  const text = Buffer.concat([Buffer.from('!<arch> is not C\n'), body]);
  t.is(scanFlags(text), F_TIME | F_INCBIN | F_DATE);
  const f = path.join(dir, 'odd.h');
  fs.writeFileSync(f, text);
  t.is(hashLarge(f).flags, F_TIME | F_INCBIN | F_DATE);
});
