import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import test from './helpers/test.js';
import { digestHex } from '../daemon/hash.js';
import { memoryLogger } from '../daemon/log.js';
import { STREAM_MIN } from '../daemon/store/blob-stream.js';
import { makeS3Client, S3Tier } from '../daemon/tiers/s3.js';
import { age, instance } from './helpers/instance.js';
import { startCephRgw } from './helpers/ceph.js';
import { PATIENT, request, startServe } from './helpers/remote.js';

// Ceph RGW (Debian 16.2): a real S3 implementation, for the client's direct s3:// tier and
// for `vrift serve --store s3://` with two servers on one bucket. One cluster for all of it.
test('Ceph RGW: S3Tier directly, two vrift serve processes on one bucket, a daemon through them', async (t) => {
  const env = await startCephRgw(t);
  const admin = makeS3Client(env, { connectTimeoutMs: 2000, timeoutMs: 30_000 });
  t.teardown(() => admin.destroy());
  await admin.send(new CreateBucketCommand({ Bucket: 'cache' }));

  const tier = new S3Tier('s3://cache/direct', { env, log: memoryLogger().child('s3'), ...PATIENT });
  t.teardown(() => tier.close());
  const blob = Buffer.from('rgw object '.repeat(2000));
  t.false(await tier.hasBlob(digestHex(blob)));
  await tier.putBlob(blob);
  t.true(await tier.hasBlob(digestHex(blob)));
  t.deepEqual(await tier.getBlob(digestHex(blob)), blob);
  t.like(tier.counters(), { errors: 0, timeouts: 0, uploads: 1, hits: 1 });
  // A large blob, streamed both ways.
  const big = randomBytes(STREAM_MIN + 4321);
  await tier.putBlobStream(digestHex(big), big.length, async () => Readable.from([big.subarray(0, 1 << 20), big.subarray(1 << 20)]));
  const got: Buffer[] = [];
  for await (const c of (await tier.getBlobStream(digestHex(big)))!) got.push(c as Buffer);
  t.true(Buffer.concat(got).equals(big));
  t.like(tier.counters(), { errors: 0, timeouts: 0, uploads: 2, hits: 2 });

  const one = await startServe(t, ['--store', 's3://cache/team', '--access-log', 'off'], env);
  const two = await startServe(t, ['--store', 's3://cache/team', '--access-log', 'off'], env);
  const body = Buffer.from('through server one');
  t.is((await request(`${one.url}/cas/${digestHex(body)}`, { method: 'PUT', body })).status, 200);
  t.deepEqual((await request(`${two.url}/cas/${digestHex(body)}`)).body, body);
  t.is((await request(`${two.url}/cas/${digestHex('other')}`, { method: 'PUT', body })).status, 400);
  t.is((await request(`${one.url}/cas/${digestHex('other')}`, { method: 'HEAD' })).status, 404);

  const src = 'long cube(long x) { return x * x * x; }\n';
  const a = instance(t, { VRIFT_REMOTE: one.url });
  age(a.write('cube.c', src));
  t.is((await a.cc(['-c', 'cube.c', '-o', 'cube.o'])).code, 0);
  await a.stop();
  const b = instance(t, { VRIFT_REMOTE: two.url });
  age(b.write('cube.c', src));
  t.is((await b.cc(['-c', 'cube.c', '-o', 'cube.o'])).code, 0);
  const s = await b.stats();
  t.is(s.hits, 1);
  t.is(s.misses, 0);
});
