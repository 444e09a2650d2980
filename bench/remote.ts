// Loopback throughput of `vrift serve` (not part of bench/run.ts):
//   node dist/bench/remote.js [--seconds 3] [--concurrency 32]
// Starts a server on a temp store, then measures small-object HEAD/GET per second and
// MB/s for a 64 MB blob (PUT, GET plain, GET zstd, and through the daemon's HttpTier).
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { digestHex } from '../daemon/hash.js';
import { memoryLogger } from '../daemon/log.js';
import { HttpTier } from '../daemon/tiers/http.js';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const SECONDS = arg('seconds', 3);
const CONC = arg('concurrency', 32);
const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'shim', 'cli.js');

const agent = new http.Agent({ keepAlive: true, maxSockets: CONC });

function req(url: string, method: string, body?: Buffer, headers: http.OutgoingHttpHeaders = {}): Promise<{ status: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    const r = http.request(url, { method, agent, headers: body ? { ...headers, 'content-length': body.length } : headers }, (res) => {
      let bytes = 0;
      res.on('data', (d: Buffer) => void (bytes += d.length));
      res.on('end', () => resolve({ status: res.statusCode!, bytes }));
      res.on('error', reject);
    });
    r.on('error', reject);
    r.end(body);
  });
}

async function rate(label: string, op: (i: number) => Promise<unknown>): Promise<void> {
  let n = 0;
  const until = performance.now() + SECONDS * 1000;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CONC }, async () => {
    while (performance.now() < until) await op(n++);
  }));
  const s = (performance.now() - t0) / 1000;
  console.log(`${label.padEnd(40)} ${Math.round(n / s).toString().padStart(8)} req/s  (${n} in ${s.toFixed(1)} s, ${CONC} concurrent)`);
}

async function mbps(label: string, bytes: number, op: () => Promise<unknown>, rounds = 3): Promise<void> {
  const times: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const t0 = performance.now();
    await op();
    times.push(performance.now() - t0);
  }
  const best = Math.min(...times) / 1000;
  console.log(`${label.padEnd(40)} ${Math.round(bytes / 2 ** 20 / best).toString().padStart(8)} MB/s  (best of ${rounds}: ${(best * 1000).toFixed(0)} ms)`);
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vrift-bench-remote-'));
const server = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--store', path.join(dir, 'store'), '--access-log', 'off'], { stdio: ['ignore', 'ignore', 'pipe'] });
try {
  const url = await new Promise<string>((resolve, reject) => {
    let err = '';
    server.stderr!.on('data', (d) => {
      err += d;
      const m = /listening on (\S+),/.exec(err);
      if (m) resolve(m[1]);
    });
    server.on('exit', (c) => reject(new Error(`vrift serve exited ${c}: ${err}`)));
  });
  console.log(`vrift serve at ${url}, ${os.cpus().length} CPUs, node ${process.version}`);
  const small = Array.from({ length: 1000 }, (_, i) => crypto.randomBytes(512 + (i % 7) * 300));
  const keys = small.map((b) => digestHex(b));
  await Promise.all(small.map((b, i) => req(`${url}/cas/${keys[i]}`, 'PUT', b)));
  await rate('HEAD small object (hit)', (i) => req(`${url}/cas/${keys[i % keys.length]}`, 'HEAD'));
  await rate('GET small object (hit, ~1.5 KB)', (i) => req(`${url}/cas/${keys[i % keys.length]}`, 'GET'));
  await rate('GET miss (404)', (i) => req(`${url}/ac/${crypto.createHash('sha256').update(String(i)).digest('hex')}`, 'GET'));
  await rate('PUT small object', (i) => req(`${url}/cas/${keys[i % keys.length]}`, 'PUT', small[i % small.length]));

  const big = crypto.randomBytes(64 * 2 ** 20);
  const bigKey = digestHex(big);
  await mbps('PUT 64 MB (verified, to disk)', big.length, () => req(`${url}/cas/${bigKey}`, 'PUT', big));
  await mbps('GET 64 MB (plain)', big.length, () => req(`${url}/cas/${bigKey}`, 'GET'));
  await mbps('GET 64 MB (zstd, random data)', big.length, () => req(`${url}/cas/${bigKey}`, 'GET', undefined, { 'accept-encoding': 'zstd' }));
  const tier = new HttpTier(url, { log: memoryLogger().child('bench'), timeoutMs: 30_000 });
  await mbps('HttpTier.getBlob 64 MB (+BLAKE3 verify)', big.length, async () => {
    if (!(await tier.getBlob(bigKey))) throw new Error('getBlob failed');
  });
  await tier.close();
} finally {
  server.kill('SIGTERM');
  agent.destroy();
  await new Promise((r) => server.once('exit', r));
  fs.rmSync(dir, { recursive: true, force: true });
}
