import http from 'node:http';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import test from './helpers/test.js';
import { tmpDir } from './helpers/remote.js';
import { memoryLogger } from '../daemon/log.js';
import { keyAuth } from '../daemon/peers/auth.js';
import { startPeerServer } from '../daemon/peers/server.js';
import { LocalStore } from '../daemon/store/local.js';
import { generateSigningKey } from '../trust/keys.js';
import { AUTH_HEADER, signRequest } from '../trust/request-auth.js';

// A daemon's peer server (daemon/peers/server.ts) over a real local store on loopback: what a
// member, and anyone else, gets back.

const alice = generateSigningKey('alice').key;
const carol = generateSigningKey('carol').key; // nobody here trusts carol
const KEY = 'ab'.repeat(32);
const ABSENT = '0'.repeat(64);

async function peerServer(t: ExecutionContext, now: () => number = Date.now, windowMs?: number) {
  const local = new LocalStore({ root: path.join(tmpDir(t), 'l2'), log: memoryLogger().child('store') });
  await local.open();
  await local.putEntry(KEY, Buffer.from('an entry'));
  const server = await startPeerServer({
    local,
    pending: () => undefined,
    tmpDir: tmpDir(t),
    port: 0,
    auth: keyAuth(alice, [alice], now, windowMs),
    log: memoryLogger().child('peers'),
  });
  t.teardown(async () => {
    await server.close();
    await local.close();
  });
  return server.port;
}

interface Answer {
  status: number;
  body: string;
  headers: http.IncomingHttpHeaders;
  localPort: number;
}

function ask(port: number, method: string, target: string, headers: http.OutgoingHttpHeaders = {}, agent: http.Agent | false = false): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: target, headers, agent }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers, localPort: res.socket?.localPort ?? 0 }));
    });
    req.on('error', reject);
    req.end();
  });
}

const REQUESTS: [string, string][] = [
  ['GET', `/ac/${KEY}`], // there
  ['GET', `/ac/${ABSENT}`], // not there
  ['HEAD', `/ac/${KEY}`],
  ['GET', '/ac/not-a-hash'], // a bad path
  ['GET', '/../etc/passwd'],
  ['POST', `/ac/${KEY}`], // a method the server has no use for
  ['DELETE', '/'],
  ['PUT', `/ac/${KEY}`], // a write
  ['GET', '/'],
  ['GET', '/status'],
  ['GET', '/metrics'],
];

test('anyone but a member gets the same bare 401 for every path and method; a member gets 200/404, 400, 405, 403', async (t) => {
  const port = await peerServer(t);
  const unknownKey = (m: string, p: string) => signRequest(carol, m, p, Date.now());
  const badSignature = () => ({ [AUTH_HEADER]: `1 alice ${Date.now()} ${'A'.repeat(86)}==` });
  const outsiders: [string, (m: string, p: string) => http.OutgoingHttpHeaders][] = [
    ['unsigned', () => ({})],
    ['signed by an untrusted key', unknownKey],
    ['a forged signature under a trusted name', badSignature],
  ];
  const seen = new Set<string>();
  for (const [who, headers] of outsiders)
    for (const [m, p] of REQUESTS) {
      const r = await ask(port, m, p, headers(m, p));
      t.is(r.status, 401, `${who}: ${m} ${p}`);
      const { date: _date, connection: _connection, 'keep-alive': _keepAlive, ...rest } = r.headers;
      seen.add(JSON.stringify([m === 'HEAD' ? 'authentication required\n' : r.body, rest]));
    }
  t.is(seen.size, 1, `one answer for all of them: ${[...seen].join('\n')}`);

  const member = async (m: string, p: string) => (await ask(port, m, p, signRequest(alice, m, p, Date.now()))).status;
  t.is(await member('GET', `/ac/${KEY}`), 200);
  t.is(await member('GET', `/ac/${ABSENT}`), 404);
  t.is(await member('GET', '/ac/not-a-hash'), 400);
  t.is(await member('POST', `/ac/${KEY}`), 405);
  t.is(await member('PUT', `/ac/${KEY}`), 403);
  t.is(await member('GET', '/status'), 200);
});

test("a member's kept-alive connection is verified once per window; any other connection or key name is checked in full", async (t) => {
  let now = Date.now();
  const windowMs = 60_000;
  const port = await peerServer(t, () => now, windowMs);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  const target = `/ac/${KEY}`;
  // Passes only where the connection was verified already: the signature is not one.
  const unverifiable = (name: string) => ({ [AUTH_HEADER]: `1 ${name} ${now} ${'A'.repeat(86)}==` });

  const first = await ask(port, 'GET', target, signRequest(alice, 'GET', target, now), agent);
  t.is(first.status, 200);
  const again = await ask(port, 'GET', target, unverifiable('alice'), agent);
  t.is(again.localPort, first.localPort, 'the same connection');
  t.is(again.status, 200, 'not verified again on the connection that proved itself');
  t.is((await ask(port, 'GET', target, unverifiable('alice'))).status, 401, 'another connection is checked in full');
  t.is((await ask(port, 'GET', target, unverifiable('carol'), agent)).status, 401, 'another key name on it too');

  // The connection is remembered for the window, then checked again.
  now += windowMs + 1;
  const late = await ask(port, 'GET', target, unverifiable('alice'), agent);
  t.is(late.status, 401);
  const resigned = await ask(port, 'GET', target, signRequest(alice, 'GET', target, now));
  t.is(resigned.status, 200, 'a fresh signature passes');
});
