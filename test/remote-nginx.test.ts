import fs from 'node:fs';
import path from 'node:path';
import test from './helpers/test.js';
import { digestHex } from '../daemon/hash.js';
import { memoryLogger } from '../daemon/log.js';
import { HttpTier } from '../daemon/tiers/http.js';
import { age, instance } from './helpers/instance.js';
import { PATIENT, PATIENT_REMOTE, startNginx, tieredAt, tmpDir } from './helpers/remote.js';

// nginx with WebDAV PUT is a plain Bazel-layout HTTP cache: no verification, 201/204 on PUT.
test('HttpTier against nginx WebDAV: put, head, get, miss; a file corrupted on the server is rejected', async (t) => {
  const ng = await startNginx(t);
  const log = memoryLogger();
  const tier = new HttpTier(`${ng.url}/cache/`, { log: log.child('remote'), ...PATIENT });
  t.teardown(() => tier.close());
  const blob = Buffer.from('object file bytes '.repeat(1000));
  const d = digestHex(blob);
  t.false(await tier.hasBlob(d));
  t.is(await tier.getBlob(d), undefined);
  t.is(await tier.putBlob(blob), d);
  t.true(await tier.hasBlob(d));
  t.deepEqual(await tier.getBlob(d), blob);
  t.true(fs.existsSync(path.join(ng.root, 'cache', 'cas', d)));
  const key = 'e'.repeat(64);
  await tier.putEntry(key, Buffer.from('entry'));
  await tier.putEntry(key, Buffer.from('entry 2')); // overwrite: nginx answers 204
  t.deepEqual(await tier.getEntry(key), Buffer.from('entry 2'));
  let c = tier.counters();
  t.like(c, { hits: 2, misses: 1, errors: 0, uploads: 3 });
  // Someone corrupts the file on the server: the bytes are refused, counted, and the tier cools down.
  fs.writeFileSync(path.join(ng.root, 'cache', 'cas', d), Buffer.from('not it'));
  t.is(await tier.getBlob(d), undefined);
  c = tier.counters();
  t.is(c.integrity, 1);
  t.is(c.errors, 1);
  t.true(tier.coolingDown());
  t.is(await tier.getEntry(key), undefined); // skipped while cooling down
  t.is(tier.counters().skipped, 1);
});

test('TieredStore over nginx: uploads in the background with HEAD before PUT, reads fill the local store', async (t) => {
  const ng = await startNginx(t);
  const dir = tmpDir(t);
  const mk = async (name: string) => {
    const { local, store } = await tieredAt(t, dir, name, ng.url);
    return { local, s: store };
  };
  const a = await mk('a');
  const blob = Buffer.from('shared object');
  const d = await a.s.putBlob(blob);
  await a.s.putEntry('1'.repeat(64), Buffer.from('result'));
  await a.s.putBlob(Buffer.from(blob)); // same digest again: one upload
  await a.s.flush();
  t.like(a.s.stats(), { uploads: 2, queued: 0, errors: 0 });
  const b = await mk('b');
  t.deepEqual(await b.s.getEntry('1'.repeat(64)), Buffer.from('result'));
  t.deepEqual(await b.s.getBlob(d), blob);
  await b.s.settle(); // (written when lookups pause)
  t.deepEqual(await b.local.getBlob(d), blob); // entered B's local store
  t.deepEqual(await b.local.getEntry('1'.repeat(64)), Buffer.from('result'));
  // B puts what the server already has: HEAD says so and nothing is sent.
  await b.s.putBlob(blob);
  await b.s.flush();
  t.like(b.s.stats(), { uploads: 0, upload_skipped: 1, hits: 2 });
  const access = fs.readFileSync(ng.log, 'utf8');
  t.is(access.match(/"PUT \/cas\//g)?.length, 1);
});

test('two daemons share an nginx WebDAV cache: B hits on everything A built', async (t) => {
  const ng = await startNginx(t);
  const remote = `${ng.url}/team`;
  const src = '#include <string.h>\nint n(const char *s) { return (int)strlen(s); }\n';
  const a = instance(t, { VRIFT_REMOTE: remote });
  age(a.write('n.c', src));
  t.is((await a.cc(['-c', 'n.c', '-o', 'n.o'])).code, 0);
  await a.stop();
  const b = instance(t, { VRIFT_REMOTE: remote, ...PATIENT_REMOTE });
  age(b.write('n.c', src));
  t.is((await b.cc(['-c', 'n.c', '-o', 'n.o'])).code, 0);
  t.deepEqual(fs.readFileSync(path.join(b.dir, 'n.o')), fs.readFileSync(path.join(a.dir, 'n.o')));
  const s = await b.stats();
  t.is(s.hits, 1);
  t.is(s.misses, 0);
});
