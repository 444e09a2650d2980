import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { Readable } from 'node:stream';
import path from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import test from './helpers/test.js';
import type { ExecutionContext } from 'ava';
import { digestHex } from '../daemon/hash.js';
import { memoryLogger } from '../daemon/log.js';
import { STREAM_MIN } from '../daemon/store/blob-stream.js';
import { makeS3Client, S3Tier } from '../daemon/tiers/s3.js';
import { age, instance, ROOT } from './helpers/instance.js';
import { fakeServer, PATIENT, PATIENT_REMOTE, request, startServe, tmpDir } from './helpers/remote.js';

// s3rver (npm) as the bucket: plain Put/Get/Head are all vrift uses, so it is a fair stand-in
// for quick tests (it ignores conditional writes, which vrift does not rely on).
async function s3rver(t: ExecutionContext): Promise<NodeJS.ProcessEnv> {
  const dir = tmpDir(t, 'vrift-s3-');
  // Port 0: s3rver says which port it bound.
  const proc = spawn(
    process.execPath,
    [path.join(ROOT, 'node_modules', 's3rver', 'bin', 's3rver.js'), '-d', dir, '-a', '127.0.0.1', '-p', '0', '--silent', '--configure-bucket', 'cache'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  t.teardown(async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const gone = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    await gone;
  });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`s3rver did not say its port within 60 s: ${out}${err}`)), 60_000);
    proc.stderr!.on('data', (d) => {
      err += d;
    });
    proc.stdout!.on('data', (d) => {
      out += d;
      const m = /listening on \S+:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`s3rver exited ${code}: ${err}`));
    });
  });
  t.is((await request(`http://127.0.0.1:${port}/cache`)).status, 200, 'the bucket is there');
  return {
    ...process.env,
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
    AWS_REGION: 'us-east-1',
    VRIFT_S3_ENDPOINT: `http://127.0.0.1:${port}`,
  };
}

test("the S3 region: from the environment, else the AWS config file's profile, else us-east-1", async (t) => {
  const dir = tmpDir(t);
  const cfg = path.join(dir, 'config');
  fs.writeFileSync(cfg, '[default]\nregion = eu-west-3\n[profile other]\nregion = ap-south-1\n');
  const mod = path.join(ROOT, 'dist', 'daemon', 'tiers', 's3.js');
  const regionWith = (env: Record<string, string>) =>
    new Promise<string>((resolve, reject) => {
      const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AWS_')));
      const p = spawn(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          `import { makeS3Client } from ${JSON.stringify(mod)}; console.log(await makeS3Client(process.env, { connectTimeoutMs: 1000, timeoutMs: 1000 }).config.region());`,
        ],
        { env: { ...clean, HOME: dir, ...env } },
      );
      let out = '';
      p.stdout.on('data', (d) => (out += d));
      p.on('exit', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`exit ${code}`))));
    });
  t.is(await regionWith({ AWS_CONFIG_FILE: cfg }), 'eu-west-3');
  t.is(await regionWith({ AWS_CONFIG_FILE: cfg, AWS_PROFILE: 'other' }), 'ap-south-1');
  t.is(await regionWith({ AWS_CONFIG_FILE: cfg, AWS_REGION: 'us-west-2' }), 'us-west-2');
  t.is(await regionWith({}), 'us-east-1');
});

test("S3Tier: an endpoint that trickles a byte now and then (never idle for the SDK's timeout) times out on the whole exchange, counted, cooled down", async (t) => {
  const f = await fakeServer(t, (req, res) => {
    req.resume();
    if (req.method !== 'GET') {
      res.writeHead(404, { 'content-length': 0 });
      return res.end();
    }
    res.writeHead(200, { 'content-length': 100_000, 'content-type': 'application/octet-stream' });
    const tick = setInterval(() => res.write('x'), 100);
    res.on('close', () => clearInterval(tick));
  });
  const env = { ...process.env, AWS_ACCESS_KEY_ID: 'k', AWS_SECRET_ACCESS_KEY: 's', AWS_REGION: 'us-east-1', VRIFT_S3_ENDPOINT: f.url };
  const tier = new S3Tier('s3://cache/team', { env, log: memoryLogger().child('s3'), connectTimeoutMs: PATIENT.connectTimeoutMs, timeoutMs: 300 });
  t.teardown(() => tier.close());
  t.is(await tier.getEntry('7'.repeat(64)), undefined);
  t.like(tier.counters(), { timeouts: 1, hits: 0 }, JSON.stringify(tier.counters()));
  t.true(tier.coolingDown());
});

test('S3Tier: put, head, get, miss; an object with the wrong bytes is rejected', async (t) => {
  const env = await s3rver(t);
  const tier = new S3Tier('s3://cache/team', { env, log: memoryLogger().child('s3'), ...PATIENT });
  t.teardown(() => tier.close());
  const blob = Buffer.from('s3 object '.repeat(500));
  const d = digestHex(blob);
  t.false(await tier.hasBlob(d));
  t.is(await tier.getBlob(d), undefined);
  t.is(await tier.putBlob(blob), d);
  t.true(await tier.hasBlob(d));
  t.deepEqual(await tier.getBlob(d), blob);
  await tier.putEntry('7'.repeat(64), Buffer.from('entry'));
  t.deepEqual(await tier.getEntry('7'.repeat(64)), Buffer.from('entry'));
  t.like(tier.counters(), { hits: 2, misses: 1, errors: 0, uploads: 2 });
  const raw = makeS3Client(env, { connectTimeoutMs: 2000, timeoutMs: 5000 });
  t.teardown(() => raw.destroy());
  const d2 = digestHex('the real thing');
  await raw.send(new PutObjectCommand({ Bucket: 'cache', Key: `team/cas/${d2}`, Body: Buffer.from('an impostor') }));
  t.is(await tier.getBlob(d2), undefined);
  t.like(tier.counters(), { integrity: 1, errors: 1 });
  t.true(tier.coolingDown());
});

test('S3Tier streams a large blob up and down; wrong bytes fail the stream and are counted', async (t) => {
  const env = await s3rver(t);
  const tier = new S3Tier('s3://cache/big', { env, log: memoryLogger().child('s3'), ...PATIENT });
  t.teardown(() => tier.close());
  const blob = randomBytes(STREAM_MIN + 12345);
  const d = digestHex(blob);
  await tier.putBlobStream(d, blob.length, async () => Readable.from([blob.subarray(0, 1 << 20), blob.subarray(1 << 20)]));
  const got: Buffer[] = [];
  for await (const c of (await tier.getBlobStream(d))!) got.push(c as Buffer);
  t.true(Buffer.concat(got).equals(blob));
  t.is(await tier.getBlobStream(digestHex('nothing')), undefined);
  t.like(tier.counters(), { hits: 1, misses: 1, errors: 0, uploads: 1 });
  const raw = makeS3Client(env, { connectTimeoutMs: 2000, timeoutMs: 5000 });
  t.teardown(() => raw.destroy());
  const d2 = digestHex('the real big thing');
  await raw.send(new PutObjectCommand({ Bucket: 'cache', Key: `big/cas/${d2}`, Body: blob }));
  const bad = (await tier.getBlobStream(d2))!;
  await t.throwsAsync(
    async () => {
      for await (const c of bad) void c;
    },
    { message: /does not match its digest/ },
  );
  t.like(tier.counters(), { integrity: 1, errors: 1, hits: 1 });
});

test("two vrift serve processes on one bucket serve each other's uploads; a bad digest stores nothing", async (t) => {
  const env = await s3rver(t);
  const one = await startServe(t, ['--store', 's3://cache/shared'], env);
  const two = await startServe(t, ['--store', 's3://cache/shared'], env);
  const body = Buffer.from('uploaded through one');
  t.is((await request(`${one.url}/cas/${digestHex(body)}`, { method: 'PUT', body })).status, 200);
  t.is((await request(`${one.url}/ccache/ab/cdefghijklmnopqrstuvwxyz01234`, { method: 'PUT', body })).status, 200);
  t.deepEqual((await request(`${two.url}/cas/${digestHex(body)}`)).body, body);
  t.is((await request(`${two.url}/cas/${digestHex(body)}`, { method: 'HEAD' })).status, 200);
  t.deepEqual((await request(`${two.url}/ccache/ab/cdefghijklmnopqrstuvwxyz01234`)).body, body);
  const wrong = digestHex('something else');
  t.is((await request(`${two.url}/cas/${wrong}`, { method: 'PUT', body })).status, 400);
  t.is((await request(`${one.url}/cas/${wrong}`, { method: 'HEAD' })).status, 404);
  t.is((await request(`${one.url}/ac/${'3'.repeat(64)}`)).status, 404);
});

test('a daemon writing to the bucket directly and one reading through vrift serve share objects', async (t) => {
  const env = await s3rver(t);
  const serve = await startServe(t, ['--store', 's3://cache/builds', '--access-log', 'off'], env);
  const src = 'int sq(int x) { return x * x; }\n';
  // Patient remote deadlines: the test is about sharing, not about a loaded machine's latency.
  const a = instance(t, { ...env, VRIFT_REMOTE: 's3://cache/builds', ...PATIENT_REMOTE });
  age(a.write('sq.c', src));
  t.is((await a.cc(['-O2', '-c', 'sq.c', '-o', 'sq.o'])).code, 0);
  await a.stop();
  const b = instance(t, { VRIFT_REMOTE: serve.url, ...PATIENT_REMOTE });
  age(b.write('sq.c', src));
  t.is((await b.cc(['-O2', '-c', 'sq.c', '-o', 'sq.o'])).code, 0);
  const s = await b.stats();
  t.is(s.hits, 1);
  t.is(s.misses, 0);
});
