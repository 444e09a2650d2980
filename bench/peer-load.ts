// Small signed GETs per second against a daemon's peer server, as a teammate's daemon sends
// them (every request signed with its key, keep-alive connections):
//
//   node dist/bench/peer-load.js --url http://127.0.0.1:PORT --key SECRET_KEY_FILE --paths FILE
//        [--seconds 3] [--concurrency 32] [--presign]
//
// FILE holds one request path per line (`/cas/<digest>`, `/ac/<key>`). Prints one JSON line:
// { perSecond, count, seconds, concurrency, statuses, clientCpu } (clientCpu: this process's
// CPU seconds per second; near 1, the client is what limits the rate).
import fs from 'node:fs';
import http from 'node:http';
import { parseArgs } from 'node:util';
import { readSigningKey } from '../trust/key-file.js';
import { signRequest } from '../trust/request-auth.js';

const { values: o } = parseArgs({
  options: {
    url: { type: 'string' },
    key: { type: 'string' },
    paths: { type: 'string' },
    seconds: { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '32' },
    // Each path's request signed once, at the start, instead of per request: the server's
    // work is the same (it verifies a connection once per window), the client's much less.
    presign: { type: 'boolean', default: false },
  },
});
if (!o.url || !o.key || !o.paths) throw new Error('--url, --key and --paths are required');
const key = readSigningKey(o.key);
const paths = fs.readFileSync(o.paths, 'utf8').split('\n').filter(Boolean);
if (paths.length === 0) throw new Error(`${o.paths}: no paths`);
const concurrency = Number(o.concurrency);
const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
const statuses: Record<string, number> = {};
const signed = new Map(o.presign ? paths.map((p) => [p, signRequest(key, 'GET', p, Date.now())]) : []);

const get = (p: string) =>
  new Promise<void>((resolve, reject) => {
    const r = http.request(`${o.url}${p}`, { agent, headers: signed.get(p) ?? signRequest(key, 'GET', p, Date.now()) }, (res) => {
      statuses[res.statusCode!] = (statuses[res.statusCode!] ?? 0) + 1;
      res.resume();
      res.on('end', resolve);
      res.on('error', reject);
    });
    r.on('error', reject);
    r.end();
  });

let n = 0;
const cpu0 = process.cpuUsage();
const t0 = performance.now();
const until = t0 + Number(o.seconds) * 1000;
await Promise.all(
  Array.from({ length: concurrency }, async () => {
    while (performance.now() < until) await get(paths[n++ % paths.length]);
  }),
);
const seconds = (performance.now() - t0) / 1000;
agent.destroy();
const cpu = process.cpuUsage(cpu0);
// The client's own CPU share: near 1 means it, not the server, may be what limits the rate.
const clientCpu = +((cpu.user + cpu.system) / 1e6 / seconds).toFixed(2);
process.stdout.write(`${JSON.stringify({ perSecond: Math.round(n / seconds), count: n, seconds, concurrency, statuses, clientCpu })}\n`);
