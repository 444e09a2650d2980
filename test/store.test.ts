import test from './helpers/test.js';
import type { ExecutionContext } from 'ava';
import { spawn, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isVriftError } from '../ipc/errors.js';
import { digestHex } from '../daemon/hash.js';
import { memoryLogger } from '../daemon/log.js';
import { CACHEDIR_TAG, LocalStore, type LocalStoreOptions } from '../daemon/store/api.js';
import { isSpareName } from '../daemon/store/write.js';
import { waitFor } from './helpers/wait.js';

const T0 = 1_700_000_000_000;
// Past the store's touch granularity (10 min): a use this long after the last recorded one is written.
const LATER = 11 * 60_000;

interface Ctx {
  store: LocalStore;
  root: string;
  clock: { t: number };
  lines: string[];
}

async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'vrift-store-'));
  t.teardown(() => fsp.rm(dir, { recursive: true, force: true }));
  return dir;
}

async function mk(t: ExecutionContext, opts: Partial<LocalStoreOptions> = {}, root?: string): Promise<Ctx> {
  root ??= path.join(await tempDir(t), 'l2');
  const clock = { t: T0 };
  const lines: string[] = [];
  const store = new LocalStore({ root, now: () => clock.t, log: memoryLogger(lines).child('store'), touchDelayMs: 60_000, ...opts });
  await store.open();
  t.teardown(() => store.close());
  return { store, root, clock, lines };
}

const blobPath = (root: string, d: string): string => path.join(root, 'cas-v1', d.slice(0, 2), d);
const entryPath = (root: string, k: string): string => path.join(root, 'ac-v1', k.slice(0, 2), k);
const key = (s: string): string => digestHex(`key:${s}`);

// Files under dir, but not the empty spare temp files a writing store keeps ready.
async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fsp.readdir(dir, { withFileTypes: true, recursive: true })) {
    const f = path.join(e.parentPath ?? e.path, e.name);
    if (e.isFile() && !(isSpareName(e.name) && (await fsp.stat(f)).size === 0)) out.push(path.relative(dir, f));
  }
  return out.sort();
}

// What is in tmp/ besides spares: must be nothing after any write, good or failed.
async function tmpLeft(root: string): Promise<string[]> {
  return (await listFiles(path.join(root, 'tmp'))).sort();
}

// ---------- round trips and layout ----------

test('layout: versioned dirs, CACHEDIR.TAG, fan-out paths', async (t) => {
  const { store, root } = await mk(t);
  t.is(await fsp.readFile(path.join(root, 'CACHEDIR.TAG'), 'utf8'), CACHEDIR_TAG);
  t.true(CACHEDIR_TAG.startsWith('Signature: 8a477f597d28d172789f06886806bc55'));
  const d = await store.putBlob(Buffer.from('layout'));
  const k = key('layout');
  await store.putEntry(k, Buffer.from('v'));
  t.deepEqual(await listFiles(root), ['CACHEDIR.TAG', `ac-v1/${k.slice(0, 2)}/${k}`, `cas-v1/${d.slice(0, 2)}/${d}`].sort());
  t.deepEqual(await tmpLeft(root), []);
  // A new store has its fan-out directories from the start (not made during the first build).
  for (const kind of ['ac-v1', 'cas-v1']) t.is((await fsp.readdir(path.join(root, kind))).length, 256);
});

test('layout: a store missing fan-out directories (made by an older version) still takes writes', async (t) => {
  const { store, root } = await mk(t);
  const k = key('old');
  await fsp.rm(path.join(root, 'ac-v1', k.slice(0, 2)), { recursive: true });
  await store.putEntry(k, Buffer.from('v'));
  t.deepEqual(await store.getEntry(k), Buffer.from('v'));
});

test('blob round trips: small, empty, 10 MiB compressible and incompressible', async (t) => {
  const { store, root } = await mk(t);
  const cases: Array<[string, Buffer]> = [
    ['small', Buffer.from('int main(){}')],
    ['empty', Buffer.alloc(0)],
    ['random', randomBytes(10 << 20)],
    ['text', Buffer.from('the quick brown fox jumps over the lazy dog\n'.repeat(250_000)).subarray(0, 10 << 20)],
  ];
  for (const [name, data] of cases) {
    const d = await store.putBlob(data);
    t.is(d, digestHex(data), name);
    const back = await store.getBlob(d);
    t.true(back?.equals(data), name);
    t.true(await store.hasBlob(d), name);
  }
  // zstd only where it pays: random data is stored raw (header only), text much smaller.
  t.is((await fsp.stat(blobPath(root, digestHex(cases[2][1])))).size, (10 << 20) + 16);
  t.true((await fsp.stat(blobPath(root, digestHex(cases[3][1])))).size < 1 << 20);
  const c = store.counters();
  t.is(c.writes, 4);
  t.is(c.reads, 4);
  t.is(
    c.readBytes,
    cases.reduce((n, [, b]) => n + b.length, 0),
  );
  t.is(c.writeBytes, c.readBytes);
  t.false(await store.hasBlob(digestHex('never stored')));
  t.is(await store.getBlob(digestHex('never stored')), undefined);
});

test('entry round trips, overwrite, empty value, miss', async (t) => {
  const { store } = await mk(t);
  const k = key('a');
  t.is(await store.getEntry(k), undefined);
  await store.putEntry(k, Buffer.from('first'));
  t.deepEqual(await store.getEntry(k), Buffer.from('first'));
  await store.putEntry(k, Buffer.from('second'));
  t.deepEqual(await store.getEntry(k), Buffer.from('second'));
  await store.putEntry(key('empty'), Buffer.alloc(0));
  t.deepEqual(await store.getEntry(key('empty')), Buffer.alloc(0));
  t.deepEqual(store.usage(), { blobs: 0, entries: 2, bytes: 32 + 6 + 32, files: 2 });
});

test('putBlob with a digest that does not match the content is rejected before writing', async (t) => {
  const { store, root } = await mk(t);
  const wrong = digestHex('other');
  const e = await t.throwsAsync(store.putBlob(Buffer.from('content'), wrong));
  t.true(isVriftError(e, 'EINTEGRITY'));
  t.false(fs.existsSync(blobPath(root, wrong)));
  t.false(fs.existsSync(blobPath(root, digestHex('content'))));
  t.is(await store.putBlob(Buffer.from('content'), digestHex('content')), digestHex('content'));
});

test('invalid keys and digests are rejected, never turned into paths', async (t) => {
  const { store, root } = await mk(t);
  const bad: unknown[] = [
    'abc',
    digestHex('x').toUpperCase(),
    '../'.repeat(21) + 'x',
    `${digestHex('x').slice(0, 62)}/a`,
    '',
    digestHex('x') + '0',
    `..${digestHex('x').slice(2)}`,
    42,
    undefined,
  ];
  for (const b of bad) {
    const s = b as string;
    for (const p of [
      store.getBlob(s),
      store.hasBlob(s),
      store.getEntry(s),
      store.putEntry(s, Buffer.from('v')),
      store.putBlob(Buffer.from('v'), s === undefined ? 'zz' : s),
    ]) {
      const e = await t.throwsAsync(p);
      t.true(isVriftError(e, 'EBADMSG'), String(b));
    }
  }
  t.deepEqual(await listFiles(root), ['CACHEDIR.TAG']);
});

// ---------- integrity ----------

async function corruptions(): Promise<Array<[string, (p: string) => Promise<void>]>> {
  return [
    [
      'flipped byte',
      async (p) => {
        const b = await fsp.readFile(p);
        b[b.length - 5] ^= 0x40;
        await fsp.writeFile(p, b);
      },
    ],
    [
      'flipped size field',
      async (p) => {
        const b = await fsp.readFile(p);
        b[8] ^= 0x01;
        await fsp.writeFile(p, b);
      },
    ],
    ['truncated', async (p) => fsp.truncate(p, (await fsp.stat(p)).size - 7)],
    ['truncated inside header', async (p) => fsp.truncate(p, 9)],
    ['zero length', async (p) => fsp.truncate(p, 0)],
    ['garbage', async (p) => fsp.writeFile(p, randomBytes(5000))],
    [
      'directory',
      async (p) => {
        await fsp.rm(p);
        await fsp.mkdir(p);
        await fsp.writeFile(path.join(p, 'inside'), 'x');
      },
    ],
  ];
}

for (const compressible of [true, false]) {
  test(`corrupt blobs (${compressible ? 'zstd' : 'raw'}) read as a miss, are removed and counted`, async (t) => {
    const { store, root, lines } = await mk(t);
    let n = 0;
    for (const [what, damage] of await corruptions()) {
      const data = compressible ? Buffer.from(`${what}\n`.repeat(2000)) : randomBytes(20_000);
      const d = await store.putBlob(data);
      const p = blobPath(root, d);
      t.is((await fsp.stat(p)).size < data.length, compressible, what);
      await damage(p);
      t.is(await store.getBlob(d), undefined, what);
      t.false(fs.existsSync(p), what);
      t.is(store.counters().corrupt, ++n, what);
      t.false(await store.hasBlob(d), what);
      // The store heals: the same content can be stored and read again.
      t.is(await store.putBlob(data), d, what);
      t.true((await store.getBlob(d))?.equals(data), what);
    }
    t.is(lines.filter((l) => l.includes('"EINTEGRITY"')).length, n);
    t.deepEqual(store.usage().blobs, n);
  });
}

test('corrupt entries read as a miss and are removed; an entry moved to another key is corrupt', async (t) => {
  const { store, root } = await mk(t);
  let n = 0;
  for (const [what, damage] of await corruptions()) {
    const k = key(what);
    await store.putEntry(k, Buffer.from(`value for ${what} `.repeat(20)));
    await damage(entryPath(root, k));
    t.is(await store.getEntry(k), undefined, what);
    t.false(fs.existsSync(entryPath(root, k)), what);
    t.is(store.counters().corrupt, ++n, what);
  }
  const a = key('a');
  const b = key('b');
  await store.putEntry(a, Buffer.from('answer for a'));
  await fsp.mkdir(path.dirname(entryPath(root, b)), { recursive: true });
  await fsp.copyFile(entryPath(root, a), entryPath(root, b));
  t.is(await store.getEntry(b), undefined);
  t.is(store.counters().corrupt, n + 1);
  t.deepEqual(await store.getEntry(a), Buffer.from('answer for a'));
});

test('a blob renamed to another digest is a miss, not the wrong content', async (t) => {
  const { store, root } = await mk(t);
  const d = await store.putBlob(Buffer.from('real'));
  const other = digestHex('other');
  await fsp.mkdir(path.dirname(blobPath(root, other)), { recursive: true });
  await fsp.copyFile(blobPath(root, d), blobPath(root, other));
  await store.rescan();
  t.is(await store.getBlob(other), undefined);
  t.is(store.counters().corrupt, 1);
});

test('verify finds and removes exactly the corrupt files, reports progress, does not count as use', async (t) => {
  const { store, root } = await mk(t);
  const blobs: string[] = [];
  const keys: string[] = [];
  for (let i = 0; i < 30; i++) {
    blobs.push(await store.putBlob(Buffer.from(`blob ${i} `.repeat(i * 10))));
    keys.push(key(`k${i}`));
    await store.putEntry(keys[i], Buffer.from(`entry ${i}`));
  }
  const badBlobs = [blobs[3], blobs[17]];
  const badKeys = [keys[0], keys[29]];
  await fsp.truncate(blobPath(root, badBlobs[0]), 10);
  await fsp.writeFile(blobPath(root, badBlobs[1]), 'garbage');
  await fsp.appendFile(entryPath(root, badKeys[0]), 'x');
  await fsp.truncate(entryPath(root, badKeys[1]), 0);
  const before = await listFiles(root);
  const progress: Array<[number, number]> = [];
  const r = await store.verify((done, total) => progress.push([done, total]));
  t.is(r.checked, 60);
  t.is(r.corrupt, 4);
  t.is(r.removed, 4);
  t.true(r.bytes > 0 && r.removedBytes < r.bytes);
  const expected = before.filter((f) => ![...badBlobs, ...badKeys].includes(path.basename(f)));
  t.deepEqual(await listFiles(root), expected);
  t.is(progress.length, 60);
  t.deepEqual(progress.at(-1), [60, 60]);
  t.true(progress.every(([d, tot], i) => d === i + 1 && tot === 60));
  t.is(store.counters().reads, 0);
  t.is(store.counters().corrupt, 4);
  t.deepEqual(store.usage(), { blobs: 28, entries: 28, bytes: r.bytes - r.removedBytes, files: 56 });
  const again = await store.verify();
  t.deepEqual([again.checked, again.corrupt, again.removed], [56, 0, 0]);
});

// ---------- eviction ----------

const SIZE = 1000; // random, so stored raw: 1016 bytes on disk
const FILE = SIZE + 16;

test('LRU eviction keeps the most recently used; a touched old blob survives', async (t) => {
  const { store, root, clock } = await mk(t, { maxSize: 10 * FILE });
  const ds: string[] = [];
  for (let i = 0; i < 10; i++) {
    clock.t = T0 + i * 1000;
    ds.push(await store.putBlob(randomBytes(SIZE)));
  }
  t.is(store.usage().bytes, 10 * FILE);
  t.is(store.counters().evictedFiles, 0);
  clock.t = T0 + 20_000;
  t.truthy(await store.getBlob(ds[0])); // oldest, now most recently used
  clock.t = T0 + 21_000;
  const fresh = await store.putBlob(randomBytes(SIZE));
  // 11 files > 10: trimmed to <= 90% of the limit, i.e. 9 files, least recently used first.
  t.is(store.usage().blobs, 9);
  t.is(store.usage().bytes, 9 * FILE);
  const kept = new Set([ds[0], fresh, ...ds.slice(3)]);
  for (const d of [...ds, fresh]) t.is(fs.existsSync(blobPath(root, d)), kept.has(d), d);
  t.deepEqual(store.counters(), { ...store.counters(), evictedFiles: 2, evictedBytes: 2 * FILE });
  t.is(await store.getBlob(ds[1]), undefined);
  t.is(store.counters().corrupt, 0);
});

test('pinned blobs (named by lazy files in mounted overlays) are never evicted, by the limits or by clean --all', async (t) => {
  const pins = new Set<string>();
  const { store, root, clock } = await mk(t, { maxSize: 10 * FILE, pinned: () => pins });
  const ds: string[] = [];
  for (let i = 0; i < 10; i++) {
    clock.t = T0 + i * 1000;
    ds.push(await store.putBlob(randomBytes(SIZE)));
  }
  pins.add(ds[0]!).add(ds[1]!); // the two least recently used
  clock.t = T0 + 21_000;
  await store.putBlob(randomBytes(SIZE));
  t.true(fs.existsSync(blobPath(root, ds[0]!)), 'oldest, pinned: kept');
  t.true(fs.existsSync(blobPath(root, ds[1]!)));
  t.false(fs.existsSync(blobPath(root, ds[2]!)), 'the oldest unpinned went instead');
  t.is(store.usage().bytes, 9 * FILE);
  await store.clean({ all: true });
  t.deepEqual(await listFiles(path.join(root, 'cas-v1')), [ds[0]!, ds[1]!].map((d) => path.join(d.slice(0, 2), d)).sort());
  t.truthy(await store.getBlob(ds[0]!));
});

test("a file marked unused (a warm run's) is evicted before every used one until a read uses it, and a scan ranks it first too", async (t) => {
  const { store, root, clock } = await mk(t, { maxSize: 10 * FILE });
  const ds: string[] = [];
  for (let i = 0; i < 8; i++) {
    clock.t = T0 + i * 1000;
    ds.push(await store.putBlob(randomBytes(SIZE)));
  }
  // Two warm runs' objects, marked before their write lands, written last.
  const warm = [randomBytes(SIZE), randomBytes(SIZE)];
  const wd = warm.map((b) => digestHex(b));
  store.markUnused({ blobs: wd });
  clock.t = T0 + 10_000;
  for (const b of warm) await store.putBlob(b);
  t.true(fs.statSync(blobPath(root, wd[0])).mtimeMs < T0, 'stamped before the oldest use');
  // Already in the store: not marked (it may be a build's).
  store.markUnused({ blobs: [ds[7]] });
  // A build uses the second one.
  clock.t = T0 + 11_000;
  t.truthy(await store.getBlob(wd[1]));
  // 11 files > 10: trimmed to 9, the unused one first, then the least recently used.
  clock.t = T0 + 12_000;
  const last = await store.putBlob(randomBytes(SIZE));
  const kept = new Set([...ds.slice(1), wd[1], last]);
  for (const d of [...ds, ...wd, last]) t.is(fs.existsSync(blobPath(root, d)), kept.has(d), d);

  // Another process's scan (a restart, vrift clean) goes by the stamps: the unused one first.
  const more = randomBytes(SIZE);
  store.markUnused({ blobs: [digestHex(more)] });
  clock.t = T0 + 13_000;
  await store.putBlob(more);
  await store.close();
  await mk(t, { maxSize: 10 * FILE - 1 }, root); // 10 files: over
  t.false(fs.existsSync(blobPath(root, digestHex(more))), 'the unused one went first');
  for (const d of [...ds.slice(2), wd[1], last]) t.true(fs.existsSync(blobPath(root, d)), 'used ones stay, but for the least recently used');
});

test('a file marked unused is not taken for one unused for max_age: age eviction leaves a fresh warm file, size eviction still takes it first', async (t) => {
  const HOUR = 3_600_000;
  const { store, root, clock } = await mk(t, { maxAge: HOUR, maxSize: 4 * FILE });
  clock.t = T0;
  const old = await store.putBlob(randomBytes(SIZE));
  clock.t = T0 + HOUR - 1000; // the build's file is almost an hour unused
  const w = randomBytes(SIZE);
  store.markUnused({ blobs: [digestHex(w)] });
  await store.putBlob(w);
  clock.t = T0 + HOUR + 1000;
  await store.putBlob(randomBytes(SIZE)); // an age check
  t.false(fs.existsSync(blobPath(root, old)), 'an hour unused: gone');
  t.true(fs.existsSync(blobPath(root, digestHex(w))), 'written two seconds ago: not an hour unused');
  // Over the size limit: the warm one goes first.
  const newer: string[] = [];
  for (let i = 0; i < 3; i++) {
    clock.t += 1000;
    newer.push(await store.putBlob(randomBytes(SIZE)));
  }
  t.false(fs.existsSync(blobPath(root, digestHex(w))), 'the unused one went first');
  t.true(fs.existsSync(blobPath(root, newer[2])));
});

test('last use survives a restart through batched mtime updates', async (t) => {
  const dir = await tempDir(t);
  const root = path.join(dir, 'l2');
  const a = await mk(t, {}, root);
  const ds: string[] = [];
  for (let i = 0; i < 5; i++) {
    a.clock.t = T0 + i * 1000;
    ds.push(await a.store.putBlob(randomBytes(SIZE)));
  }
  // A use within minutes of the recorded one is not worth a metadata write ...
  a.clock.t = T0 + 60_000;
  await a.store.getBlob(ds[0]);
  await a.store.getBlob(ds[1]);
  a.clock.t = T0 + LATER;
  await a.store.getBlob(ds[0]);
  // ... a later one is, but not yet (touchDelayMs is a minute) ...
  t.is((await fsp.stat(blobPath(root, ds[0]))).mtimeMs, T0);
  await a.store.close();
  // ... and close() flushes it.
  t.is((await fsp.stat(blobPath(root, ds[0]))).mtimeMs, T0 + LATER);
  t.is((await fsp.stat(blobPath(root, ds[1]))).mtimeMs, T0 + 1000, 'the use a minute after the write was not written');

  const b = await mk(t, { maxSize: 5 * FILE }, root);
  b.clock.t = T0 + LATER + 1000;
  await b.store.putBlob(randomBytes(SIZE)); // 6 > 5 files: trim to 4
  t.is(b.store.usage().blobs, 4);
  t.true(fs.existsSync(blobPath(root, ds[0])));
  t.false(fs.existsSync(blobPath(root, ds[1])));
  t.false(fs.existsSync(blobPath(root, ds[2])));
  t.true(fs.existsSync(blobPath(root, ds[3])));
});

test("rescan keeps this process's unflushed uses and writes that land during the scan", async (t) => {
  const { store, root, clock } = await mk(t, { maxSize: 3 * FILE });
  const ds: string[] = [];
  for (let i = 0; i < 3; i++) {
    clock.t = T0 + i * 1000;
    ds.push(await store.putBlob(randomBytes(SIZE)));
  }
  clock.t = T0 + 5000;
  await store.getBlob(ds[0]); // mtime on disk still says T0
  await store.rescan();
  clock.t = T0 + 6000;
  await store.putBlob(randomBytes(SIZE)); // 4 > 3 files: the two least recently used go
  t.true(fs.existsSync(blobPath(root, ds[0])));
  t.false(fs.existsSync(blobPath(root, ds[1])));
  t.false(fs.existsSync(blobPath(root, ds[2])));

  const b = await mk(t); // no size limit
  await Promise.all(Array.from({ length: 400 }, (_, i) => b.store.putEntry(key(`many${i}`), Buffer.from('v'))));
  const scanning = b.store.rescan();
  await Promise.all(Array.from({ length: 20 }, (_, i) => b.store.putEntry(key(`late${i}`), Buffer.from('v'))));
  await scanning;
  t.is(b.store.usage().entries, 420);
});

test('touches are flushed by the timer without close()', async (t) => {
  const { store, root, clock } = await mk(t, { touchDelayMs: 5 });
  const d = await store.putBlob(Buffer.from('timer'));
  clock.t = T0 + LATER;
  await store.getBlob(d);
  await waitFor(async () => (await fsp.stat(blobPath(root, d))).mtimeMs === T0 + LATER, "the hit's touch written by the timer");
  t.is((await fsp.stat(blobPath(root, d))).mtimeMs, T0 + LATER);
});

test('age eviction: files unused for maxAge go, on put and on open', async (t) => {
  const dir = await tempDir(t);
  const root = path.join(dir, 'l2');
  const { store, clock } = await mk(t, { maxAge: 10_000 }, root);
  const old = await store.putBlob(Buffer.from('old'));
  const usedOld = await store.putBlob(Buffer.from('old but used'));
  clock.t = T0 + 6000;
  const mid = await store.putBlob(Buffer.from('mid'));
  await store.getBlob(usedOld);
  clock.t = T0 + 12_000;
  await store.putBlob(Buffer.from('trigger'));
  t.false(fs.existsSync(blobPath(root, old)));
  t.true(fs.existsSync(blobPath(root, usedOld)));
  t.true(fs.existsSync(blobPath(root, mid)));
  t.is(store.counters().evictedFiles, 1);
  await store.close();

  const later = await mk(t, { maxAge: 10_000, now: () => T0 + 17_000 }, root);
  t.false(fs.existsSync(blobPath(root, usedOld)));
  t.false(fs.existsSync(blobPath(root, mid)));
  t.is(later.store.usage().blobs, 1);
});

test('clean: olderThan, maxSize, all, and the configured limits', async (t) => {
  const { store, root, clock } = await mk(t);
  const ds: string[] = [];
  for (let i = 0; i < 10; i++) {
    clock.t = T0 + i * 1000;
    ds.push(await store.putBlob(randomBytes(SIZE)));
  }
  clock.t = T0 + 10_000;
  await store.putEntry(key('e'), Buffer.from('entry'));
  clock.t = T0 + 20_000;
  let r = await store.clean({ olderThan: 17_500 }); // last used before T0+2500
  t.deepEqual(r, { removedFiles: 3, removedBytes: 3 * FILE });
  t.false(fs.existsSync(blobPath(root, ds[2])));
  t.true(fs.existsSync(blobPath(root, ds[3])));
  r = await store.clean({ maxSize: 4 * FILE + 37 });
  t.deepEqual(r, { removedFiles: 3, removedBytes: 3 * FILE });
  t.deepEqual(store.usage(), { blobs: 4, entries: 1, bytes: 4 * FILE + 37, files: 5 });
  r = await store.clean(); // no limits configured: nothing to do
  t.deepEqual(r, { removedFiles: 0, removedBytes: 0 });
  r = await store.clean({ all: true });
  t.deepEqual(r, { removedFiles: 5, removedBytes: 4 * FILE + 37 });
  t.deepEqual(await listFiles(root), ['CACHEDIR.TAG']);
  t.deepEqual(store.usage(), { blobs: 0, entries: 0, bytes: 0, files: 0 });
  t.is(store.counters().evictedFiles, 11);
  const e = await t.throwsAsync(store.clean({ maxSize: -1 }));
  t.true(isVriftError(e, 'ECONFIG'));
});

test('clean() without options applies the configured maxSize and maxAge', async (t) => {
  const dir = await tempDir(t);
  const root = path.join(dir, 'l2');
  const a = await mk(t, {}, root);
  for (let i = 0; i < 10; i++) {
    a.clock.t = T0 + i * 1000;
    await a.store.putBlob(randomBytes(SIZE));
  }
  await a.store.close();
  // A store opened with limits trims at open already; clean() then has nothing left to do.
  const b = await mk(t, { maxSize: 5 * FILE, now: () => T0 + 10_000 }, root);
  t.is(b.store.usage().blobs, 4);
  t.deepEqual(await b.store.clean(), { removedFiles: 0, removedBytes: 0 });
  // Files written by someone else after open are found by clean()'s rescan.
  const c = await mk(t, {}, root);
  for (let i = 0; i < 4; i++) await c.store.putBlob(randomBytes(SIZE));
  t.deepEqual(await b.store.clean(), { removedFiles: 4, removedBytes: 4 * FILE });
  t.is(b.store.usage().blobs, 4);
});

// ---------- concurrency ----------

test('concurrent identical puts share one write; an existing digest is a no-op', async (t) => {
  const { store, root } = await mk(t);
  const data = randomBytes(1 << 20);
  const ds = await Promise.all(Array.from({ length: 25 }, () => store.putBlob(Buffer.from(data))));
  t.true(ds.every((d) => d === digestHex(data)));
  t.is(store.counters().writes, 1);
  t.is(store.counters().writeBytes, data.length);
  const files = await listFiles(path.join(root, 'cas-v1'));
  t.deepEqual(files, [`${ds[0].slice(0, 2)}/${ds[0]}`]);
  const ino = (await fsp.stat(blobPath(root, ds[0]))).ino;
  await store.putBlob(data);
  t.is(store.counters().writes, 1);
  t.is((await fsp.stat(blobPath(root, ds[0]))).ino, ino);
  t.deepEqual(await tmpLeft(root), []);
});

test('another instance on the same store: has/get see its writes, rescan corrects the accounting', async (t) => {
  const dir = await tempDir(t);
  const root = path.join(dir, 'l2');
  const a = await mk(t, {}, root);
  const b = await mk(t, {}, root);
  const d = await b.store.putBlob(Buffer.from('from b'));
  t.deepEqual(a.store.usage().blobs, 0);
  t.true(await a.store.hasBlob(d));
  t.deepEqual(await a.store.getBlob(d), Buffer.from('from b'));
  await a.store.putBlob(Buffer.from('from b')); // already there: no write
  t.is(a.store.counters().writes, 0);
  for (let i = 0; i < 5; i++) await b.store.putEntry(key(`b${i}`), Buffer.from('x'));
  await fsp.rm(blobPath(root, d));
  t.is(await a.store.getBlob(d), undefined); // vanished: a plain miss
  t.is(a.store.counters().corrupt, 0);
  await a.store.rescan();
  t.deepEqual(a.store.usage(), { blobs: 0, entries: 5, bytes: 5 * 33, files: 5 });
  t.deepEqual(await a.store.clean({ all: true }), { removedFiles: 5, removedBytes: 5 * 33 });
  t.is(await b.store.getEntry(key('b0')), undefined);
  t.deepEqual((await b.store.verify()).checked, 0);
});

const here = path.dirname(fileURLToPath(import.meta.url));
const apiUrl = new URL('../daemon/store/api.js', import.meta.url).href;
const hashUrl = new URL('../daemon/hash.js', import.meta.url).href;

// A child process using the store on its own: every read must be absent or exactly right.
const CHILD = `
import { LocalStore } from ${JSON.stringify(apiUrl)};
import { digestHex } from ${JSON.stringify(hashUrl)};
const [root, role, n] = [process.argv[1], process.argv[2], Number(process.argv[3])];
const store = new LocalStore({ root, maxSize: role === 'evictor' ? 200_000 : 0 });
await store.open();
const content = (i) => Buffer.from(('shared blob ' + i + ' ').repeat(50 + (i % 7) * 100));
const key = (i) => digestHex('key:' + i);
let bad = 0, hits = 0, errors = 0;
for (let i = 0; i < n; i++) {
  try {
    const d = await store.putBlob(content(i));
    await store.putEntry(key(i), Buffer.from(d));
    for (const j of [i, (i * 7) % n, n - 1 - i]) {
      const e = await store.getEntry(key(j));
      if (e !== undefined) { hits++; if (e.toString() !== digestHex(content(j))) bad++; }
      const b = await store.getBlob(digestHex(content(j)));
      if (b !== undefined) { hits++; if (!b.equals(content(j))) bad++; }
    }
    if (role === 'cleaner' && i % 40 === 0) await store.clean({ all: true });
    if (role === 'cleaner' && i % 40 === 20) await store.verify();
  } catch (e) { errors++; console.error(e); }
}
const c = store.counters();
await store.close();
process.stdout.write(JSON.stringify({ bad, hits, errors, corrupt: c.corrupt }));
`;

function runChild(root: string, role: string, n: number): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--input-type=module', '-e', CHILD, root, role, String(n)], { cwd: here, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (b) => (out += b));
    p.stderr.on('data', (b) => (err += b));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, out, err }));
  });
}

for (const roles of [
  ['writer', 'writer'],
  ['writer', 'cleaner'],
  ['writer', 'evictor'],
]) {
  test(`two processes share one store (${roles.join(' + ')})`, async (t) => {
    const root = path.join(await tempDir(t), 'l2');
    const n = 200;
    const results = await Promise.all(roles.map((r) => runChild(root, r, n)));
    for (const [i, r] of results.entries()) {
      t.is(r.code, 0, r.err);
      const j = JSON.parse(r.out) as { bad: number; hits: number; errors: number; corrupt: number };
      t.is(j.bad, 0, roles[i]);
      t.is(j.errors, 0, roles[i]);
      t.is(j.corrupt, 0, roles[i]);
      t.true(j.hits > 0, roles[i]);
    }
    const { store } = await mk(t, {}, root);
    const v = await store.verify();
    t.is(v.corrupt, 0);
    if (roles[1] === 'writer') t.is(store.usage().files, 2 * n); // nothing lost
    t.deepEqual(await tmpLeft(root), []);
  });
}

test('spare temp files: made after the first write, used by writes, one removed under the store is no loss, none left after close', async (t) => {
  const root = path.join(await tempDir(t), 'l2');
  const store = new LocalStore({ root, log: memoryLogger().child('store') });
  await store.open();
  const spares = async () => (await fsp.readdir(path.join(root, 'tmp'))).filter(isSpareName);
  t.deepEqual(await spares(), [], 'a store that only reads makes none');
  await store.putBlob(Buffer.from('first'));
  let ready: string[] = [];
  const lastDir = path.join(root, 'ac-v1', 'ff');
  await waitFor(async () => (ready = await spares()).length >= 16 && fs.existsSync(lastDir), '16 spares and the fan-out directories made');
  for (const n of ready) t.is((await fsp.stat(path.join(root, 'tmp', n))).size, 0);
  t.true(fs.existsSync(lastDir), 'fan-out directories made ahead');
  // Another process's sweep (or a user) removes every spare: writes still land.
  for (const n of ready) await fsp.rm(path.join(root, 'tmp', n));
  const ds = [];
  for (let i = 0; i < 40; i++) ds.push(await store.putBlob(Buffer.from(`blob ${i}`)));
  for (let i = 0; i < 40; i++) t.deepEqual(await store.getBlob(ds[i]), Buffer.from(`blob ${i}`));
  const inos = new Set<number>();
  for (const d of ds) inos.add((await fsp.stat(blobPath(root, d))).ino);
  t.is(inos.size, 40, 'every blob its own file');
  await store.close();
  t.deepEqual(await fsp.readdir(path.join(root, 'tmp')), []);
});

// ---------- write failures ----------

test('a failing write (injected ENOSPC) rejects with ESTORE and leaves nothing behind', async (t) => {
  let fail: string | undefined;
  const { store, root } = await mk(t, {
    io: {
      writeFile: (fd, data) => {
        if (!fail) return fs.writeFileSync(fd, data);
        fs.writeFileSync(fd, data.subarray(0, data.length >> 1)); // half written, then the disk is full
        throw Object.assign(new Error(`${fail}: injected`), { code: fail });
      },
    },
  });
  const good = await store.putBlob(Buffer.from('written before the disk filled'));
  await store.putEntry(key('good'), Buffer.from('ok'));
  const before = await listFiles(root);
  fail = 'ENOSPC';
  const e1 = await t.throwsAsync(store.putBlob(randomBytes(10_000)));
  t.true(isVriftError(e1, 'ESTORE'));
  t.is(((e1 as Error).cause as NodeJS.ErrnoException).code, 'ENOSPC');
  const e2 = await t.throwsAsync(store.putEntry(key('x'), Buffer.from('y')));
  t.true(isVriftError(e2, 'ESTORE'));
  fail = 'EACCES';
  t.true(isVriftError(await t.throwsAsync(store.putBlob(Buffer.from('z'))), 'ESTORE'));
  t.deepEqual(await listFiles(root), before);
  t.deepEqual(await tmpLeft(root), []);
  t.deepEqual(await store.getBlob(good), Buffer.from('written before the disk filled'));
  t.deepEqual(await store.getEntry(key('good')), Buffer.from('ok'));
  t.is(store.counters().writes, 2);
  fail = undefined;
  t.is(await store.putBlob(Buffer.from('z')), digestHex('z')); // recovers once space is back
});

test('a failing rename rejects with ESTORE and removes the temp file', async (t) => {
  const { store, root } = await mk(t, {
    io: {
      rename: () => {
        throw Object.assign(new Error('EACCES: injected'), { code: 'EACCES' });
      },
    },
  });
  t.true(isVriftError(await t.throwsAsync(store.putBlob(Buffer.from('r'))), 'ESTORE'));
  t.deepEqual(await tmpLeft(root), []);
  t.deepEqual(await listFiles(root), ['CACHEDIR.TAG']);
});

test('a real full disk (64 KiB tmpfs): ESTORE, no partial files, store stays readable', async (t) => {
  const mnt = await tempDir(t);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mnt]);
  t.teardown(() => execFileSync('umount', ['-l', mnt]));
  const { store } = await mk(t, {}, mnt);
  const small = randomBytes(8000);
  const d = await store.putBlob(small);
  const e = await t.throwsAsync(store.putBlob(randomBytes(200_000)));
  t.true(isVriftError(e, 'ESTORE'));
  t.is(((e as Error).cause as NodeJS.ErrnoException).code, 'ENOSPC');
  t.deepEqual(await tmpLeft(mnt), []);
  t.deepEqual(await store.getBlob(d), small);
  const v = await store.verify();
  t.deepEqual([v.checked, v.corrupt], [1, 0]);
  t.deepEqual(store.usage().blobs, 1);
  await store.close();
});

// ---------- lifecycle ----------

test('stale temp files from dead writers are removed on open, fresh ones kept', async (t) => {
  const root = path.join(await tempDir(t), 'l2');
  await fsp.mkdir(path.join(root, 'tmp'), { recursive: true });
  await fsp.writeFile(path.join(root, 'tmp', 'dead'), 'x');
  await fsp.utimes(path.join(root, 'tmp', 'dead'), (T0 - 2 * 3600_000) / 1000, (T0 - 2 * 3600_000) / 1000);
  await fsp.writeFile(path.join(root, 'tmp', 'busy'), 'x');
  await fsp.utimes(path.join(root, 'tmp', 'busy'), (T0 - 60_000) / 1000, (T0 - 60_000) / 1000);
  await mk(t, {}, root);
  t.deepEqual(await fsp.readdir(path.join(root, 'tmp')), ['busy']);
});

test('a directory where a blob belongs is replaced by the next put', async (t) => {
  const { store, root } = await mk(t);
  const data = Buffer.from('replace the directory');
  const d = digestHex(data);
  await fsp.mkdir(blobPath(root, d), { recursive: true });
  t.false(await store.hasBlob(d));
  t.is(await store.putBlob(data), d);
  t.deepEqual(await store.getBlob(d), data);
});

test('invalid options are rejected with ECONFIG', (t) => {
  for (const o of [{ maxSize: -1 }, { maxAge: Number.NaN }, { compressionLevel: 9 }, { root: '' }]) {
    t.true(
      isVriftError(
        t.throws(() => new LocalStore({ root: '/tmp/x', ...o })),
        'ECONFIG',
      ),
      JSON.stringify(o),
    );
  }
});

test('use before open() and after close() rejects with ESTORE', async (t) => {
  const root = path.join(await tempDir(t), 'l2');
  const s = new LocalStore({ root });
  t.true(isVriftError(await t.throwsAsync(s.getBlob(digestHex('x'))), 'ESTORE'));
  await s.open();
  await s.close();
  t.true(isVriftError(await t.throwsAsync(s.putBlob(Buffer.from('x'))), 'ESTORE'));
  await s.close(); // idempotent
});

test.serial('close() waits for running operations and leaves no timers or open files', async (t) => {
  const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  const fds = (): string[] => fs.readdirSync('/proc/self/fd').sort();
  const root = path.join(await tempDir(t), 'l2');
  const timersBefore = timers();
  const fdsBefore = fds();
  const clock = { t: T0 };
  const s = new LocalStore({ root, now: () => clock.t, touchDelayMs: 3_600_000 });
  await s.open();
  const d = await s.putBlob(Buffer.from('handles'));
  clock.t = T0 + LATER;
  await s.getBlob(d); // arms the touch timer
  t.is(timers(), timersBefore + 1);
  const big = randomBytes(1 << 20);
  const pending = s.putBlob(big);
  const reading = s.getBlob(d);
  await s.close();
  t.true(fs.existsSync(blobPath(root, digestHex(big)))); // finished, not abandoned
  t.is(await pending, digestHex(big));
  t.deepEqual(await reading, Buffer.from('handles'));
  t.is((await fsp.stat(blobPath(root, d))).mtimeMs, T0 + LATER);
  t.is(timers(), timersBefore);
  t.deepEqual(fds(), fdsBefore);
});
