import test from './helpers/test.js';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { memoryLogger } from '../daemon/log.js';
import { IdleWriter } from '../daemon/store/idle-writer.js';
import { waitFor } from './helpers/wait.js';

const T0 = 1_700_000_000_000;

// The writer's clock is the test's: its timers still fire in real time, and it tells the test
// after each look (`looked`); a look happens at a clock the test set, so no sleep of the test's
// can be stretched past a pause by a loaded machine.
function clocked(o: { busy?: () => boolean } = {}) {
  const c = { t: T0, looks: 0, now: () => c.t, busy: () => o.busy?.() ?? false, looked: () => void c.looks++ };
  return c;
}

/** Resolves once the writer has looked again (its timer fired and it decided, at the clock as it is now). */
async function looked(c: { looks: number }): Promise<void> {
  const n = c.looks;
  await waitFor(() => c.looks > n, "the writer's next look");
}

test('writes wait while lookups come, then go in order; what waits is readable meanwhile', async (t) => {
  const c = clocked();
  const done: string[] = [];
  const w = new IdleWriter(memoryLogger().child('t'), { idleMs: 50, now: c.now, busy: c.busy, looked: c.looked });
  for (const k of ['b1', 'e1', 'e2']) w.add(k, Buffer.from(k), async () => void done.push(k));
  // Lookups 10 ms apart on the writer's clock, the writer looking in between: nothing written.
  let last = c.t;
  for (let i = 0; i < 5; i++) {
    t.deepEqual(w.get('e1'), Buffer.from('e1'), 'waiting: readable');
    last = c.t;
    await looked(c);
    c.t += 10;
  }
  t.deepEqual(done, [], 'lookups keep coming: nothing written');
  c.t = last + 49;
  await looked(c);
  t.deepEqual(done, [], '49 ms after the last lookup: not yet');
  c.t = last + 50;
  await waitFor(() => done.length >= 3, 'the three writes at the pause');
  t.deepEqual(done, ['b1', 'e1', 'e2']);
  t.is(w.get('e1'), undefined, 'written: read from the store now');
});

test('over the byte budget it writes down to half of it, lookups or not; settle writes the rest, empty values too', async (t) => {
  const done: string[] = [];
  const w = new IdleWriter(memoryLogger().child('t'), { idleMs: 60_000, maxBytes: 100 });
  w.get('x'); // busy
  for (let i = 0; i < 4; i++) w.add(`b${i}`, Buffer.alloc(30, i), async () => void done.push(`b${i}`));
  w.add('e-empty', Buffer.alloc(0), async () => void done.push('e-empty'));
  await waitFor(() => done.length >= 3, 'the writes over the byte budget');
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

test('over the memory budget what waits goes to one spool file, is read back from it, written in order, and the spool is emptied then removed', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vrift-spool-'));
  const spool = path.join(dir, 'spool');
  const written: [string, Buffer][] = [];
  const w = new IdleWriter(memoryLogger().child('t'), { idleMs: 60_000, maxBytes: 100, spool });
  w.get('x'); // busy
  const vals = Array.from({ length: 6 }, (_, i) => Buffer.alloc(40, 0x41 + i));
  vals.forEach((v, i) => w.add(`b${i}`, v, async (d) => void written.push([`b${i}`, Buffer.from(d)])));
  t.deepEqual(w.waiting(), { bytes: 80, spooled: 160, items: 6 }, 'two in memory, four in the spool');
  t.is(fs.statSync(spool).size, 160);
  t.deepEqual(w.get('b5'), vals[5], 'read back from the spool');
  await w.settle();
  t.deepEqual(
    written.map(([k]) => k),
    ['b0', 'b1', 'b2', 'b3', 'b4', 'b5'],
  );
  written.forEach(([, d], i) => t.deepEqual(d, vals[i], `b${i} written with its own bytes`));
  t.is(fs.statSync(spool).size, 0, 'nothing waits: the spool gives its space back');
  w.add('e1', Buffer.alloc(200, 1), async (d) => void written.push(['e1', Buffer.from(d)]));
  t.is(w.waiting().spooled, 200, 'appended from the start again');
  await w.close();
  t.deepEqual(written.at(-1), ['e1', Buffer.alloc(200, 1)]);
  t.false(fs.existsSync(spool), 'close removes the spool');
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a spool that cannot be written is logged once and what waits stays in memory, within the budget', async (t) => {
  const lines: string[] = [];
  const written: string[] = [];
  const w = new IdleWriter(memoryLogger(lines).child('t'), { idleMs: 60_000, maxBytes: 100, spool: '/nonexistent-dir/vrift/spool' });
  w.get('x');
  for (let i = 0; i < 4; i++) w.add(`b${i}`, Buffer.alloc(40, i), async () => void written.push(`b${i}`));
  await waitFor(() => written.length >= 3, 'the writes over the memory budget');
  t.deepEqual(written, ['b0', 'b1', 'b2'], '160 bytes in memory: over the memory budget: written down to half, as without a spool');
  t.is(lines.filter((l) => l.includes('spool write failed')).length, 1);
  t.deepEqual(w.get('b3'), Buffer.alloc(40, 3));
  await w.close();
  t.deepEqual(written, ['b0', 'b1', 'b2', 'b3']);
});

test('a pause in lookups does not write while the machine is busy compiling, up to maxBusyWaitMs', async (t) => {
  let busy = true;
  const written: string[] = [];
  const c = clocked({ busy: () => busy });
  const cl = clocked({ busy: () => true }); // compiles never stop
  const w = new IdleWriter(memoryLogger().child('t'), { idleMs: 30, now: c.now, busy: c.busy, looked: c.looked });
  const long = new IdleWriter(memoryLogger().child('t'), { idleMs: 30, maxBusyWaitMs: 300, now: cl.now, busy: cl.busy, looked: cl.looked });
  long.add('e0', Buffer.from('x'), async () => void written.push('e0'));
  w.add('e1', Buffer.from('x'), async () => void written.push('e1'));
  c.t = cl.t = T0 + 299; // no lookup ever
  await Promise.all([looked(c), looked(cl)]);
  t.deepEqual(written, [], 'no lookups for 299 ms, but compiles run: nothing written');
  busy = false;
  await waitFor(() => written.includes('e1'), 'e1 written once no compile runs');
  t.false(written.includes('e0'));
  cl.t = T0 + 300;
  await waitFor(() => written.includes('e0'), 'e0 written once it waited maxBusyWaitMs');
});

test('with no compile running, what waited maxWaitMs is written even while lookups keep coming; settleWithin reports a backlog it could not finish', async (t) => {
  let busy = true;
  const written: string[] = [];
  const c = clocked({ busy: () => busy });
  const w = new IdleWriter(memoryLogger().child('t'), { idleMs: 30, maxWaitMs: 100, now: c.now, busy: c.busy, looked: c.looked });
  w.add('e1', Buffer.from('x'), async () => void written.push('e1'));
  // A lookup at every clock the writer sees: never a 30 ms pause.
  c.t = T0 + 250;
  w.get('k');
  await looked(c);
  t.deepEqual(written, [], 'compiles running: it waits');
  busy = false; // a warm build: hits only
  await waitFor(() => written.length >= 1, 'e1 written after maxWaitMs, lookups or not');
  t.deepEqual(written, ['e1']);
  let release!: () => void;
  w.add('e2', Buffer.from('y'), () => new Promise<void>((r) => (release = r)));
  t.false(await w.settleWithin(50), 'a write still running after 50 ms');
  t.is(w.waiting().items, 1, 'being written');
  release();
  t.true(await w.settleWithin(30_000));
});

test('deferred work waits for the pause like writes and goes first; runDeferred(k) runs it at once, once; a failure is counted', async (t) => {
  const done: string[] = [];
  const errors: unknown[] = [];
  let busy = true;
  const c = clocked({ busy: () => busy });
  const w = new IdleWriter(memoryLogger().child('t'), { idleMs: 30, now: c.now, busy: c.busy, looked: c.looked, onError: (e) => errors.push(e) });
  let ran = 0;
  w.defer('a', async () => {
    ran++;
    done.push('job a');
    w.add('ea', Buffer.from('a'), async () => void done.push('write ea'));
  });
  w.defer('b', async () => {
    throw new Error('injected');
  });
  w.defer('c', async () => void done.push('job c'));
  t.is(w.waiting().items, 3);
  c.t += 60_000; // no lookup for a minute
  await looked(c);
  t.deepEqual(done, [], 'nothing runs while a compile runs');
  await w.runDeferred('c');
  await w.runDeferred('c');
  await w.runDeferred('nothing filed');
  t.deepEqual(done, ['job c'], 'runDeferred runs it now, and only once');
  busy = false;
  await waitFor(() => done.length >= 3, 'the deferred work and its write at the pause');
  await w.runDeferred('a'); // already ran
  t.deepEqual(done, ['job c', 'job a', 'write ea'], 'at the pause: the work first, then what it stored');
  t.is(ran, 1);
  t.is(errors.length, 1);
  t.is(w.waiting().items, 0);
});

test('a whole file waits as its open descriptor: read from it, written after a clean removed it, refused when changed in place; over the descriptor budget the bytes wait instead', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vrift-iw-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const errors: unknown[] = [];
  const got = new Map<string, Buffer>();
  const w = new IdleWriter(memoryLogger().child('t'), { idleMs: 60_000, maxFiles: 2, onError: (e) => errors.push(e) });
  const file = (name: string, fill: number) => {
    const f = path.join(dir, name);
    fs.writeFileSync(f, Buffer.alloc(1000, fill));
    return { f, data: fs.readFileSync(f), fd: fs.openSync(f, 'r') };
  };
  const same = (expect: Buffer) => (b: Buffer) => b.equals(expect);
  const a = file('a.rlib', 1);
  const b = file('b.rlib', 2);
  const c = file('c.rlib', 3);
  t.true(w.addFile('ba', a.fd, a.data, async (d) => void got.set('ba', d), same(a.data)));
  t.true(w.addFile('bb', b.fd, b.data, async (d) => void got.set('bb', d), same(b.data)));
  t.false(
    w.addFile('bc', c.fd, c.data, async (d) => void got.set('bc', d), same(c.data)),
    'over maxFiles: the bytes wait',
  );
  t.deepEqual(w.get('ba'), a.data, 'readable from the descriptor while it waits');
  fs.rmSync(a.f); // cargo clean: the descriptor keeps the inode
  fs.writeFileSync(b.f, Buffer.alloc(1000, 9), { flag: 'r+' }); // written in place: refused
  t.is(w.get('bb'), undefined);
  await w.settle();
  t.deepEqual(got.get('ba'), a.data);
  t.false(got.has('bb'));
  t.deepEqual(got.get('bc'), c.data);
  t.is(errors.length, 1, 'the changed one is counted');
  await w.close();
  const open = () =>
    fs.readdirSync('/proc/self/fd').filter((n) => {
      try {
        return fs.readlinkSync(`/proc/self/fd/${n}`).startsWith(dir);
      } catch {
        return false;
      }
    });
  // Closed on the thread pool once written: waited for, not given a fixed time.
  await waitFor(() => open().length === 0, 'every descriptor closed');
  t.deepEqual(open(), []);
});

test('with maxJobWaitMs deferred work runs once it waited that long, busy and lookups or not, while the writes still wait', async (t) => {
  const done: string[] = [];
  const c = clocked({ busy: () => true });
  const w = new IdleWriter(memoryLogger().child('t'), { idleMs: 60_000, maxJobWaitMs: 50, now: c.now, busy: c.busy, looked: c.looked });
  t.teardown(() => w.close());
  w.add('e0', Buffer.from('0'), async () => void done.push('write e0')); // arms the (long) pause first
  w.defer('a', async () => {
    done.push('job a');
    w.add('ea', Buffer.from('a'), async () => void done.push('write ea'));
  });
  c.t = T0 + 49;
  w.get('x'); // lookups keep coming
  await looked(c);
  t.deepEqual(done, [], 'waited 49 ms: not yet');
  c.t = T0 + 50;
  w.get('x');
  await waitFor(() => done.length > 0, 'the deferred work after maxJobWaitMs');
  t.deepEqual(done, ['job a'], 'the work ran; its write and the older one wait for a pause');
  t.deepEqual(w.get('ea'), Buffer.from('a'));
  await w.settle();
  t.deepEqual(done, ['job a', 'write e0', 'write ea']);
});

test('reads made by deferred work are not lookups: every job waiting at a pause runs in that pause', async (t) => {
  // The writer's clock stands still: counted as a lookup, the first job's read would hold the
  // other jobs back for ever (never idleMs without one), and this wait would fail.
  const c = clocked();
  const w = new IdleWriter(memoryLogger().child('t'), { idleMs: 30, now: c.now, busy: c.busy, looked: c.looked });
  t.teardown(() => w.close());
  const started: string[] = [];
  for (let i = 0; i < 4; i++) {
    w.defer(`k${i}`, async () => {
      started.push(`k${i}`);
      w.get('e0'); // a manifest read back, as the C front-end's job does
      w.add(`e${i}`, Buffer.from(String(i)), async () => {});
    });
  }
  await waitFor(() => w.waiting().items === 0, 'every job and write done at the pause');
  t.deepEqual(started, ['k0', 'k1', 'k2', 'k3']);
});

test('the spool has a cap (1 GiB by default, injected here): over it, what waits is written down to half of it while lookups go on', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vrift-spool-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const done: string[] = [];
  const w = new IdleWriter(memoryLogger().child('t'), { idleMs: 60_000, maxBytes: 100, maxSpoolBytes: 200, spool: path.join(dir, 'spool') });
  t.teardown(() => w.close());
  w.get('x'); // busy: nothing is written for being idle
  for (let i = 0; i < 7; i++) w.add(`b${i}`, Buffer.alloc(40, i), async () => void done.push(`b${i}`));
  t.deepEqual(w.waiting(), { bytes: 80, spooled: 200, items: 7 }, 'at the cap, not over it: nothing written');
  t.deepEqual(done, []);
  w.add('b7', Buffer.alloc(40, 7), async () => void done.push('b7'));
  await waitFor(() => done.length >= 6, 'the writes down to half the cap');
  t.deepEqual(done, ['b0', 'b1', 'b2', 'b3', 'b4', 'b5'], 'in order, until 80 spooled bytes (at most 100) are left');
  t.deepEqual(w.waiting(), { bytes: 0, spooled: 80, items: 2 });
  await w.settle();
  t.deepEqual(done, ['b0', 'b1', 'b2', 'b3', 'b4', 'b5', 'b6', 'b7']);
});

test('written(mark) resolves once what was queued before it is written, not when it was queued; false when a write after the mark failed', async (t) => {
  const w = new IdleWriter(memoryLogger().child('t'), { idleMs: 60_000 });
  const done: string[] = [];
  const from = w.mark();
  w.add('e1', Buffer.from('1'), async () => void done.push('e1'));
  w.add('e2', Buffer.from('2'), async () => void done.push('e2'));
  let ok: boolean | undefined;
  const p = w.written(from).then((v) => (ok = v));
  w.add('e3', Buffer.from('3'), async () => {
    throw new Error('disk full');
  }); // after the barrier: not its business
  await new Promise((r) => setImmediate(r));
  t.is(ok, undefined, 'queued is not written: nothing written for a minute of lookups');
  await w.settle();
  await p;
  t.deepEqual(done, ['e1', 'e2']);
  t.true(ok, 'both written');
  t.false(await w.written(from), 'e3 failed after the mark');
  const later = w.mark();
  w.add('e4', Buffer.from('4'), async () => void done.push('e4'));
  const q = w.written(later);
  await w.settle();
  t.true(await q, 'a failure before the mark does not count');
  await w.close();
});
