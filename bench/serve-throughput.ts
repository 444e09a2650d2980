import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { digestHex } from '../daemon/hash.js';
import { memoryLogger } from '../daemon/log.js';
import { HttpTier } from '../daemon/tiers/http.js';

// Loopback throughput of `vrift serve`: small-object HEAD/GET per second, MB/s for a
// 64 MB blob, and the server's resident memory before and after streaming it. Used by
// bench/remote.ts (standalone) and by `npm run bench -- --remote`.

export interface ServeProc {
  url: string;
  proc: ChildProcess;
  stop(): Promise<void>;
}

/** `vrift serve --port 0` on a store directory; resolves once it prints its URL. */
export async function startServeProc(cli: string, store: string, extra: string[] = [], env: NodeJS.ProcessEnv = process.env): Promise<ServeProc> {
  const proc = spawn(process.execPath, [cli, 'serve', '--port', '0', '--store', store, '--access-log', 'off', ...extra], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env,
  });
  const url = await new Promise<string>((resolve, reject) => {
    let err = '';
    proc.stderr!.on('data', (d) => {
      err += d;
      const m = /listening on (\S+),/.exec(err);
      if (m) resolve(m[1]);
    });
    proc.on('exit', (c) => reject(new Error(`vrift serve exited ${c}: ${err}`)));
  });
  const stop = async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const gone = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    await gone;
  };
  return { url, proc, stop };
}

export function rssKiB(pid: number | undefined, field: 'VmRSS' | 'VmHWM' = 'VmRSS'): number | undefined {
  if (!pid) return undefined;
  try {
    const m = new RegExp(`${field}:\\s+(\\d+)\\s+kB`).exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

export interface RateResult {
  label: string;
  perSecond: number;
  count: number;
  seconds: number;
  concurrency: number;
}
export interface BandwidthResult {
  label: string;
  mbPerSecond: number;
  bestMs: number;
  rounds: number;
}
export interface ThroughputResult {
  url: string;
  rates: RateResult[];
  bandwidth: BandwidthResult[];
  /** VmRSS of the server process around the 64 MB transfers. */
  serverRssKiB: { before?: number; after?: number };
}

export async function measureServe(
  url: string,
  o: { seconds: number; concurrency: number; serverPid?: number; log?: (line: string) => void },
): Promise<ThroughputResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: o.concurrency });
  const say = o.log ?? (() => {});
  const req = (u: string, method: string, body?: Buffer, headers: http.OutgoingHttpHeaders = {}) =>
    new Promise<{ status: number; bytes: number }>((resolve, reject) => {
      const r = http.request(u, { method, agent, headers: body ? { ...headers, 'content-length': body.length } : headers }, (res) => {
        let bytes = 0;
        res.on('data', (d: Buffer) => void (bytes += d.length));
        res.on('end', () => resolve({ status: res.statusCode!, bytes }));
        res.on('error', reject);
      });
      r.on('error', reject);
      r.end(body);
    });
  const rates: RateResult[] = [];
  const bandwidth: BandwidthResult[] = [];
  // wrk (C, epoll) when installed: on two cores a Node client saturates before the server
  // does, so its numbers say more about the client. Same paths, same concurrency.
  const wrkRate = (label: string, method: string, paths: string[]): boolean => {
    const r = wrk(url, method, paths, o.concurrency, o.seconds);
    if (!r) return false;
    rates.push({ label: `${label} [wrk]`, perSecond: Math.round(r.perSecond), count: r.count, seconds: o.seconds, concurrency: o.concurrency });
    say(`${`${label} [wrk]`.padEnd(40)} ${String(Math.round(r.perSecond)).padStart(8)} req/s  (${r.count} in ${o.seconds} s, ${o.concurrency} connections)`);
    return true;
  };
  const rate = async (label: string, op: (i: number) => Promise<unknown>) => {
    let n = 0;
    const until = performance.now() + o.seconds * 1000;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: o.concurrency }, async () => {
        while (performance.now() < until) await op(n++);
      }),
    );
    const s = (performance.now() - t0) / 1000;
    const r = { label, perSecond: Math.round(n / s), count: n, seconds: s, concurrency: o.concurrency };
    rates.push(r);
    say(`${label.padEnd(40)} ${String(r.perSecond).padStart(8)} req/s  (${n} in ${s.toFixed(1)} s, ${o.concurrency} concurrent)`);
  };
  const mbps = async (label: string, bytes: number, op: () => Promise<unknown>, rounds = 5) => {
    const times: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const t0 = performance.now();
      await op();
      times.push(performance.now() - t0);
    }
    const best = Math.min(...times);
    const r = { label, mbPerSecond: Math.round(bytes / 2 ** 20 / (best / 1000)), bestMs: Math.round(best), rounds };
    bandwidth.push(r);
    say(`${label.padEnd(40)} ${String(r.mbPerSecond).padStart(8)} MB/s  (best of ${rounds}: ${r.bestMs} ms)`);
  };
  try {
    const small = Array.from({ length: 1000 }, (_, i) => crypto.randomBytes(512 + (i % 7) * 300));
    const keys = small.map((b) => digestHex(b));
    await Promise.all(small.map((b, i) => req(`${url}/cas/${keys[i]}`, 'PUT', b)));
    await rate('HEAD small object (hit)', (i) => req(`${url}/cas/${keys[i % keys.length]}`, 'HEAD'));
    await rate('GET small object (hit, ~1.5 KB)', (i) => req(`${url}/cas/${keys[i % keys.length]}`, 'GET'));
    // (no HEAD with wrk: it waits for the body a HEAD answer announces and never gets)
    wrkRate(
      'GET small object (hit, ~1.5 KB)',
      'GET',
      keys.map((k) => `/cas/${k}`),
    );
    await rate('GET miss (404)', (i) => req(`${url}/ac/${crypto.createHash('sha256').update(String(i)).digest('hex')}`, 'GET'));
    await rate('PUT small object', (i) => req(`${url}/cas/${keys[i % keys.length]}`, 'PUT', small[i % small.length]));

    const before = rssKiB(o.serverPid);
    let big: Buffer | undefined = crypto.randomBytes(64 * 2 ** 20);
    const bigKey = digestHex(big);
    const size = big.length;
    // vrift's client names its digest (one hash to check); Bazel and ccache don't (both hashes).
    await mbps('PUT 64 MB (verified BLAKE3, to disk)', size, () => req(`${url}/cas/${bigKey}`, 'PUT', big, { 'x-digest-function': 'blake3' }));
    await mbps('PUT 64 MB (no digest named: BLAKE3+SHA-256)', size, () => req(`${url}/cas/${bigKey}`, 'PUT', big));
    big = undefined;
    await mbps('GET 64 MB (plain)', size, () => req(`${url}/cas/${bigKey}`, 'GET'));
    await mbps('GET 64 MB (zstd, random data)', size, () => req(`${url}/cas/${bigKey}`, 'GET', undefined, { 'accept-encoding': 'zstd' }));
    const after = rssKiB(o.serverPid);
    const tier = new HttpTier(url, { log: memoryLogger().child('bench'), timeoutMs: 30_000 });
    try {
      await mbps('HttpTier.getBlob 64 MB (+BLAKE3 verify)', size, async () => {
        if (!(await tier.getBlob(bigKey))) throw new Error('getBlob failed');
      });
      await mbps('HttpTier.getBlobStream 64 MB (+BLAKE3 verify)', size, async () => {
        const s = await tier.getBlobStream(bigKey);
        if (!s) throw new Error('getBlobStream failed');
        for await (const _ of s) void _;
      });
    } finally {
      await tier.close();
    }
    return { url, rates, bandwidth, serverRssKiB: { before, after } };
  } finally {
    agent.destroy();
  }
}

/** Requests per second from wrk cycling through `paths`; undefined when wrk is not installed or fails. */
function wrk(url: string, method: string, paths: string[], connections: number, seconds: number): { perSecond: number; count: number } | undefined {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vrift-wrk-'));
  try {
    const script = path.join(dir, 'paths.lua');
    fs.writeFileSync(
      script,
      [
        `local paths = { ${paths.map((p) => JSON.stringify(p)).join(', ')} }`,
        'local i = 0',
        `request = function() i = i + 1; return wrk.format("${method}", paths[(i % #paths) + 1]) end`,
        // wrk counts non-2xx answers apart; a rate made of 404s would be meaningless.
        'done = function(summary, latency, requests) io.write(string.format("\\nVRIFT %d %d\\n", summary.requests, summary.errors.status)) end',
        '',
      ].join('\n'),
    );
    const r = spawnSync('wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, '-s', script, url], { encoding: 'utf8', timeout: (seconds + 30) * 1000 });
    const rps = /Requests\/sec:\s+([\d.]+)/.exec(r.stdout ?? '');
    const counts = /VRIFT (\d+) (\d+)/.exec(r.stdout ?? '');
    if (r.status !== 0 || !rps || !counts || Number(counts[1]) === 0 || Number(counts[2]) > 0) return undefined;
    return { perSecond: Number(rps[1]), count: Number(counts[1]) };
  } catch {
    return undefined;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** A temp store, a server on it, the measurements, and everything removed again. */
export async function serveThroughput(cli: string, o: { seconds: number; concurrency: number; log?: (line: string) => void }): Promise<ThroughputResult> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vrift-bench-remote-'));
  const s = await startServeProc(cli, path.join(dir, 'store'));
  try {
    return await measureServe(s.url, { ...o, serverPid: s.proc.pid });
  } finally {
    await s.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
