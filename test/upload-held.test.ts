import path from 'node:path';
import test from './helpers/test.js';
import type { ExecutionContext } from 'ava';
import { digestHex } from '../daemon/hash.js';
import { memoryLogger } from '../daemon/log.js';
import { LocalStore } from '../daemon/store/local.js';
import { HttpTier } from '../daemon/tiers/http.js';
import { TieredStore } from '../daemon/tiers/tiered.js';
import { fakeServer, PATIENT, tmpDir } from './helpers/remote.js';
import { waitFor } from './helpers/wait.js';

// Uploads held for a remote that is off (a long outage) are bounded by age and by the queue's
// limits, the oldest going first, so a dead server does not hold the daemon's memory for hours.
// The clock is the test's (the remote's cool-down and the uploads' age both read it); the held
// uploads still look for the remote in real time, and the test waits for those looks.

const MIN = 60_000;
const HELD_MS = 10 * MIN;

/** A server that answers 503 to everything while `down`, and stores PUTs otherwise; a TieredStore in front of it on the test's clock. */
async function outage(t: ExecutionContext, o: { queueLimit?: number; queueBytes?: number; drainMs?: number } = {}) {
  const dir = tmpDir(t);
  const clock = { now: 1_000_000 };
  const state = { down: true, looks: 0, stored: [] as string[] };
  const f = await fakeServer(t, (req, res) => {
    req.resume();
    req.on('end', () => {
      const status = state.down ? 503 : req.method === 'PUT' ? 200 : 404;
      if (status === 200) state.stored.push(req.url!);
      res.writeHead(status, { 'content-length': 0 });
      res.end();
    });
  });
  const local = new LocalStore({ root: path.join(dir, 'l2') });
  await local.open();
  const lines: string[] = [];
  const now = () => clock.now;
  const remote = new HttpTier(f.url, { log: memoryLogger().child('r'), coolDownMs: 30_000, now, ...PATIENT });
  const s = new TieredStore({
    local,
    remote,
    log: memoryLogger(lines).child('t'),
    packs: false,
    uploadRecheckMs: 20,
    uploadMaxHeldMs: HELD_MS,
    uploadsLooked: () => state.looks++,
    now,
    ...o,
  });
  t.teardown(async () => {
    await s.close();
    await local.close();
  });
  /** Resolves once the held uploads have looked for the remote again, at the clock as it is now. */
  const looked = async () => {
    const n = state.looks;
    await waitFor(() => state.looks > n, 'the held uploads to look for the remote');
  };
  const dropLines = () => lines.filter((l) => /uploads held for the remote too long|upload queue full/.test(l));
  return { s, remote, clock, state, looked, dropLines };
}

/** An object and an entry naming it, offered for upload; their paths on the server. */
async function pair(s: TieredStore, name: string): Promise<string[]> {
  const obj = Buffer.from(`object ${name}`);
  const key = digestHex(`entry ${name}`);
  await s.putBlob(obj);
  await s.putEntry(key, Buffer.from(`entry ${name}`));
  return [`/cas/${digestHex(obj)}`, `/ac/${key}`];
}

test('uploads held for a remote that is off are dropped once they waited uploadMaxHeldMs (counted as expired, said once an outage); younger ones go up when it answers again', async (t) => {
  const { s, remote, clock, state, looked, dropLines } = await outage(t);
  const first = await pair(s, 'first'); // tried: the failure switches the remote off under it
  await waitFor(() => remote.coolingDown(), 'the failed upload to cool the remote down');
  const old = await pair(s, 'old'); // offered while off: held
  clock.now += 5 * MIN;
  const young = await pair(s, 'young');
  t.like(s.stats(), { queued: 6, upload_dropped: 0, upload_expired: 0 });
  await looked();
  t.like(s.stats(), { queued: 6, upload_expired: 0 }, 'held 5 minutes: kept');
  clock.now += 5 * MIN; // 'first' and 'old' have waited 10 minutes, 'young' 5
  await waitFor(() => s.stats().queued === 2, 'the uploads held 10 minutes to be dropped');
  t.like(s.stats(), { queued: 2, upload_dropped: 4, upload_expired: 4, uploads: 0 });
  t.true(remote.coolingDown(), 'still off: its probes found it down');
  t.is(dropLines().length, 1, 'said once');
  t.deepEqual(state.stored, []);

  // The remote answers again before 'young' has waited 10 minutes: it goes up, the dropped do not.
  state.down = false;
  clock.now += 4 * MIN;
  await waitFor(() => s.stats().queued === 0, 'the held uploads to go up');
  t.deepEqual([...state.stored].sort(), [...young].sort());
  for (const p of [...first, ...old]) t.false(state.stored.includes(p), `${p} was dropped`);
  t.false(remote.coolingDown());

  // A second outage is said again, once.
  state.down = true;
  const again = await pair(s, 'second outage');
  await waitFor(() => remote.coolingDown(), 'the next failure to cool the remote down');
  clock.now += HELD_MS;
  await waitFor(() => s.stats().queued === 0, "the second outage's held uploads to be dropped");
  t.like(s.stats(), { upload_expired: 6, upload_dropped: 6 });
  t.is(dropLines().length, 2, 'one line an outage');
  for (const p of again) t.false(state.stored.includes(p));
});

test('over the queue limits while the remote is off, the oldest held uploads make room (counted, said once), by count and by bytes', async (t) => {
  // By count: five uploads at most.
  {
    const { s, remote, state, clock, dropLines } = await outage(t, { queueLimit: 5 });
    const first = Buffer.from('first');
    await s.putBlob(first); // tried and failed: it waits to try again (started: not dropped for room)
    await waitFor(() => remote.coolingDown(), 'the failed upload to cool the remote down');
    const [a, b, c] = [await pair(s, 'a'), await pair(s, 'b'), await pair(s, 'c')];
    t.like(s.stats(), { queued: 5, upload_dropped: 2, upload_expired: 0 }, "'a' made room for 'c'");
    t.is(dropLines().length, 1);
    state.down = false;
    clock.now += 2 * MIN; // past the cool-down, not past uploadMaxHeldMs
    await waitFor(() => s.stats().queued === 0, 'the held uploads to go up');
    for (const p of [`/cas/${digestHex(first)}`, ...b, ...c]) t.true(state.stored.includes(p), `${p} went up`);
    for (const p of a) t.false(state.stored.includes(p), `${p} (the oldest held) was dropped`);
    t.like(s.stats(), { upload_dropped: 2, upload_orphans: 0 });
  }
  // By bytes: 100 bytes of payload at most; each offer here carries 40.
  {
    const { s, remote, state, clock } = await outage(t, { queueBytes: 100 });
    await s.putBlob(Buffer.alloc(10, 1));
    await waitFor(() => remote.coolingDown(), 'the failed upload to cool the remote down');
    const blobs = [2, 3, 4].map((i) => Buffer.alloc(40, i));
    for (const b of blobs) await s.putBlob(b);
    t.like(s.stats(), { queued: 3, queued_bytes: 90, upload_dropped: 1 }, 'the first 40 made room for the third');
    state.down = false;
    clock.now += 2 * MIN;
    await waitFor(() => s.stats().queued === 0, 'the held uploads to go up');
    t.false(state.stored.includes(`/cas/${digestHex(blobs[0])}`));
    t.true(state.stored.includes(`/cas/${digestHex(blobs[1])}`));
    t.true(state.stored.includes(`/cas/${digestHex(blobs[2])}`));
  }
});

test('uploads still held when the stop drain ends are counted as dropped, and the close resolves', async (t) => {
  const { s, remote, state } = await outage(t, { drainMs: 300 });
  await pair(s, 'first');
  await waitFor(() => remote.coolingDown(), 'the failed upload to cool the remote down');
  await pair(s, 'second');
  await pair(s, 'third');
  const queued = Number(s.stats().queued);
  t.true(queued >= 4, JSON.stringify(s.stats()));
  await s.close(); // the server stays down for the whole drain
  t.deepEqual(state.stored, []);
  t.like(s.stats(), { upload_dropped: queued, upload_expired: 0 });
});
