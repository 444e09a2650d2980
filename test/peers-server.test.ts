import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import test from './helpers/test.js';
import { fakeServer, tmpDir } from './helpers/remote.js';
import { memoryLogger } from '../daemon/log.js';
import { keyAuth } from '../daemon/peers/auth.js';
import { startPeerServer } from '../daemon/peers/server.js';
import { LocalStore } from '../daemon/store/local.js';
import { PeerTier } from '../daemon/tiers/peers.js';
import { PeerTable } from '../discovery/index.js';
import { generateSigningKey } from '../trust/keys.js';
import { AUTH_HEADER, signRequest } from '../trust/request-auth.js';

// A daemon's peer server (daemon/peers/server.ts) over a real local store on loopback, and the
// peer tier asking a peer with several addresses: what a member, and anyone else, gets back.

const alice = generateSigningKey('alice').key;
const carol = generateSigningKey('carol').key; // nobody here trusts carol
const KEY = 'ab'.repeat(32);
const ABSENT = '0'.repeat(64);

async function peerServer(
  t: ExecutionContext,
  now: () => number = Date.now,
  windowMs?: number,
  o: { host?: string; port?: number; key?: typeof alice; entry?: string } = {},
) {
  const local = new LocalStore({ root: path.join(tmpDir(t), 'l2'), log: memoryLogger().child('store') });
  await local.open();
  await local.putEntry(KEY, Buffer.from(o.entry ?? 'an entry'));
  const server = await startPeerServer({
    local,
    pending: () => undefined,
    tmpDir: tmpDir(t),
    port: o.port ?? 0,
    host: o.host,
    auth: keyAuth(o.key ?? alice, [alice], now, windowMs),
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

// A peer serving one entry on 127.0.0.1 only: its other addresses refuse connections.
async function loopbackPeer(t: ExecutionContext): Promise<{ port: number; asked: () => number }> {
  const { url, requests } = await fakeServer(t, (req, res) => {
    const hit = req.url === `/ac/${KEY}`;
    res.writeHead(hit ? 200 : 404, { 'content-length': hit ? 8 : 0 });
    res.end(hit ? 'an entry' : undefined);
  });
  return { port: Number(new URL(url).port), asked: () => requests.length };
}

function tierFor(t: ExecutionContext, addresses: string[], port: number, o: { fingerprint?: string; timeoutMs?: number } = {}) {
  const fingerprint = o.fingerprint ?? '';
  const lines: string[] = [];
  const table = new PeerTable(Date.now);
  const p = table.upsert({ id: 'several', addresses, port, fingerprint, source: fingerprint ? 'mdns' : 'static' });
  const tier = new PeerTier({
    table,
    auth: keyAuth(alice, [alice], Date.now),
    waitMs: 10_000,
    timeoutMs: o.timeoutMs,
    log: memoryLogger(lines).child('peers'),
  });
  t.teardown(() => tier.close());
  return { tier, p, lines };
}

test('a peer announcing several addresses: they are tried in order, the one that answers is kept, and only none answering drops the peer', async (t) => {
  const { port, asked } = await loopbackPeer(t);
  // 127.0.0.2 and 127.0.0.3 are loopback too, but nothing listens on them at that port.
  const { tier, p, lines } = await tierFor(t, ['127.0.0.2', '127.0.0.3', '127.0.0.1'], port);
  t.deepEqual(await tier.getEntry(KEY), Buffer.from('an entry'));
  t.is(p.live.state, 'up');
  t.is(p.errors, 0, 'an address that refused is not a failure of the peer');
  t.is(await tier.getEntry(ABSENT), undefined);
  t.is(asked(), 2);
  const chosen = lines.filter((l) => l.includes('peer address chosen'));
  t.is(chosen.length, 1, 'chosen once, then kept');
  t.regex(chosen[0], /"address":"127\.0\.0\.1"/);

  const gone = await tierFor(t, ['127.0.0.2', '127.0.0.3'], port);
  t.is(await gone.tier.getEntry(KEY), undefined);
  t.is(gone.p.live.state, 'gone', 'no address answering: dropped at once, as a refusal');
  t.regex(gone.lines.find((l) => l.includes('peer failed')) ?? '', /127\.0\.0\.2, 127\.0\.0\.3/);
});

/** A plain HTTP server on one loopback address (port 0: any free one). */
async function listenOn(t: ExecutionContext, host: string, port: number, handler: http.RequestListener): Promise<{ port: number; server: http.Server }> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  t.teardown(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  return { port: (server.address() as AddressInfo).port, server };
}

test('a peer whose announced addresses lead elsewhere too (another service, another instance with its own key) is asked only where it answers as the key it announced', async (t) => {
  const port = await peerServer(t, Date.now, undefined, { host: '127.0.0.1' });
  // What this host's docker0 or a VPN route could lead to on the same port: something else entirely, and another vrift peer.
  const other = await listenOn(t, '127.0.0.2', port, (_req, res) => {
    res.writeHead(200, { 'content-length': 17 });
    res.end("an impostor's one");
  });
  t.is(other.port, port);
  await peerServer(t, Date.now, undefined, { host: '127.0.0.3', port, key: carol, entry: "carol's entry" });
  const { tier, p, lines } = tierFor(t, ['127.0.0.2', '127.0.0.3', '127.0.0.1'], port, { fingerprint: alice.fingerprint });
  t.deepEqual(await tier.getEntry(KEY), Buffer.from('an entry'));
  t.regex(lines.find((l) => l.includes('peer address chosen')) ?? '', /"address":"127\.0\.0\.1"/);
  t.is(p.errors, 0);

  const nowhere = tierFor(t, ['127.0.0.2', '127.0.0.3'], port, { fingerprint: alice.fingerprint });
  t.is(await nowhere.tier.getEntry(KEY), undefined, 'no address answers as alice: nothing taken');
  t.is(nowhere.p.live.state, 'gone');
});

test('a peer that moves to another of its addresses: the requests cut on the old one are not counted against it', async (t) => {
  // 127.0.0.2 holds every request; 127.0.0.3 listens only later, and answers.
  const heldRes: http.ServerResponse[] = [];
  let arrived: () => void = () => {};
  const old = await listenOn(t, '127.0.0.2', 0, (_req, res) => {
    heldRes.push(res);
    arrived();
  });
  const port = old.port;
  const { tier, p } = tierFor(t, ['127.0.0.3', '127.0.0.2'], port, { timeoutMs: 60_000 }); // held requests must not time out first
  const twoHeld = new Promise<void>((r) => (arrived = () => heldRes.length === 2 && r()));
  const inFlight = [tier.getEntry('1'.repeat(64)), tier.getEntry('2'.repeat(64))];
  await twoHeld;
  // 127.0.0.2 stops taking connections (the two held stay), and 127.0.0.3 comes up.
  old.server.close();
  await listenOn(t, '127.0.0.3', port, (req, res) => {
    const hit = req.url === `/ac/${KEY}`;
    res.writeHead(hit ? 200 : 404, { 'content-length': hit ? 8 : 0 });
    res.end(hit ? 'an entry' : undefined);
  });
  // A lookup needing a new connection to 127.0.0.2 is refused there: the next one chooses again.
  t.is(await tier.getEntry('3'.repeat(64)), undefined);
  t.deepEqual(await tier.getEntry(KEY), Buffer.from('an entry'), 'asked on 127.0.0.3 now');
  t.deepEqual(await Promise.all(inFlight), [undefined, undefined], 'the requests held on the old address end as misses');
  t.is(p.errors, 0, 'their cut connections are not the peer lying');
  t.is(p.live.state, 'up');
});

test('a key every peer answered "no" for is not asked of them again for a minute; a peer that has not said so is asked', async (t) => {
  let now = Date.now();
  const one = await loopbackPeer(t);
  const two = await loopbackPeer(t);
  const table = new PeerTable(() => now);
  table.upsert({ id: 'one', addresses: ['127.0.0.1'], port: one.port, fingerprint: '', source: 'static' });
  const tier = new PeerTier({ table, auth: keyAuth(alice, [alice], () => now), waitMs: 10_000, now: () => now, log: memoryLogger().child('peers') });
  t.teardown(() => tier.close());
  t.is(await tier.getEntry(ABSENT), undefined);
  t.is(await tier.getEntry(ABSENT), undefined);
  t.is(one.asked(), 1, 'the second lookup (a miss merging its entry into the manifest, say) did not ask');
  table.upsert({ id: 'two', addresses: ['127.0.0.1'], port: two.port, fingerprint: '', source: 'static' });
  t.is(await tier.getEntry(ABSENT), undefined);
  t.is(two.asked(), 1, 'a peer that has not said "no" is asked');
  t.is(await tier.getEntry(ABSENT), undefined);
  t.deepEqual([one.asked(), two.asked()], [2, 1]);
  now += 60_001;
  t.is(await tier.getEntry(ABSENT), undefined);
  t.deepEqual([one.asked(), two.asked()], [3, 2], 'a minute later they are asked again');
  t.deepEqual(await tier.getEntry(KEY), Buffer.from('an entry'));
  t.is(tier.stats().misses, 5);
});

// Polls `pred` (a tier's counters) until it holds, like inst.until does a daemon's stats.
async function until(pred: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`waited 30 s for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('a peer with a request unanswered for 4 × peer_wait is asked but not waited for until it answers again: the lookups of its first moments wait for a dead peer, not every one', async (t) => {
  let holding = true;
  const held: (() => void)[] = [];
  const { url, requests } = await fakeServer(t, (req, res) => {
    const answer = () => {
      const hit = req.url === `/ac/${KEY}`;
      res.writeHead(hit ? 200 : 404, { 'content-length': hit ? 8 : 0 });
      res.end(hit ? 'an entry' : undefined);
    };
    if (holding) held.push(answer);
    else answer();
  });
  const table = new PeerTable(Date.now);
  const p = table.upsert({ id: 'slow', addresses: ['127.0.0.1'], port: Number(new URL(url).port), fingerprint: '', source: 'static' });
  // Held requests never time out here: only peer_wait passes.
  const tier = new PeerTier({ table, auth: keyAuth(alice, [alice], Date.now), waitMs: 50, timeoutMs: 60_000, log: memoryLogger().child('peers') });
  t.teardown(() => tier.close());
  t.is(await tier.getEntry('1'.repeat(64)), undefined, 'the first lookup waits peer_wait for it');
  t.is(tier.stats().late, 1);
  await until(() => tier.stats().peers_slow === 1, 'its request unanswered for 4 × peer_wait');
  // Settled before anything but promise jobs ran: no timer fired, the peer answered nothing.
  const second = await Promise.race([tier.getEntry(KEY), new Promise((r) => setImmediate(() => r('still waiting')))]);
  t.is(second, undefined, 'the next lookup does not wait for it');
  t.is(tier.stats().late, 2);
  await until(() => held.length === 2, 'both requests at the peer');
  t.is(requests.length, 2, 'it is still asked: its late answer is kept, and its coming back seen');
  holding = false;
  for (const answer of held.splice(0)) answer();
  await until(() => tier.stats().late_kept === 1 && p.misses === 1, 'both late answers in');
  t.deepEqual(await tier.getEntry(KEY), Buffer.from('an entry'), "the held lookup's late answer serves the next lookup of that key");
  t.is(await tier.getEntry('1'.repeat(64)), undefined);
  t.is(requests.length, 2, 'and its late "no" spares the next lookup of that key a request');
  // Once it answered, a lookup waits for it again: not settled before a timer could fire (its
  // "no" ends the lookup; on a loaded machine it may still come after peer_wait, counted late).
  const third = tier.getEntry('2'.repeat(64));
  t.is(await Promise.race([third.then(() => 'settled'), new Promise((r) => setImmediate(() => r('still waiting')))]), 'still waiting');
  t.is(await third, undefined);
  t.is(tier.stats().misses + tier.stats().late, 4);
  t.is(p.live.state, 'up');
});
