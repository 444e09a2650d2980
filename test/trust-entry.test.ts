import test from './helpers/test.js';
import { EntryGate } from '../daemon/tiers/entry-gate.js';
import { memoryLogger } from '../daemon/log.js';
import { isSigned, openEntry, signEntry, verifyEntry } from '../trust/entry-signature.js';
import { generateSigningKey, parseTrustedKeys } from '../trust/keys.js';
import { encodeEntry, type Result } from '../daemon/frontends/entries.js';

const alice = generateSigningKey('alice-1').key;
const mallory = generateSigningKey('mallory').key;
const trusted = parseTrustedKeys([alice.line]);
const K1 = '1'.repeat(64);
const K2 = '2'.repeat(64);
const result = (digest: string, size: number, out = ''): Buffer =>
  encodeEntry({ v: 2, outputs: [{ role: 'obj', digest, size }], out: Buffer.from(out), err: Buffer.alloc(0), deps: [], sys: '' } satisfies Result);
const R1 = result('a'.repeat(64), 1000);
const R2 = result('b'.repeat(64), 1000);

test('a signed entry verifies under its own key and unwraps to its payload; an unsigned one reads as itself', (t) => {
  const s = signEntry(alice, K1, R1);
  t.true(isSigned(s));
  t.false(isSigned(R1), 'a msgpack payload never looks signed');
  t.deepEqual(openEntry(s), { signer: 'alice-1', signature: s.subarray(s.length - R1.length - 64, s.length - R1.length), payload: R1 });
  t.deepEqual(openEntry(R1), { payload: R1 });
  const v = verifyEntry(K1, s, trusted);
  t.true(v.ok);
  t.is(v.ok && v.signer, `alice-1 (${alice.fingerprint})`);
  t.deepEqual(v.ok && v.payload, R1);
});

test('refused: another action key, another payload under the same signature, a flipped byte, unsigned, an untrusted signer, malformed', (t) => {
  const s = signEntry(alice, K1, R1);
  const refused = (what: string, stored: Buffer, key = K1, re?: RegExp) => {
    const v = verifyEntry(key, stored, trusted);
    t.false(v.ok, what);
    if (re) t.regex(v.reason, re, what);
  };
  refused('replayed under K2', s, K2, /signature by "alice-1" does not match/);
  refused('different outputs', Buffer.concat([s.subarray(0, s.length - R1.length), R2]));
  refused('different stdout', Buffer.concat([s.subarray(0, s.length - R1.length), result('a'.repeat(64), 1000, 'warning')]));
  for (let i = 4; i < s.length; i += 7) {
    const x = Buffer.from(s);
    x[i] ^= 0x20;
    refused(`byte ${i} flipped`, x);
  }
  refused('unsigned', R1, K1, /unsigned; trusted keys: alice-1/);
  refused('mallory', signEntry(mallory, K1, R1), K1, /signed by "mallory", which is not a trusted key; trusted keys: alice-1 \(/);
  const impostor = signEntry({ ...mallory, name: 'alice-1' }, K1, R1);
  refused("mallory under alice's name", impostor, K1, /does not match/);
  refused('truncated', s.subarray(0, 40), K1, /malformed/);
  refused('no name', Buffer.concat([Buffer.from('VRS1'), Buffer.from([0]), Buffer.alloc(64), R1]), K1, /malformed/);
  t.false(verifyEntry(K1, s, []).ok, 'nobody trusted');
});

test('EntryGate: counts every refusal, logs the first per signer at warn with the keys, later ones at debug for a minute', (t) => {
  const log = memoryLogger();
  let now = 1_000_000;
  const gate = new EntryGate({ trusted, require: true, log: log.child('trust'), now: () => now, source: 'remote' });
  t.true(gate.accept(K1, signEntry(alice, K1, R1)));
  t.false(gate.accept(K1, signEntry(mallory, K1, R1)));
  t.false(gate.accept(K2, signEntry(mallory, K2, R2)));
  t.false(gate.accept(K1, R1, 'peer bob-laptop'));
  now += 60_000;
  t.false(gate.accept(K1, signEntry(mallory, K1, R1)));
  t.is(gate.untrusted(), 4);
  const lines = log.lines.map((l) => JSON.parse(l) as Record<string, string>);
  t.deepEqual(
    lines.map((l) => [l.level, l.signer, l.source]),
    [
      ['warn', 'mallory', 'remote'],
      ['debug', 'mallory', 'remote'],
      ['warn', '(unsigned)', 'peer bob-laptop'],
      ['warn', 'mallory', 'remote'],
    ],
  );
  t.is(lines[0].trusted, `alice-1 (${alice.fingerprint})`);
  t.regex(lines[2].msg, /^entry from peer bob-laptop refused: unsigned/);

  // Not required: signed or not, any well-formed entry passes; a malformed signed form does not.
  const open = new EntryGate({ trusted, require: false, log: log.child('trust'), now: () => now, source: 'remote' });
  t.true(open.accept(K1, R1));
  t.true(open.accept(K1, signEntry(mallory, K1, R1)));
  t.false(open.accept(K1, Buffer.from('VRS1\u0005ab')));
  t.is(open.untrusted(), 1);
});
