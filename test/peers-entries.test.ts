import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import test from './helpers/test.js';
import { instance, run, type Instance, type Stats } from './helpers/instance.js';
import { keyFor, peerPort } from './helpers/peers.js';
import { refusingPort } from './helpers/ports.js';
import { decodeResult, encodeEntry } from '../daemon/frontends/rust/entries.js';
import { BUNDLE_HEADER } from '../daemon/peers/attach.js';
import { decodeBundle, encodeBundle, isBundle } from '../daemon/tiers/bundle.js';
import { openEntry, signEntry } from '../trust/entry-signature.js';
import { readSigningKey } from '../trust/key-file.js';
import { generateSigningKey } from '../trust/keys.js';
import { signRequest } from '../trust/request-auth.js';

// Entries from a peer that B must not use: a peer on loopback (a proxy to a real daemon A, whose
// key B trusts) rewrites the entries A serves. Each is refused, counted as untrusted, logged
// naming the peer and why, and B's build is right (it compiles or links what it refused).

type PeerStats = Stats & { peers?: Record<string, number | string> };
const SOURCES: Record<string, string> = {
  'a.c': 'int a(int x) { return x * 5 + 2; }\n',
  'b.c': 'static const char s[] = "entries";\nconst char *b(void) { return s; }\n',
  'm.c': 'int a(int);\nint main(void) { return a(1); }\n',
};
const UNITS = ['a', 'b', 'm'];
const LINK = ['-o', 'prog', 'a.o', 'b.o', 'm.o'];

// In `dir`: B builds in A's directory, as a link's key holds its directory.
async function build(t: ExecutionContext, v: Instance, dir: string): Promise<void> {
  for (const f of [...UNITS.map((u) => `${u}.o`), 'prog']) fs.rmSync(path.join(dir, f), { force: true });
  for (const u of UNITS) {
    const r = await v.cc(['-O2', '-c', `${u}.c`, '-o', `${u}.o`], { cwd: dir });
    t.is(r.code, 0, r.err);
  }
  const l = await v.cc(LINK, { cwd: dir });
  t.is(l.code, 0, l.err);
  t.is((await run(path.join(dir, 'prog'), [], { cwd: dir })).code, 7, 'prog is right');
}

const mallory = generateSigningKey('mallory').key;
const ESCAPE = path.join(os.tmpdir(), `vrift-escape-${process.pid}`);

type Lie = 'untrusted-signer' | 'forged' | 'dotdot-path' | 'absolute-path' | 'attached-untrusted';
// How each lie rewrites an entry A signed (`key`: its action key; `attached`: it came attached to
// another's answer, bundle.ts); undefined leaves it alone.
const LIES: Record<Lie, (key: string, value: Buffer, aKey: ReturnType<typeof readSigningKey>, attached: boolean) => Buffer | undefined> = {
  'untrusted-signer': (key, v) => signEntry(mallory, key, openEntry(v)!.payload),
  // Only the result attached to a manifest, never the manifest nor the result asked for alone.
  'attached-untrusted': (key, v, _aKey, attached) => (attached ? signEntry(mallory, key, openEntry(v)!.payload) : undefined),
  // The payload changed under A's valid signature (its last byte).
  forged: (_key, v) => {
    const out = Buffer.from(v);
    out[out.length - 1] ^= 1;
    return out;
  },
  // A link result naming an output out of the output directory, signed by A's own (trusted) key.
  'dotdot-path': (key, v, aKey) => rename(key, v, aKey, '../prog'),
  'absolute-path': (key, v, aKey) => rename(key, v, aKey, ESCAPE),
};

function rename(key: string, v: Buffer, aKey: ReturnType<typeof readSigningKey>, name: string): Buffer | undefined {
  const r = decodeResult(openEntry(v)!.payload, 'link');
  if (!r) return undefined;
  r.outputs[0].name = name;
  return signEntry(aKey, key, encodeEntry(r));
}

// B's request for bundles, passed on to A.
const bundles = (req: http.IncomingMessage) => (req.headers[BUNDLE_HEADER] === '1' ? { [BUNDLE_HEADER]: '1' } : {});

async function liar(t: ExecutionContext, aPort: number, aHome: string, lie: Lie): Promise<{ port: number; lied: () => number }> {
  const aKey = readSigningKey(path.join(aHome, 'keys', 'signing.key'));
  let lied = 0;
  const server = http.createServer((req, res) => {
    const target = req.url ?? '/';
    http
      .get({ host: '127.0.0.1', port: aPort, path: target, headers: { ...signRequest(aKey, 'GET', target, Date.now()), ...bundles(req) } }, (up) => {
        const chunks: Buffer[] = [];
        up.on('data', (d) => chunks.push(d));
        up.on('end', () => {
          let body: Buffer = Buffer.concat(chunks);
          const m = /\/ac\/([0-9a-f]{64})$/.exec(target);
          // Each entry of the answer: the value, and in a bundle each attached one too.
          const spoil = (key: string, v: Buffer, attached: boolean) => {
            const spoiled = LIES[lie](key, v, aKey, attached);
            if (spoiled) lied++;
            return spoiled ?? v;
          };
          if (up.statusCode === 200 && m && isBundle(body)) {
            const b = decodeBundle(body);
            body = encodeBundle({ ...b, value: spoil(m[1], b.value, false), entries: b.entries.map(([k, e]) => [k, spoil(k, e, true)]) });
          } else if (up.statusCode === 200 && m) body = spoil(m[1], body, false);
          res.writeHead(up.statusCode ?? 500, { 'content-length': body.length });
          res.end(body);
        });
      })
      .on('error', () => res.destroy());
  });
  t.teardown(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  const port = await new Promise<number>((r) => server.listen(0, '127.0.0.1', () => r((server.address() as AddressInfo).port)));
  return { port, lied: () => lied };
}

const logOf = (v: Instance) => {
  const f = path.join(v.home, 'log', 'vriftd.ndjson');
  return fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : '';
};

test("entries a peer must not give: an untrusted signer, a forged payload, a link's output path with .. or absolute, an untrusted result attached to a genuine manifest; each refused, counted, logged naming the peer, B's build right", async (t) => {
  t.timeout(300_000);
  const a = instance(t, { VRIFT_PEERS: `127.0.0.1:${await refusingPort(t)}`, VRIFT_PEER_PORT: '0' });
  const aLine = keyFor(a.home, 'alice');
  a.files(SOURCES);
  await build(t, a, a.dir);
  const pa = await peerPort(a);
  await a.until((s) => s.stored >= UNITS.length + 1, 'A stored its compiles and its link');
  const fromA = Object.fromEntries(UNITS.map((u) => [u, fs.readFileSync(path.join(a.dir, `${u}.o`))]));

  for (const lie of Object.keys(LIES) as Lie[]) {
    const peer = await liar(t, pa, a.home, lie);
    const b = instance(t, { VRIFT_PEERS: `127.0.0.1:${peer.port}`, VRIFT_PEER_WAIT: '5s', VRIFT_TRUSTED_KEYS: aLine });
    keyFor(b.home, `bob-${lie}`);
    await build(t, b, a.dir);
    for (const u of UNITS) t.deepEqual(fs.readFileSync(path.join(a.dir, `${u}.o`)), fromA[u], `${lie}: ${u}.o right`);
    t.false(fs.existsSync(path.join(a.dir, '..', 'prog')), `${lie}: nothing written beside the directory`);
    t.false(fs.existsSync(ESCAPE), `${lie}: nothing written at the absolute path`);
    const s = (await b.until((x) => x.hits + x.misses >= UNITS.length + 1, 'B looked up every step')) as PeerStats;
    t.log(lie, JSON.stringify({ hits: s.hits, misses: s.misses, peers: s.peers, lied: peer.lied() }));
    t.true(peer.lied() >= 1, `${lie}: the peer was asked for an entry it spoiled`);
    t.true(Number(s.peers?.untrusted) >= 1, `${lie}: counted as untrusted`);
    // The compiles' entries pass when only the link's is spoiled; everything else is B's own.
    // A refused attachment is asked for on its own, and comes genuine then: no miss.
    t.is(s.misses, lie === 'attached-untrusted' ? 0 : lie.endsWith('-path') ? 1 : UNITS.length + 1, `${lie}: what was refused ran on B`);
    const refusal = logOf(b)
      .split('\n')
      .filter((l) => l.includes('refused'))
      .map((l) => JSON.parse(l) as { msg: string; source: string; level: string })[0];
    t.truthy(refusal, `${lie}: logged`);
    t.is(refusal?.level, 'warn');
    t.regex(refusal?.source ?? '', new RegExp(`^peer 127\\.0\\.0\\.1:${peer.port} at http://127\\.0\\.0\\.1:${peer.port}, key `), `${lie}: names the peer`);
    t.regex(
      refusal?.msg ?? '',
      {
        'untrusted-signer': /signed by "mallory", which is not a trusted key/,
        forged: /does not match this entry/,
        'dotdot-path': /output path "\.\.\/prog" is not a plain file name/,
        'absolute-path': /output path "\/.*" is not a plain file name/,
        'attached-untrusted': /signed by "mallory", which is not a trusted key/,
      }[lie],
    );
    await b.stop();
  }
});
