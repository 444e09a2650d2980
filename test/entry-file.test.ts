import { randomBytes } from 'node:crypto';
import { KeyHasher } from '../daemon/hash.js';
import { decodeEntry, encodeEntry } from '../daemon/store/entry-file.js';
import test from './helpers/test.js';

// The action-cache file's checksum is defined as KeyHasher('vrift-ac-v1').str(key).bytes(payload),
// truncated to 16 bytes (daemon/store/entry-file.ts computes it without KeyHasher's one string):
// files written before and after read the same.

const KEY = 'cd'.repeat(32);

test('the checksum is the KeyHasher digest of key and payload, for ASCII, binary and empty payloads', (t) => {
  const payloads = [Buffer.alloc(0), Buffer.from('plain ascii payload'), randomBytes(10_000), Buffer.from([0x7f, 0x80, 0xff, 0x00, 0xc3])];
  for (const p of payloads) {
    const file = encodeEntry(KEY, p);
    const want = new KeyHasher('vrift-ac-v1').str(KEY).bytes(p).digest().slice(0, 32);
    t.is(file.subarray(16, 32).toString('hex'), want, `payload of ${p.length} bytes`);
    t.like(decodeEntry(file, KEY), { ok: true });
    t.like(decodeEntry(file, 'ef'.repeat(32)), { ok: false, reason: 'checksum mismatch' });
  }
});
