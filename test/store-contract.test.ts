import path from 'node:path';
import { Readable } from 'node:stream';
import test from './helpers/test.js';
import type { ExecutionContext } from 'ava';
import { isVriftError } from '../ipc/errors.js';
import { digestHex } from '../daemon/hash.js';
import { memoryLogger } from '../daemon/log.js';
import type { Cache } from '../daemon/store/contract.js';
import { IdleWriter } from '../daemon/store/idle-writer.js';
import { LocalStore } from '../daemon/store/local.js';
import { WriteBehind } from '../daemon/store/write-behind.js';
import { HttpTier } from '../daemon/tiers/http.js';
import { TieredStore } from '../daemon/tiers/tiered.js';
import { fakeServer, tmpDir } from './helpers/remote.js';

// The one cache contract (daemon/store/contract.ts), the same checks for every implementation:
// a new tier (the LAN peer tier) joins this list. A read-only tier checks the read half only.

async function local(t: ExecutionContext): Promise<LocalStore> {
  const s = new LocalStore({ root: path.join(tmpDir(t), 'l2'), log: memoryLogger().child('store') });
  await s.open();
  t.teardown(() => s.close());
  return s;
}

// A Bazel-layout cache server in this process (GET/HEAD/PUT of /ac/ and /cas/ from memory), on
// loopback: a `vrift serve` per test is its own process, and on a loaded machine it can leave a
// PUT unanswered past any deadline a test would set; the remote-* tests cover vrift serve.
async function served(t: ExecutionContext): Promise<HttpTier> {
  const data = new Map<string, Buffer>();
  const f = await fakeServer(t, (req, res) => {
    const body: Buffer[] = [];
    req.on('data', (c: Buffer) => body.push(c));
    req.on('end', () => {
      const p = req.url!;
      if (req.method === 'PUT') data.set(p, Buffer.concat(body));
      const v = req.method === 'PUT' ? Buffer.alloc(0) : data.get(p);
      res.writeHead(v ? 200 : 404, { 'content-length': v?.length ?? 0 });
      res.end(req.method === 'GET' ? v : undefined);
    });
  });
  const tier = new HttpTier(f.url, { log: memoryLogger().child('remote'), connectTimeoutMs: 30_000, timeoutMs: 60_000 });
  t.teardown(() => tier.close());
  return tier;
}

const caches: [string, (t: ExecutionContext) => Promise<Cache>][] = [
  ['LocalStore', local],
  [
    'WriteBehind',
    async (t) => {
      const later = new IdleWriter(memoryLogger().child('later'));
      const w = new WriteBehind(await local(t), later);
      t.teardown(() => w.close());
      return w;
    },
  ],
  ['HttpTier (a Bazel-layout server)', served],
  [
    'TieredStore (local + that server)',
    async (t) => {
      const log = memoryLogger().child('tiered');
      const s = new TieredStore({ local: await local(t), remote: await served(t), log });
      t.teardown(() => s.close());
      return s;
    },
  ],
];

const bytesOf = async (r: Readable): Promise<Buffer> => {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
};

for (const [name, make] of caches) {
  test(`${name}: blobs and entries round-trip, a miss is undefined, a wrong digest or a malformed key is refused`, async (t) => {
    const c = await make(t);
    t.is(typeof c.name, 'string');
    const blob = Buffer.from(`a blob for ${name}`);
    const d = digestHex(blob);
    const absent = digestHex(`nobody stored this (${name})`);
    t.is(await c.putBlob(blob), d);
    t.is(await c.putBlob(blob, d), d, 'a put of the same bytes again is the same digest');
    t.true(await c.hasBlob(d));
    t.deepEqual(await c.getBlob(d), blob);
    t.deepEqual(await bytesOf((await c.getBlobStream(d))!), blob, 'a small blob streams too');
    t.false(await c.hasBlob(absent));
    t.is(await c.getBlob(absent), undefined);
    const wrong = await t.throwsAsync(c.putBlob(Buffer.from('other bytes'), d));
    t.true(isVriftError(wrong) && wrong.code === 'EINTEGRITY', String(wrong));

    const key = digestHex(`an entry key for ${name}`);
    await c.putEntry(key, Buffer.from('the value'), { blobs: [d] });
    t.deepEqual(await c.getEntry(key), Buffer.from('the value'));
    t.is(await c.getEntry(absent), undefined);
    const bad = await t.throwsAsync(c.getEntry('not-a-key'));
    t.true(isVriftError(bad) && bad.code === 'EBADMSG', String(bad));
  });

  test(`${name}: streamed blobs round-trip; close is idempotent`, async (t) => {
    const c = await make(t);
    const big = Buffer.alloc(3 << 20, `streamed through ${name} `);
    const d = digestHex(big);
    let opened = 0;
    await c.putBlobStream(d, big.length, async () => {
      opened++;
      return Readable.from([big.subarray(0, 1 << 20), big.subarray(1 << 20)]);
    });
    t.true(opened >= 1);
    const s = await c.getBlobStream(d, big.length);
    t.truthy(s);
    t.true((await bytesOf(s!)).equals(big));
    t.deepEqual(await c.getBlob(d), big);
    t.is(await c.getBlobStream(digestHex(`no stream here (${name})`)), undefined);
    await c.close();
    await c.close();
  });
}
