import net from 'node:net';
import readline from 'node:readline';
import { MdnsDiscovery, PeerTable } from '../../discovery/index.js';

// One "machine" of the discovery tests, run inside a network namespace: a TCP listener (so a
// peer that connects is answered), mDNS announce and browse, and on stdin the commands
// `round`, `close` (goodbye, then exit). Every change of its peer table goes to stdout as one
// JSON line {at, event, id, why?, view}; `at` is ms since this process started.
// argv: instance name, round period ms (the daemon uses 30-45 s; tests shorten it).

const [instance, roundArg] = process.argv.slice(2);
const t0 = Date.now();
const out = (o: Record<string, unknown>) => process.stdout.write(JSON.stringify({ at: Date.now() - t0, ...o }) + '\n');
const server = net.createServer((s) => s.end());
server.listen(0, '0.0.0.0', () => {
  const port = (server.address() as net.AddressInfo).port;
  const table: PeerTable = new PeerTable(Date.now, {
    up: (p) => out({ event: 'up', id: p.ad.id, view: table.view() }),
    gone: (p, why) => out({ event: 'gone', id: p.ad.id, why, view: table.view() }),
  });
  const log = { debug: () => {}, info: () => {}, warn: (m: string, f?: Record<string, unknown>) => out({ event: 'warn', msg: m, ...f }) };
  const round = Number(roundArg) || 30_000;
  const d = new MdnsDiscovery({ table, instance, port, fingerprint: 'fp-' + instance, log, roundMs: [round, round], answerWindowMs: 1500 });
  d.start();
  out({ event: 'started', port });
  readline.createInterface({ input: process.stdin }).on('line', (l) => {
    if (l === 'round') d.round();
    if (l === 'close') void d.close().then(() => server.close(() => process.exit(0)));
  });
});
