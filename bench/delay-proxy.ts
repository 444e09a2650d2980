// A TCP relay that holds every chunk going one way for a fixed time before passing it on:
// a LAN-like round trip where the kernel has no netem (`tc qdisc ... netem` needs
// CONFIG_NET_SCH_NETEM). Run in its own process so its timers never wait on a bench's work.
//
//   node dist/bench/delay-proxy.js --listen HOST:PORT --to HOST:PORT [--delay-ms 1]
//
// Only the client → server direction is delayed (as netem on one veth's egress would do):
// each request's round trip grows by --delay-ms. Prints "ready" once it listens.
import net from 'node:net';
import { parseArgs } from 'node:util';

const { values: o } = parseArgs({ options: { listen: { type: 'string' }, to: { type: 'string' }, 'delay-ms': { type: 'string', default: '1' } } });
const hostPort = (s: string | undefined, what: string): [string, number] => {
  const m = /^(.+):(\d+)$/.exec(s ?? '');
  if (!m) throw new Error(`--${what} HOST:PORT, got ${JSON.stringify(s)}`);
  return [m[1], Number(m[2])];
};
const [lh, lp] = hostPort(o.listen, 'listen');
const [th, tp] = hostPort(o.to, 'to');
const delay = Number(o['delay-ms']);

const server = net.createServer((client) => {
  client.setNoDelay(true);
  const upstream = net.connect({ host: th, port: tp });
  upstream.setNoDelay(true);
  const end = () => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', end).on('close', end);
  upstream.on('error', end).on('close', end);
  // Chunks keep their order: each waits the same time from its arrival.
  client.on('data', (d: Buffer) => {
    setTimeout(() => upstream.destroyed || upstream.write(d), delay);
  });
  client.on('end', () => setTimeout(() => upstream.end(), delay));
  upstream.pipe(client);
});
server.listen(lp, lh, () => process.stdout.write('ready\n'));
for (const s of ['SIGTERM', 'SIGINT'] as const) process.on(s, () => process.exit(0));
