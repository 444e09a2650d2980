// The time one lookup costs against one LAN peer, apart from any build: N lookups one after
// another (a pause between them, as a build's compiles leave) through the daemon's own peer
// tier, and the same N as bare signed GETs on one keep-alive connection (the floor: the wire
// and the peer's server).
//
//   node dist/bench/peer-latency.js --url http://HOST:PORT --key SECRET_KEY_FILE
//        [--n 300] [--gap-ms 5] [--present FILE]
//
// Keys asked are random (the peer answers "no"), or with --present the `ac/<key>` lines of FILE
// (entries it has: the tier's hit path, entry signatures checked). Prints one JSON line of
// p50/p90/p99/max in ms for each.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import { parseArgs } from 'node:util';
import { PeerTable } from '../discovery/index.js';
import { nullLogger } from '../daemon/log.js';
import { keyAuth } from '../daemon/peers/auth.js';
import { PeerTier } from '../daemon/tiers/peers.js';
import { readSigningKey } from '../trust/key-file.js';
import { signRequest } from '../trust/request-auth.js';

const { values: o } = parseArgs({
  options: {
    url: { type: 'string' },
    key: { type: 'string' },
    n: { type: 'string', default: '300' },
    'gap-ms': { type: 'string', default: '5' },
    present: { type: 'string' },
  },
});
if (!o.url || !o.key) throw new Error('--url and --key are required');
const key = readSigningKey(o.key);
const n = Number(o.n);
const gap = Number(o['gap-ms']);
const u = new URL(o.url);
const present = o.present
  ? fs
      .readFileSync(o.present, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('/ac/'))
      .map((l) => l.slice(4))
  : [];
const keyAt = (i: number) => (present.length ? present[i % present.length] : crypto.randomBytes(32).toString('hex'));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function summary(xs: number[]) {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => Number(s[Math.min(s.length - 1, Math.floor(q * s.length))].toFixed(3));
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), max: at(1) };
}

async function viaTier(): Promise<number[]> {
  const table = new PeerTable(Date.now);
  table.upsert({ id: 'peer', addresses: [u.hostname], port: Number(u.port), fingerprint: '', source: 'static' });
  const tier = new PeerTier({ table, auth: keyAuth(key, [key], Date.now), waitMs: 1000, log: nullLogger.child('peers') });
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await tier.getEntry(keyAt(i));
    out.push(performance.now() - t0);
    await sleep(gap);
  }
  await tier.close();
  return out;
}

async function bare(): Promise<number[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const p = `/ac/${keyAt(i)}`;
    const t0 = performance.now();
    await new Promise<void>((resolve, reject) => {
      const r = http.request(`${o.url}${p}`, { agent, headers: signRequest(key, 'GET', p, Date.now()) }, (res) => {
        res.resume();
        res.on('end', resolve);
      });
      r.on('error', reject);
      r.end();
    });
    out.push(performance.now() - t0);
    await sleep(gap);
  }
  agent.destroy();
  return out;
}

const tier = await viaTier();
const raw = await bare();
process.stdout.write(`${JSON.stringify({ n, gapMs: gap, present: present.length > 0, tier: summary(tier), bare: summary(raw) })}\n`);
