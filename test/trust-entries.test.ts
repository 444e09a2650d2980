import fs from 'node:fs';
import type http from 'node:http';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import test from './helpers/test.js';
import { CLI, instance, run, type Instance, type Stats } from './helpers/instance.js';
import { buildProject, fakeServer, startServe, tmpDir, writeProject } from './helpers/remote.js';
import { decodeBundle, isBundle } from '../daemon/tiers/bundle.js';
import { decodeManifest, decodeResult } from '../daemon/frontends/entries.js';
import { isSigned, openEntry, signEntry, verifyEntry } from '../trust/entry-signature.js';
import { generateSigningKey, parsePublicKey, parseTrustedKeys } from '../trust/keys.js';

type RStats = Stats & { remote?: Record<string, number | string | boolean> };
// Lookups wait for the remote's answer (no `remote_wait` cut-off, a generous idle timeout): on a
// loaded machine a late answer would be a miss for another reason than the one a test names.
const PATIENT = { VRIFT_REMOTE_WAIT: '0', VRIFT_REMOTE_TIMEOUT: '20s' };

/** An instance with its own named key (made by `vrift keys generate`), returning its public line. */
async function keyed(t: ExecutionContext, name: string, env: NodeJS.ProcessEnv = {}): Promise<{ inst: Instance; line: string }> {
  const inst = instance(t, env);
  const r = await inst.vrift(['keys', 'generate', '--name', name]);
  t.is(r.code, 0, r.err);
  return { inst, line: r.out.trim() };
}

const logOf = (inst: Instance) => {
  const f = path.join(inst.home, 'log', 'vriftd.ndjson');
  return fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : '';
};

test('A signs what it uploads; B, trusting A and requiring signatures, gets every object from the remote', async (t) => {
  const dir = tmpDir(t);
  const serve = await startServe(t, ['--store', path.join(dir, 'store'), '--access-log', 'off']);
  const a = await keyed(t, 'alice-1', { VRIFT_REMOTE: serve.url });
  writeProject(a.inst.dir);
  const fromA = await buildProject(t, a.inst);
  await a.inst.stop(); // uploads drain

  // Every entry on the server is signed by alice over its own key.
  const trusted = parseTrustedKeys([a.line]);
  const acDir = path.join(dir, 'store', 'ac');
  const stored = fs.readdirSync(acDir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
  t.true(stored.length >= 6);
  for (const e of stored) {
    const body = fs.readFileSync(path.join(e.parentPath, e.name));
    const values: [string, Buffer][] = isBundle(body)
      ? (() => {
          const b = decodeBundle(body);
          return [[e.name, b.value], ...b.entries];
        })()
      : [[e.name, body]];
    for (const [k, v] of values) t.true(verifyEntry(k, v, trusted).ok, `${k} signed by alice`);
  }

  const b = instance(t, { VRIFT_REMOTE: serve.url, VRIFT_TRUSTED_KEYS: `${a.line},`, VRIFT_REMOTE_REQUIRE_SIGNATURES: 'true', ...PATIENT });
  writeProject(b.dir);
  t.deepEqual(await buildProject(t, b), fromA);
  const s = (await b.stats()) as RStats;
  t.is(s.hits, 3, JSON.stringify(s.remote));
  t.is(s.misses, 0);
  t.is(s.remote!.untrusted, 0);
  t.regex(logOf(b), /remote entries are used only when signed by a trusted key.*alice-1/);
});

test("C's entries are refused by B, which trusts only A: counted, logged with both keys, B compiles and its objects are right", async (t) => {
  const dir = tmpDir(t);
  const serve = await startServe(t, ['--store', path.join(dir, 'store'), '--access-log', 'off']);
  const c = await keyed(t, 'carol', { VRIFT_REMOTE: serve.url });
  writeProject(c.inst.dir);
  const fromC = await buildProject(t, c.inst);
  await c.inst.stop();

  const alice = generateSigningKey('alice-1').key;
  const b = instance(t, { VRIFT_REMOTE: serve.url, VRIFT_TRUSTED_KEYS: alice.line, VRIFT_REMOTE_REQUIRE_SIGNATURES: '1', ...PATIENT });
  writeProject(b.dir);
  const fromB = await buildProject(t, b);
  t.deepEqual(fromB, fromC, 'the same compiler makes the same objects: compiled by B, not taken from C');
  const s = (await b.stats()) as RStats;
  t.is(s.hits, 0);
  t.is(s.misses, 3);
  t.true(Number(s.remote!.untrusted) >= 3, `untrusted ${s.remote!.untrusted}`);
  const refusal = logOf(b)
    .split('\n')
    .find((l) => l.includes('refused'));
  t.truthy(refusal);
  const line = JSON.parse(refusal!);
  t.is(line.level, 'warn');
  t.is(line.signer, 'carol');
  t.regex(line.trusted, new RegExp(`alice-1 \\(${alice.fingerprint}\\)`));
  t.regex(line.msg, /signed by "carol", which is not a trusted key/);
  // `vrift stats` says so too.
  const text = await b.vrift(['stats']);
  t.regex(text.out, /refused \(untrusted\)\s+\d+/);

  // Without requiring signatures the same remote is used as before: the refusal above is the gate's.
  const d = instance(t, { VRIFT_REMOTE: serve.url, VRIFT_TRUSTED_KEYS: alice.line, ...PATIENT });
  writeProject(d.dir);
  t.deepEqual(await buildProject(t, d), fromC);
  t.is((await d.stats()).hits, 3);
});

// A remote that lies: it holds what A uploaded (packs off, so each entry has a request of its
// own), and answers the result entry of a.c with something else.
interface Captured {
  ac: Map<string, Buffer>;
  cas: Map<string, Buffer>;
}

async function capture(
  t: ExecutionContext,
): Promise<{ captured: Captured; fromA: Record<string, Buffer>; aLine: string; keys: { manifest: string; result: string; otherResult: string } }> {
  const captured: Captured = { ac: new Map(), cas: new Map() };
  const srv = await fakeServer(t, store(captured));
  const a = await keyed(t, 'alice-1', { VRIFT_REMOTE: srv.url, VRIFT_REMOTE_PACKS: '0' });
  writeProject(a.inst.dir);
  const fromA = await buildProject(t, a.inst, ['a.c', 'b.c']);
  await a.inst.stop();
  // Which value is which: a manifest names its result; the results' objects tell a from b.
  const plain = (v: Buffer) => openEntry(isBundle(v) ? decodeBundle(v).value : v)!.payload;
  let manifest = '';
  let result = '';
  let otherResult = '';
  for (const [k, v] of captured.ac) {
    const r = decodeResult(plain(v));
    if (r) {
      if (captured.cas.get(r.outputs[0].digest)?.equals(fromA['a.o'])) result = k;
      else otherResult = k;
    }
  }
  for (const [k, v] of captured.ac) if (decodeManifest(plain(v))?.entries[0].result === result) manifest = k;
  t.truthy(manifest && result && otherResult);
  // The manifest without attachments: B then asks for the result on its own.
  captured.ac.set(manifest, isBundle(captured.ac.get(manifest)!) ? decodeBundle(captured.ac.get(manifest)!).value : captured.ac.get(manifest)!);
  return { captured, fromA, aLine: a.line, keys: { manifest, result, otherResult } };
}

function store(c: Captured): http.RequestListener {
  return (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (d) => chunks.push(d));
    req.on('end', () => {
      const m = /^\/(ac|cas)\/([0-9a-f]{64})$/.exec(req.url ?? '');
      if (!m) return void res.writeHead(404).end();
      const map = c[m[1] as 'ac' | 'cas'];
      if (req.method === 'PUT') {
        map.set(m[2], Buffer.concat(chunks));
        return void res.writeHead(200).end();
      }
      const v = map.get(m[2]);
      if (!v) return void res.writeHead(404).end();
      res.writeHead(200, { 'content-length': v.length });
      res.end(req.method === 'HEAD' ? undefined : v);
    });
  };
}

const LIES: Record<string, (c: Captured, k: { result: string; otherResult: string }) => Buffer> = {
  // b.c's genuine result, signed by alice, answered under a.c's key.
  'a genuine entry under another action key': (c, k) => c.ac.get(k.otherResult)!,
  // a.c's signature over b.c's result (another object digest and size).
  'a valid signature over different outputs': (c, k) => {
    const mine = openEntry(c.ac.get(k.result)!)!;
    const other = openEntry(c.ac.get(k.otherResult)!)!;
    const signed = c.ac.get(k.result)!;
    return Buffer.concat([signed.subarray(0, signed.length - mine.payload.length), other.payload]);
  },
  // The last byte of the payload: a system-header flag, still a well-formed result.
  'a tampered entry (one byte)': (c, k) => {
    const v = Buffer.from(c.ac.get(k.result)!);
    v[v.length - 1] ^= 1;
    return v;
  },
  'an unsigned entry': (c, k) => openEntry(c.ac.get(k.otherResult)!)!.payload,
  'an entry signed by a key nobody trusts': (c, k) => signEntry(generateSigningKey('mallory').key, k.result, openEntry(c.ac.get(k.otherResult)!)!.payload),
  'garbage in the signed form': () => Buffer.concat([Buffer.from('VRS1'), Buffer.from([200]), Buffer.from('x')]),
};

test("a lying remote: each forged answer for a.c's result is refused, counted, and a.o is right", async (t) => {
  const { captured, fromA, aLine, keys } = await capture(t);
  for (const [what, lie] of Object.entries(LIES)) {
    const served: Captured = { ac: new Map(captured.ac), cas: new Map(captured.cas) };
    served.ac.set(keys.result, lie(captured, keys));
    const srv = await fakeServer(t, store(served));
    const b = instance(t, { VRIFT_REMOTE: srv.url, VRIFT_TRUSTED_KEYS: aLine, VRIFT_REMOTE_REQUIRE_SIGNATURES: 'yes', VRIFT_REMOTE_PACKS: '0', ...PATIENT });
    writeProject(b.dir);
    const out = await buildProject(t, b, ['a.c']);
    t.deepEqual(out['a.o'], fromA['a.o'], what);
    const s = (await b.stats()) as RStats;
    t.is(s.hits, 0, what);
    t.is(s.misses, 1, what);
    // Refused each time it is read: by the lookup, and again by its ask for the server's
    // manifest when the one it took has no entry that serves (a teammate's newer one).
    t.true(Number(s.remote!.untrusted) >= 1, `${what}: ${JSON.stringify(s.remote)} ${srv.requests.join(', ')}`);
    t.true(srv.requests.includes(`GET /ac/${keys.result}`), `${what}: the result was asked for (the manifest passed)`);
    t.regex(logOf(b), /entry from remote refused/, what);
    await b.stop();
  }
  // The honest answer passes the same gate (the manifest and result as A uploaded them).
  const srv = await fakeServer(t, store(captured));
  const b = instance(t, { VRIFT_REMOTE: srv.url, VRIFT_TRUSTED_KEYS: aLine, VRIFT_REMOTE_REQUIRE_SIGNATURES: 'yes', VRIFT_REMOTE_PACKS: '0', ...PATIENT });
  writeProject(b.dir);
  t.deepEqual((await buildProject(t, b, ['a.c']))['a.o'], fromA['a.o']);
  t.is((await b.stats()).hits, 1);
});

test('entries a daemon writes are signed in its local store, old unsigned ones still read, and it makes its key on first start', async (t) => {
  const a = instance(t);
  writeProject(a.dir);
  const first = await buildProject(t, a, ['a.c']);
  await a.stored(1);
  await a.stop();
  // The daemon made a key (user@host) on its first start; `vrift keys show` prints it.
  const show = await a.vrift(['keys', 'show']);
  t.is(show.code, 0, show.err);
  const key = parsePublicKey(show.out.trim());
  t.is(fs.statSync(path.join(a.home, 'keys', 'signing.key')).mode & 0o777, 0o600);
  // Its entries on disk are signed by it; strip every signature (a store from before signing)
  // and the next build still hits.
  const acFiles = fs
    .readdirSync(path.join(a.home, 'l2'), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.parentPath.includes(`${path.sep}ac-v1`));
  t.true(acFiles.length >= 2);
  const { decodeEntry, encodeEntry } = await import('../daemon/store/entry-file.js');
  for (const e of acFiles) {
    const f = path.join(e.parentPath, e.name);
    const d = decodeEntry(fs.readFileSync(f), e.name);
    t.true(d.ok);
    const value = (d as { data: Buffer }).data;
    t.true(isSigned(value));
    t.true(verifyEntry(e.name, value, [key]).ok);
    fs.writeFileSync(f, encodeEntry(e.name, openEntry(value)!.payload));
  }
  const again = await buildProject(t, a, ['a.c']);
  t.deepEqual(again, first);
  t.is((await a.stats()).hits, 1);
});

test('vrift keys: generate makes a 0600 key in a 0700 directory and prints NAME:BASE64, show prints it, errors are one line', async (t) => {
  const a = instance(t);
  const bad = await a.vrift(['keys', 'generate', '--name', 'has space']);
  t.is(bad.code, 2);
  t.regex(bad.err, /^vrift: --name: key name "has space" is not/);
  t.false(fs.existsSync(path.join(a.home, 'keys', 'signing.key')));
  const none = await a.vrift(['keys', 'show']);
  t.is(none.code, 2);
  t.regex(none.err, /no signing key yet .*vrift keys generate/);

  const g = await a.vrift(['keys', 'generate', '--name', 'ci.example.org-1']);
  t.is(g.code, 0, g.err);
  t.regex(g.out, /^ci\.example\.org-1:[A-Za-z0-9+/]{43}=\n$/);
  t.is(fs.statSync(path.join(a.home, 'keys', 'signing.key')).mode & 0o777, 0o600);
  t.is(fs.statSync(path.join(a.home, 'keys')).mode & 0o777, 0o700);
  t.is(fs.readFileSync(path.join(a.home, 'keys', 'signing.pub'), 'utf8'), g.out);
  t.is((await a.vrift(['keys', 'show'])).out, g.out);

  const again = await a.vrift(['keys', 'generate']);
  t.is(again.code, 2);
  t.regex(again.err, /signing\.key already exists .*--force replaces it/);
  t.is((await a.vrift(['keys', 'show'])).out, g.out, 'the key is untouched');
  const forced = await a.vrift(['keys', 'generate', '--force', '--name', 'ci.example.org-2']);
  t.is(forced.code, 0, forced.err);
  t.not(forced.out, g.out);
  t.is((await a.vrift(['keys', 'show'])).out, forced.out);
  t.is(fs.statSync(path.join(a.home, 'keys', 'signing.key')).mode & 0o777, 0o600);
  t.deepEqual(fs.readdirSync(path.join(a.home, 'keys')).sort(), ['signing.key', 'signing.pub'], 'no temp file left');

  // signing_key elsewhere: show prints that key; generate says the daemon does not use the new one.
  const other = generateSigningKey('elsewhere');
  const file = path.join(a.dir, 'team.key');
  fs.writeFileSync(file, other.secretLine + '\n', { mode: 0o600 });
  fs.writeFileSync(path.join(a.home, 'config.toml'), `[l2_cache]\nsigning_key = "${file}"\ntrusted_keys = ["${other.key.line}"]\n`);
  t.is((await a.vrift(['keys', 'show'])).out, other.key.line + '\n');
  const note = await a.vrift(['keys', 'generate', '--force']);
  t.regex(note.err, /signing_key = .*team\.key is what the daemon signs with/);

  // A bad trusted key is a configuration error naming where it was written.
  const cfg = await run(process.execPath, [CLI, 'config'], { env: { ...a.env, VRIFT_TRUSTED_KEYS: `${other.key.line},oops:AAAA` }, cwd: a.dir });
  t.not(cfg.code, 0);
  t.regex(cfg.err, /VRIFT_TRUSTED_KEYS\[1\]: an ed25519 public key is 32 bytes/);
});

test('a signing_key that cannot be read: the daemon runs unsigned (logged), the build is cached as before, and no key is made in its place', async (t) => {
  const a = instance(t, { VRIFT_SIGNING_KEY: '/nonexistent/team.key' });
  writeProject(a.dir);
  const first = await buildProject(t, a, ['a.c']);
  await a.stored(1);
  t.deepEqual(await buildProject(t, a, ['a.c']), first);
  t.is((await a.stats()).hits, 1);
  t.regex(logOf(a), /entries are not signed: the signing key cannot be used.*nonexistent\/team\.key/);
  t.false(fs.existsSync(path.join(a.home, 'keys')), 'no key made for a configured path');
});
