import test from './helpers/test.js';
import { memoryLogger } from '../daemon/log.js';
import { type Stoppable, stopOnSignals } from '../daemon/serve/stop-on-signals.js';
import { waitFor } from './helpers/wait.js';

// How `vrift serve` stops (daemon/serve/stop-on-signals.ts), with a server whose close() the
// test holds: the real process's signals are in remote-serve.test.ts.

function held(drainMs: number): Stoppable & { closes: number; finish: () => void } {
  let finish!: () => void;
  const closed = new Promise<void>((r) => (finish = r));
  const s = {
    drainMs,
    closes: 0,
    finish: () => finish(),
    close: () => {
      s.closes++;
      return closed;
    },
    pending: () => ({ requests: 1, under_way: ['PUT /cas/abc'], closing: 'requests under way' }),
  };
  return s;
}

function logged(lines: string[], msg: string): Record<string, unknown>[] {
  return lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === msg);
}

test("a stop still draining marginMs past close()'s deadline is cut: exit 1, the log saying what was under way", async (t) => {
  const lines: string[] = [];
  const server = held(20);
  const exits: number[] = [];
  const stop = stopOnSignals({ server, log: memoryLogger(lines).child('serve'), exit: (c) => exits.push(c), marginMs: 30 });
  stop('SIGTERM');
  stop('SIGTERM'); // the same stop passed on by `vrift serve`: ignored
  await waitFor(() => exits.length > 0, 'the stop to be cut at its deadline');
  t.deepEqual(exits, [1]);
  t.is(server.closes, 1);
  t.is(logged(lines, 'signal ignored: already stopping').length, 1);
  t.like(logged(lines, 'drain cut short: exiting before it finished')[0], {
    why: 'still draining 50 ms after the stop',
    requests: 1,
    under_way: ['PUT /cas/abc'],
    closing: 'requests under way',
  });
});

test('a third signal cuts the drain at once; one that ends in time exits 0 and its deadline goes with it', async (t) => {
  const lines: string[] = [];
  const server = held(60_000);
  const exits: number[] = [];
  const stop = stopOnSignals({ server, log: memoryLogger(lines).child('serve'), exit: (c) => exits.push(c), marginMs: 5_000 });
  stop(); // `vrift serve` is gone
  stop('SIGTERM');
  stop('SIGTERM');
  t.deepEqual(exits, [], 'two signals: still draining');
  stop('SIGINT');
  t.deepEqual(exits, [1]);
  t.is(logged(lines, 'drain cut short: exiting before it finished')[0]?.why, 'SIGINT: a third signal while stopping');

  const fine = held(60_000);
  const codes: number[] = [];
  const stopFine = stopOnSignals({ server: fine, log: memoryLogger().child('serve'), exit: (c) => codes.push(c), marginMs: 0 });
  stopFine('SIGTERM');
  fine.finish();
  await Promise.resolve();
  await Promise.resolve();
  t.deepEqual(codes, [0]);
});
