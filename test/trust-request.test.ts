import test from './helpers/test.js';
import { generateSigningKey, parsePublicKey, parseSigningKey, parseTrustedKeys } from '../trust/keys.js';
import { AUTH_HEADER, checkRequest, ConnectionAuth, REQUEST_WINDOW_MS, signRequest, verifyRequest } from '../trust/request-auth.js';

const T0 = 1_800_000_000_000;
const alice = generateSigningKey('alice-1').key;
const mallory = generateSigningKey('mallory').key;
const trusted = parseTrustedKeys([alice.line]);

test('a request signed by a trusted key, checked at once, names its sender', (t) => {
  const h = signRequest(alice, 'GET', '/ac/0123abcd', T0);
  t.deepEqual(verifyRequest(h, 'GET', '/ac/0123abcd', trusted, T0), { name: 'alice-1' });
  t.deepEqual(verifyRequest(h, 'get', '/ac/0123abcd', trusted, T0 + REQUEST_WINDOW_MS), { name: 'alice-1' }, 'at the edge of the window');
  t.deepEqual(verifyRequest(h, 'GET', '/ac/0123abcd', trusted, T0 - REQUEST_WINDOW_MS), { name: 'alice-1' }, 'sender clock ahead');
});

test("an untrusted key, even under a trusted key's name, is refused", (t) => {
  t.is(verifyRequest(signRequest(mallory, 'GET', '/ac/x', T0), 'GET', '/ac/x', trusted, T0), null);
  const impostor = parseSigningKey(`alice-1:${generateSigningKey('x').secretLine.split(':')[1]}`);
  const h = signRequest(impostor, 'GET', '/ac/x', T0);
  t.is(verifyRequest(h, 'GET', '/ac/x', trusted, T0), null);
  const c = checkRequest(h, 'GET', '/ac/x', trusted, T0);
  t.false(c.ok);
  t.regex(!c.ok ? c.reason : '', /bad signature for key "alice-1"/);
  t.is(verifyRequest(signRequest(alice, 'GET', '/ac/x', T0), 'GET', '/ac/x', [], T0), null, 'nobody trusted');
});

test('a signature does not carry over to another path, method or time', (t) => {
  const h = signRequest(alice, 'GET', '/cas/aaaa', T0);
  t.is(verifyRequest(h, 'GET', '/cas/aaab', trusted, T0), null, 'other path');
  t.is(verifyRequest(h, 'GET', '/cas/aaaa?x=1', trusted, T0), null, 'other query');
  t.is(verifyRequest(h, 'HEAD', '/cas/aaaa', trusted, T0), null, 'other method');
  t.is(verifyRequest(h, 'GET', '/cas/aaaa', trusted, T0 + REQUEST_WINDOW_MS + 1), null, 'expired');
  t.is(verifyRequest(h, 'GET', '/cas/aaaa', trusted, T0 - REQUEST_WINDOW_MS - 1), null, 'from the future');
  t.is(verifyRequest(h, 'GET', '/cas/aaaa', trusted, T0 + 1000, 500), null, 'a narrower window');
  const [v, name, ts, sig] = h[AUTH_HEADER].split(' ');
  const moved = { [AUTH_HEADER]: [v, name, String(Number(ts) + 1), sig].join(' ') };
  t.is(verifyRequest(moved, 'GET', '/cas/aaaa', trusted, T0), null, 'timestamp edited');
});

test('garbage headers are refused, never thrown on', (t) => {
  const sig = signRequest(alice, 'GET', '/p', T0)[AUTH_HEADER].split(' ')[3];
  const bad = [
    undefined,
    '',
    ' ',
    'garbage',
    '1',
    '1 alice-1',
    `1 alice-1 ${T0}`,
    `2 alice-1 ${T0} ${sig}`,
    `1 alice-1 soon ${sig}`,
    `1 alice-1 ${T0} notbase64!!`,
    `1 alice-1 ${T0} ${sig.slice(4)}`,
    `1 alice-1 ${T0} ${sig} extra`,
    `1  alice-1 ${T0} ${sig}`,
    `1 alice-1 1e12 ${sig}`,
    `1 alice-1 -${T0} ${sig}`,
    '\u0000'.repeat(5000),
  ];
  for (const v of bad) t.is(verifyRequest({ [AUTH_HEADER]: v }, 'GET', '/p', trusted, T0), null, JSON.stringify(v?.slice(0, 40)));
  t.is(verifyRequest({ [AUTH_HEADER]: [signRequest(alice, 'GET', '/p', T0)[AUTH_HEADER], 'x'] }, 'GET', '/p', trusted, T0), null, 'two headers');
  t.is(verifyRequest({}, 'GET', '/p', trusted, T0), null, 'none');
});

test('key lines: Nix form round-trips, wrong forms are config errors naming where', (t) => {
  const { key, secretLine } = generateSigningKey('ci.example-1');
  t.regex(key.line, /^ci\.example-1:[A-Za-z0-9+/]{43}=$/);
  t.regex(secretLine, /^ci\.example-1:[A-Za-z0-9+/]{86}==$/);
  t.is(parseSigningKey(secretLine).line, key.line);
  t.is(parsePublicKey(key.line).fingerprint, key.fingerprint);
  t.is(parseTrustedKeys(['', ` ${key.line} `]).length, 1, 'blanks (a trailing comma) are skipped');
  for (const bad of ['nokey', ':AAAA', 'a b:AAAA', 'a:!!!', `a:${Buffer.alloc(31).toString('base64')}`]) {
    t.throws(() => parseTrustedKeys([key.line, bad]), { code: 'ECONFIG', message: /trusted_keys\[1\]/ }, bad);
  }
  t.throws(
    () => parseSigningKey(key.line),
    { code: 'ECONFIG', message: /secret key is 64 bytes, this one 32 \(a public key\?\)/ },
    'a public line is not a secret',
  );
  const mixed = Buffer.concat([Buffer.from(secretLine.split(':')[1], 'base64').subarray(0, 32), Buffer.from(mallory.line.split(':')[1], 'base64')]);
  t.throws(() => parseSigningKey(`m:${mixed.toString('base64')}`), { message: /does not belong/ });
  t.throws(() => generateSigningKey('has:colon'), { code: 'ECONFIG' });
});

test('ConnectionAuth: a connection verified once passes later requests from the same key name until the window ends; others are checked in full', (t) => {
  let now = T0;
  const auth = new ConnectionAuth(trusted, () => now, 60_000);
  const conn = {};
  const other = {};
  t.is(auth.verify(conn, { [AUTH_HEADER]: '1 alice-1 1 x' }, 'GET', '/a'), null, 'nothing verified yet');
  t.deepEqual(auth.verify(conn, signRequest(alice, 'GET', '/a', now), 'GET', '/a'), { name: 'alice-1' });
  const stale = signRequest(alice, 'GET', '/a', T0 - 10 * 60_000)[AUTH_HEADER];
  t.deepEqual(auth.verify(conn, { [AUTH_HEADER]: stale }, 'GET', '/b'), { name: 'alice-1' }, 'the connection is known');
  t.is(auth.verify(other, { [AUTH_HEADER]: stale }, 'GET', '/b'), null, 'another connection is not');
  t.is(auth.verify(conn, signRequest(mallory, 'GET', '/b', now), 'GET', '/b'), null, 'another key name on it is checked, and fails');
  t.is(auth.verify(conn, {}, 'GET', '/b'), null, 'no header');
  now += 60_000;
  t.is(auth.verify(conn, { [AUTH_HEADER]: stale }, 'GET', '/b'), null, 'after the window: checked in full again');
  t.deepEqual(auth.verify(conn, signRequest(alice, 'GET', '/c', now), 'GET', '/c'), { name: 'alice-1' });
});
