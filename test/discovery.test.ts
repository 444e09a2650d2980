import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import type { ExecutionContext } from 'ava';
import test from './helpers/test.js';
import { ROOT } from './helpers/instance.js';
import { bridgeLab, type Machine } from './helpers/netns.js';
import { waitFor } from './helpers/wait.js';
import { COOL_MS, Liveness, PeerTable } from '../discovery/index.js';

// Discovery for real: processes in network namespaces on one bridge announce and browse
// `_vrift._tcp` over mDNS multicast (test/helpers/discovery-node.ts), and the liveness rules
// with an injected clock.

const NODE = path.join(ROOT, 'dist', 'test', 'helpers', 'discovery-node.js');

interface Line {
  at: number;
  event: string;
  id?: string;
  why?: string;
  port?: number;
  view?: { id: string; state: string; addresses: string[]; port: number; fingerprint: string }[];
}
interface Node {
  name: string;
  child: ChildProcess;
  lines: Line[];
  send(cmd: string): void;
}

function startNode(t: ExecutionContext, m: Machine, name: string, roundMs: number): Node {
  const child = spawn('ip', ['netns', 'exec', m.ns, process.execPath, NODE, name, String(roundMs)], { stdio: ['pipe', 'pipe', 'pipe'] });
  const lines: Line[] = [];
  readline.createInterface({ input: child.stdout! }).on('line', (l) => lines.push(JSON.parse(l) as Line));
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  child.on('exit', (code, sig) => void (code || sig ? t.log(`${name} exited ${code ?? sig}: ${err}`) : undefined));
  t.teardown(() => void child.kill('SIGKILL'));
  return { name, child, lines, send: (c) => child.stdin!.write(c + '\n') };
}

const stateOf = (n: Node, id: string) =>
  n.lines
    .filter((l) => l.view)
    .at(-1)
    ?.view?.find((p) => p.id === id)?.state;
const when = (n: Node, ev: string, id: string) => n.lines.find((l) => l.event === ev && l.id === id);

test('three machines on a bridge find each other over mDNS; a goodbye is forgotten at once; a SIGKILLed peer goes at the next re-query', async (t) => {
  t.timeout(120_000);
  const lab = bridgeLab(t, 3);
  const [a, b, c] = ['peer-a', 'peer-b', 'peer-c'].map((n, i) => startNode(t, lab.machines[i], n, 4000));
  await waitFor(() => [a, b, c].every((n) => n.lines.some((l) => l.event === 'started')), 'all three listening', { ms: 30_000 });
  // Each finds both others (the others' announcements, or the answers to its own first query).
  for (const [n, others] of [
    [a, [b, c]],
    [b, [a, c]],
    [c, [a, b]],
  ] as const) {
    for (const o of others) {
      await waitFor(() => stateOf(n, o.name) === 'up', `${n.name} finds ${o.name}`, { ms: 20_000 });
      const started = n.lines.find((l) => l.event === 'started')!.at;
      t.log(`${n.name} found ${o.name} ${when(n, 'up', o.name)!.at - started} ms after it started`);
    }
  }
  const seenA = b.lines
    .filter((l) => l.view)
    .at(-1)!
    .view!.find((p) => p.id === 'peer-a')!;
  t.deepEqual(seenA.addresses, [lab.machines[0].ip], 'the address A has on the bridge (and nothing else)');
  t.is(seenA.port, a.lines.find((l) => l.event === 'started')!.port!);
  t.is(seenA.fingerprint, 'fp-peer-a', 'the TXT record carries the key fingerprint');

  // A stops cleanly: its goodbye drops it on B and C.
  const closeAt = Date.now();
  a.send('close');
  await waitFor(() => stateOf(b, 'peer-a') === 'gone' && stateOf(c, 'peer-a') === 'gone', 'B and C forget A after its goodbye', { ms: 10_000 });
  t.log(`A forgotten ${Date.now() - closeAt} ms after it was told to close`);
  t.regex(when(b, 'gone', 'peer-a')!.why!, /goodbye/);

  // C is killed: no goodbye, so only the next re-query round drops it (rounds of 4 s here, 30-45 s in the daemon).
  c.child.kill('SIGKILL');
  await waitFor(() => stateOf(b, 'peer-c') === 'gone', 'B drops the killed C at a re-query', { ms: 30_000 });
  t.regex(when(b, 'gone', 'peer-c')!.why!, /re-query/);

  // A newcomer is found by B, and B still knows nothing it should not.
  const d = startNode(t, lab.machines[0], 'peer-d', 4000);
  await waitFor(() => stateOf(b, 'peer-d') === 'up', 'B finds the newcomer D', { ms: 20_000 });
  t.is(stateOf(d, 'peer-a'), undefined, 'D never hears of A, which left before it started');
});

test('liveness: refused drops at once; 3 timeouts in a row cool down 30 s, then one probe, a failed probe doubles the period', (t) => {
  let now = 1000;
  const l = new Liveness(() => now);
  l.timedOut('x');
  l.timedOut('x');
  t.is(l.state, 'up', 'two timeouts are a slow moment');
  l.answered();
  l.timedOut('x');
  l.timedOut('x');
  t.is(l.state, 'up', 'an answer resets the streak');
  l.timedOut('x');
  t.is(l.state, 'cooling');
  t.false(l.mayAsk());
  now += COOL_MS - 1;
  t.false(l.mayAsk());
  now += 1;
  t.true(l.mayAsk(), 'the probe');
  t.false(l.mayAsk(), 'only one probe at a time');
  l.timedOut('probe');
  now += COOL_MS;
  t.false(l.mayAsk(), 'a failed probe: the next period is twice as long');
  now += COOL_MS;
  t.true(l.mayAsk());
  l.answered();
  t.is(l.state, 'up');
  t.true(l.mayAsk());

  const table = new PeerTable(() => now);
  const p = table.upsert({ id: 'x', addresses: ['10.0.0.1'], port: 1, fingerprint: '', source: 'static' });
  table.refused(p, 'ECONNREFUSED');
  t.deepEqual(table.candidates(), [], 'refused: not asked again');
  table.upsert({ id: 'x', addresses: ['10.0.0.1'], port: 1, fingerprint: '', source: 'static' });
  t.is(table.candidates().length, 1, 'seen again (the next round): asked again');
  table.lied(table.get('x')!, 'wrong bytes');
  t.deepEqual(table.candidates(), [], 'a peer that lied cools down at once');
  t.is(table.view()[0].errors, 2);
});
