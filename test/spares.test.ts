import test from './helpers/test.js';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { OutputSpares } from '../daemon/frontends/materialize.js';
import { waitFor } from './helpers/wait.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// fs.promises.open, watched: how many creates are in flight at once, each held `delayMs`.
function watchOpens(t: { teardown(f: () => void): void }, delayMs: number): { max: number; total: number } {
  const real = fs.promises.open;
  const seen = { max: 0, total: 0 };
  let now = 0;
  (fs.promises as { open: typeof real }).open = (async (...a: Parameters<typeof real>) => {
    now++;
    seen.total++;
    seen.max = Math.max(seen.max, now);
    try {
      await sleep(delayMs);
      return await real(...a);
    } finally {
      now--;
    }
  }) as typeof real;
  t.teardown(() => {
    (fs.promises as { open: typeof real }).open = real;
  });
  return seen;
}

function pool(t: { teardown(f: () => void): void }, want: number, o: { now?: () => number; looked?: () => void } = {}): { spares: OutputSpares; dir: string } {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'vrift-spares-'));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  fs.mkdirSync(path.join(root, 'trash'));
  const dir = path.join(root, 'spares');
  const spares = new OutputSpares(dir, { want, idleMs: 30, ...o });
  t.teardown(() => spares.close());
  spares.open(path.join(root, 'trash'));
  return { spares, dir };
}

test.serial('the pool is made one file at a time (creates in one directory spin on its lock when several go at once)', async (t) => {
  const seen = watchOpens(t, 2);
  const { spares, dir } = pool(t, 40);
  await spares.settleWithin(30_000);
  t.is(spares.size, 40);
  t.is(fs.readdirSync(dir).length, 40);
  t.is(seen.total, 40);
  t.is(seen.max, 1, 'never two creates at once');
  for (const n of fs.readdirSync(dir)) {
    const st = fs.statSync(path.join(dir, n));
    t.is(st.size, 0);
    t.is(st.mode & 0o777, 0o600);
  }
});

test.serial('a fill forced by `vrift stats` stops when a lookup comes (a build started), and resumes at the next pause', async (t) => {
  const seen = watchOpens(t, 5);
  // The pool's clock is the test's; its timer still fires in real time, and tells the test each
  // time it has looked: `fired()` waits for a look taken at the clock as the test set it.
  const c = { t: 1_700_000_000_000, looks: 0 };
  const fired = async () => {
    const n = c.looks;
    await waitFor(() => c.looks > n, "the pool's timer to fire and look");
  };
  const { spares, dir } = pool(t, 400, { now: () => c.t, looked: () => c.looks++ });
  const settled = spares.settleWithin(30_000);
  await waitFor(() => spares.size >= 5, 'the fill to start', { everyMs: 1 }); // an event, not a sleep a loaded scheduler stretches
  spares.touch(); // a lookup
  await settled;
  const stopped = spares.size;
  t.true(stopped > 0 && stopped < 400, `made ${stopped} before the lookup stopped the fill`);
  // Lookups keep coming, never 30 ms apart on the pool's clock, while its timer fires: nothing is made.
  for (let i = 0; i < 3; i++) {
    spares.touch();
    c.t += 29;
    await fired();
  }
  t.is(spares.size, stopped);
  t.is(seen.total, stopped);
  // The pause: the pool fills up.
  c.t += 1;
  await waitFor(() => spares.size >= 400, 'the pool filled at the pause', { everyMs: 20 });
  t.is(spares.size, 400);
  t.is(fs.readdirSync(dir).length, 400);
});
