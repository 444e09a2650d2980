import crypto from 'node:crypto';
import test from './helpers/test.js';
import { Sha256Worker } from '../daemon/serve/sha-off-thread.js';

const sha256 = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

test('SHA-256 on the worker equals node:crypto for uploads fed in odd chunks, several at once, past the hand-over bound', async (t) => {
  const worker = new Sha256Worker();
  t.teardown(() => worker.close());
  const blobs = [Buffer.alloc(0), crypto.randomBytes(1), crypto.randomBytes(100_003), crypto.randomBytes(20 * 2 ** 20 + 7)];
  const digests = await Promise.all(
    blobs.map(async (b) => {
      const h = worker.upload();
      let waited = 0;
      for (let off = 0, step = 1; off < b.length; off += step, step = Math.min(step * 3 + 1, 1 << 20)) {
        const w = h.update(b.subarray(off, off + step));
        if (w) {
          waited++;
          await w;
        }
      }
      return { hex: await h.digest(), waited };
    }),
  );
  digests.forEach((d, i) => t.is(d.hex, sha256(blobs[i]), `blob ${i}`));
  t.true(digests[3].waited > 0, 'a 20 MB upload handed over faster than hashed waits: memory stays bounded');
});

test('a dropped upload leaves the others correct', async (t) => {
  const worker = new Sha256Worker();
  t.teardown(() => worker.close());
  const a = worker.upload();
  const b = worker.upload();
  const data = crypto.randomBytes(300_000);
  await a.update(data.subarray(0, 1000));
  await b.update(data);
  a.drop();
  t.is(await b.digest(), sha256(data));
});

test('close() ends the worker: an upload under way fails, and so does one begun after', async (t) => {
  const worker = new Sha256Worker();
  const a = worker.upload();
  await a.update(crypto.randomBytes(100_000));
  await worker.close();
  await t.throwsAsync(a.digest(), { message: /closed/ });
  const b = worker.upload();
  t.is(b.update(Buffer.from('x')), undefined);
  await t.throwsAsync(b.digest(), { message: /closed/ });
});
