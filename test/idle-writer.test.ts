import test from 'ava';
import { memoryLogger } from '../daemon/log.js';
import { IdleWriter } from '../daemon/store/idle-writer.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('writes wait while lookups come, then go in order; what waits is readable meanwhile', async (t) => {
  const done: string[] = [];
  const w = new IdleWriter(memoryLogger().child('t'), { idleMs: 50 });
  for (const k of ['b1', 'e1', 'e2']) w.add(k, Buffer.from(k), async () => void done.push(k));
  for (let i = 0; i < 15; i++) {
    t.deepEqual(w.get('e1'), Buffer.from('e1')); // a lookup every 20 ms: no pause yet
    await sleep(20);
  }
  t.deepEqual(done, [], 'nothing written while lookups kept coming');
  for (let i = 0; i < 200 && done.length < 3; i++) await sleep(10);
  t.deepEqual(done, ['b1', 'e1', 'e2']);
  t.is(w.get('e1'), undefined, 'written: read from the store now');
});

test('over the byte budget it writes down to half of it, lookups or not; settle writes the rest, empty values too', async (t) => {
  const done: string[] = [];
  const w = new IdleWriter(memoryLogger().child('t'), { idleMs: 60_000, maxBytes: 100 });
  w.get('x'); // busy
  for (let i = 0; i < 4; i++) w.add(`b${i}`, Buffer.alloc(30, i), async () => void done.push(`b${i}`));
  w.add('e-empty', Buffer.alloc(0), async () => void done.push('e-empty'));
  for (let i = 0; i < 100 && done.length < 3; i++) await sleep(5);
  t.deepEqual(done, ['b0', 'b1', 'b2'], '120 bytes waited: written until 30 are left');
  await w.settle();
  t.deepEqual(done, ['b0', 'b1', 'b2', 'b3', 'e-empty']);
});

test('a failing write is logged and counted, the ones after it still land, a newer value of the same key is kept', async (t) => {
  const lines: string[] = [];
  const errors: unknown[] = [];
  const done: string[] = [];
  const w = new IdleWriter(memoryLogger(lines).child('t'), { idleMs: 60_000, onError: (e) => errors.push(e) });
  w.add('e1', Buffer.from('old'), async () => {
    throw new Error('ENOSPC: injected');
  });
  w.add('e1', Buffer.from('new'), async () => void done.push('e1 new'));
  w.add('b2', Buffer.from('x'), async () => void done.push('b2'));
  t.deepEqual(w.get('e1'), Buffer.from('new'));
  await w.settle();
  t.deepEqual(done, ['e1 new', 'b2']);
  t.is(errors.length, 1);
  t.true(lines.some((l) => l.includes('store write failed')));
  t.is(w.get('e1'), undefined);
});
