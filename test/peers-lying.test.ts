import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import test from './helpers/test.js';
import { instance, type Instance, type Stats } from './helpers/instance.js';
import { keyFor, peerPort } from './helpers/peers.js';
import { refusingPort } from './helpers/ports.js';
import { readSigningKey } from '../trust/key-file.js';
import { signRequest } from '../trust/request-auth.js';

// A lying peer: a server on loopback that B names as its static peer, passing B's requests
// on to a real daemon A (signed with A's own key, which A trusts) and spoiling the answers.
// Each way, B's build is correct (objects equal to A's), and the lie is counted.

type PeerStats = Stats & { peers?: Record<string, number | string> };
const SOURCES: Record<string, string> = {
  'a.c': 'int a(int x) { return x * 5 + 2; }\n',
  'b.c': 'static const char s[] = "lying peer";\nconst char *b(void) { return s; }\n',
};
const UNITS = ['a', 'b'];

async function build(t: import('ava').ExecutionContext, v: Instance): Promise<void> {
  v.files(SOURCES);
  for (const u of UNITS) {
    const r = await v.cc(['-O2', '-c', `${u}.c`, '-o', `${u}.o`]);
    t.is(r.code, 0, r.err);
  }
}

type Mode = 'wrong-bytes' | 'truncated' | 'garbage-entry' | 'hang';

function liar(t: import('ava').ExecutionContext, aPort: number, aHome: string, mode: Mode): Promise<number> {
  const key = readSigningKey(path.join(aHome, 'keys', 'signing.key'));
  const held: http.ServerResponse[] = [];
  const server = http.createServer((req, res) => {
    const target = req.url ?? '/';
    if (mode === 'hang') return void held.push(res);
    http
      .get({ host: '127.0.0.1', port: aPort, path: target, headers: signRequest(key, 'GET', target, Date.now()) }, (up) => {
        const chunks: Buffer[] = [];
        up.on('data', (d) => chunks.push(d));
        up.on('end', () => {
          let body = Buffer.concat(chunks);
          if (up.statusCode !== 200) {
            res.writeHead(up.statusCode ?? 500, { 'content-length': body.length });
            return void res.end(body);
          }
          const cas = target.includes('/cas/');
          if (mode === 'wrong-bytes' && cas) body = Buffer.from(body.map((b, i) => (i === 0 ? b ^ 1 : b)));
          if (mode === 'garbage-entry' && !cas) body = crypto.randomBytes(body.length);
          if (mode === 'truncated' && cas) {
            res.writeHead(200, { 'content-length': body.length });
            res.write(body.subarray(0, body.length >> 1));
            return void res.destroy();
          }
          res.writeHead(200, { 'content-length': body.length });
          res.end(body);
        });
      })
      .on('error', () => res.destroy());
  });
  t.teardown(
    () =>
      new Promise<void>((r) => {
        for (const h of held) h.destroy();
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  return new Promise((r) => server.listen(0, '127.0.0.1', () => r((server.address() as AddressInfo).port)));
}

for (const mode of ['wrong-bytes', 'truncated', 'garbage-entry', 'hang'] as const) {
  test(`a lying peer (${mode}): B's build is correct and the lie is counted`, async (t) => {
    t.timeout(180_000);
    // A serves its store (peers on, its own peer one that refuses) on the port it bound.
    const a = instance(t, { VRIFT_PEERS: `127.0.0.1:${await refusingPort(t)}`, VRIFT_PEER_PORT: '0' });
    keyFor(a.home, 'alice');
    await build(t, a);
    await a.until((s) => s.stored >= UNITS.length, 'A stored its results');
    const pa = await peerPort(a);
    const pf = await liar(t, pa, a.home, mode);
    const b = instance(t, {
      VRIFT_PEERS: `127.0.0.1:${pf}`,
      VRIFT_PEER_WAIT: '5s',
      VRIFT_TRUSTED_KEYS: fs.readFileSync(path.join(a.home, 'keys', 'signing.pub'), 'utf8').trim(),
    });
    keyFor(b.home, 'bob');
    await build(t, b);
    for (const u of UNITS) t.deepEqual(fs.readFileSync(path.join(b.dir, `${u}.o`)), fs.readFileSync(path.join(a.dir, `${u}.o`)), `${u}.o correct`);
    const sb = (await b.stats()) as PeerStats;
    const p = sb.peers!;
    t.log(JSON.stringify(p));
    const counted = Number(p.errors) + Number(p.timeouts) + Number(p.untrusted) + Number(p.late);
    t.true(counted >= 1, 'the lie is counted (errors, timeouts, untrusted entries, or lookups that went on without it)');
    t.is(sb.misses, UNITS.length, 'every unit compiled on B');
  });
}
