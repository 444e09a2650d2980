import path from 'node:path';
import { digestHex } from '../daemon/hash.js';
import { memoryLogger } from '../daemon/log.js';
import { LocalStore } from '../daemon/store/local.js';
import { emptyRemoteCounters } from '../daemon/tiers/counters.js';
import type { PeerTier } from '../daemon/tiers/peers.js';
import { RaceTier } from '../daemon/tiers/race.js';
import { TieredStore } from '../daemon/tiers/tiered.js';
import type { RemoteTier } from '../daemon/tiers/types.js';
import { tmpDir } from './helpers/remote.js';
import { waitFor } from './helpers/wait.js';
import test from './helpers/test.js';

// LAN peers raced with a remote (daemon/tiers/race.ts) and asked alone while the remote is
// overdue (RemoteTier.nearby, daemon/tiers/remote-reads.ts), over tiers that answer, hang or
// say no as each test tells them.

/** A tier whose answers the test decides: `entry`/`blob` per key; a pending promise hangs. */
function fakeTier(o: { entry?: (k: string) => Promise<Buffer | undefined>; blob?: (d: string) => Promise<Buffer | undefined>; nearby?: RemoteTier }) {
  const rejected: string[] = [];
  const blobsAsked: string[] = [];
  const tier: RemoteTier = {
    name: 'fake',
    url: 'fake',
    getEntry: (k) => o.entry?.(k) ?? Promise.resolve(undefined),
    getBlob: (d) => {
      blobsAsked.push(d);
      return o.blob?.(d) ?? Promise.resolve(undefined);
    },
    getBlobStream: () => Promise.resolve(undefined),
    hasBlob: () => Promise.resolve(false),
    putBlob: () => Promise.reject(new Error('read-only')),
    putEntry: () => Promise.reject(new Error('read-only')),
    putBlobStream: () => Promise.reject(new Error('read-only')),
    counters: emptyRemoteCounters,
    coolingDown: () => false,
    health: () => ({}),
    rejected: (k) => void rejected.push(k),
    probed: () => Promise.resolve(),
    check: () => Promise.resolve(),
    nearby: () => o.nearby,
    close: () => Promise.resolve(),
  };
  return { tier, rejected, blobsAsked };
}

/** A promise the test settles later. */
function held<T>(): { p: Promise<T>; settle: (v: T) => void } {
  let settle!: (v: T) => void;
  const p = new Promise<T>((r) => (settle = r));
  return { p, settle };
}

const never = () => new Promise<undefined>(() => {});

test('a refused answer blames the tier that gave it: the peers when theirs won the race, the remote when its did', async (t) => {
  const slowRemote = held<Buffer | undefined>();
  const peers = fakeTier({ entry: async (k) => (k === 'a'.repeat(64) ? Buffer.from('from a peer') : undefined) });
  const remote = fakeTier({ entry: (k) => (k === 'a'.repeat(64) ? slowRemote.p : Promise.resolve(Buffer.from('from the remote'))) });
  const race = new RaceTier(peers.tier as unknown as PeerTier, remote.tier);
  t.teardown(() => race.close());

  t.deepEqual(await race.getEntry('a'.repeat(64)), Buffer.from('from a peer'));
  slowRemote.settle(Buffer.from('late, from the remote'));
  race.rejected('a'.repeat(64), new Error('a bundle part fails its digest'));
  t.deepEqual(peers.rejected, ['a'.repeat(64)], 'the peer that answered is blamed');
  t.deepEqual(remote.rejected, [], 'not the remote, whose answer lost');

  t.deepEqual(await race.getEntry('b'.repeat(64)), Buffer.from('from the remote'));
  race.rejected('b'.repeat(64), new Error('a bundle part fails its digest'));
  t.deepEqual(remote.rejected, ['b'.repeat(64)]);
  t.deepEqual(peers.rejected, ['a'.repeat(64)]);
});

test('while the remote is overdue, a blob is asked of the peers alone, waited for no longer than waitMs, and a lookup once the remote answers again asks the remote instead of sharing that request', async (t) => {
  const local = new LocalStore({ root: path.join(tmpDir(t), 'l2'), log: memoryLogger().child('store') });
  await local.open();
  t.teardown(() => local.close());
  const blob = Buffer.from('an object the remote has');
  const d = digestHex(blob);
  const first = held<Buffer | undefined>();
  const peers = fakeTier({ blob: never }); // peers that never answer this one
  const remote = fakeTier({ blob: (x) => (x === d ? Promise.resolve(blob) : first.p), nearby: peers.tier });
  const tiered = new TieredStore({ local, remote: remote.tier, log: memoryLogger().child('remote'), waitMs: 50, readOnly: true });
  t.teardown(() => tiered.close());

  // A lookup the remote does not answer in time: it is overdue from now on.
  t.is(await tiered.getBlob('1'.repeat(64)), undefined);
  // Meanwhile: the peers alone are asked, and their silence is waited out like the remote's.
  const guard = new Promise<string>((r) => setTimeout(() => r('still waiting'), 20_000).unref());
  t.is(await Promise.race([tiered.getBlob(d), guard]), undefined, 'a lookup that asks only the peers is bounded too');
  t.deepEqual(peers.blobsAsked, [d]);
  t.deepEqual(remote.blobsAsked, ['1'.repeat(64)], 'the overdue remote is not asked for more');

  // The remote answers its overdue request; the peers' request for d still hangs.
  first.settle(undefined);
  await waitFor(async () => (await tiered.getBlob(d)) !== undefined, 'a lookup of d that asks the remote');
  t.true(remote.blobsAsked.includes(d), 'asked of the remote, not joined to the peers-only request');
});
