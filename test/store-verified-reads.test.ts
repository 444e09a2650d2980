import fs from 'node:fs';
import path from 'node:path';
import { digestHex } from '../daemon/hash.js';
import { memoryLogger } from '../daemon/log.js';
import { LocalStore } from '../daemon/store/local.js';
import { AC_DIR, CAS_DIR } from '../daemon/store/layout.js';
import { tmpDir } from './helpers/remote.js';
import test from './helpers/test.js';

// LocalStore's verifiedCacheBytes (daemon/store/verified-reads.ts): content read and verified
// once is answered from memory while its file stays the same, and never once it changed,
// whoever changed it.

const KEY = 'ab'.repeat(32);
const entryFile = (root: string, key: string) => path.join(root, AC_DIR, key.slice(0, 2), key);
const blobFile = (root: string, d: string) => path.join(root, CAS_DIR, d.slice(0, 2), d);

async function stores(t: import('ava').ExecutionContext) {
  const root = path.join(tmpDir(t), 'l2');
  const open = async (verifiedCacheBytes: number) => {
    const s = new LocalStore({ root, verifiedCacheBytes, log: memoryLogger().child('store') });
    await s.open();
    t.teardown(() => s.close());
    return s;
  };
  // The daemon's store (with the cache) and another process's (a second daemon, the CLI).
  return { root, cached: await open(1 << 20), other: await open(0) };
}

test('an entry rewritten by another process, or spoiled in place, is read again: the cache never answers for a file that changed', async (t) => {
  const { root, cached, other } = await stores(t);
  await cached.putEntry(KEY, Buffer.from('first value'));
  t.deepEqual(await cached.getEntry(KEY), Buffer.from('first value'));
  t.deepEqual(await cached.getEntry(KEY), Buffer.from('first value'), 'again, unchanged');

  // Another process writes a new value of the same length (a new file renamed over it).
  await other.putEntry(KEY, Buffer.from('later value'));
  t.deepEqual(await cached.getEntry(KEY), Buffer.from('later value'));

  // Spoiled in place, its times put back: same inode, size and mtime, only ctime moves.
  const f = entryFile(root, KEY);
  const st = fs.statSync(f);
  const bytes = fs.readFileSync(f);
  bytes[bytes.length - 1] ^= 1;
  fs.writeFileSync(f, bytes, { flag: 'r+' });
  fs.utimesSync(f, st.atime, st.mtime);
  t.is(await cached.getEntry(KEY), undefined, 'checked again, found corrupt');
  t.is(cached.counters().corrupt, 1);
  t.false(fs.existsSync(f), 'and removed');
});

test('a blob removed behind the cache is a miss; one written again is read from its new file', async (t) => {
  const { root, cached, other } = await stores(t);
  const data = Buffer.from('an object');
  const d = digestHex(data);
  await cached.putBlob(data);
  t.deepEqual(await cached.getBlob(d), data);
  fs.rmSync(blobFile(root, d));
  t.is(await cached.getBlob(d), undefined);
  await other.putBlob(data);
  t.deepEqual(await cached.getBlob(d), data);
  const small = await cached.readBlob(d, 1 << 20);
  t.deepEqual(small?.data, data, 'read whole when small');
  const big = await cached.readBlob(d, 0);
  t.truthy(big?.stream, 'streamed above the size given');
  big?.stream?.resume();
});
