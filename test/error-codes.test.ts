import path from 'node:path';
import { Request } from 'zeromq';
import { decodeBundle, decodePack, encodeBundle, encodePack } from '../daemon/tiers/bundle.js';
import { parseSearchList, systemIncludeDirs } from '../daemon/frontends/gcc/sysdirs.js';
import { decode, encode } from '../ipc/codec.js';
import { isVriftError } from '../ipc/errors.js';
import { BUILD_ID, PROTOCOL_VERSION } from '../ipc/version.js';
import { instance } from './helpers/instance.js';
import test from './helpers/test.js';

// Errors that cross a boundary (a reply to a client, a remote's or peer's answer, a store
// write counted in `vrift stats`) carry a stable code from ipc/errors.ts, never a bare Error
// that the server would report as EINTERNAL.

test('malformed requests get EBADMSG from a real daemon, each counted under its code, never EINTERNAL', async (t) => {
  const v = instance(t);
  t.is((await v.vrift(['daemon', 'start'])).code, 0);
  const sock = new Request({ receiveTimeout: 10_000, linger: 0 });
  t.teardown(() => sock.close());
  sock.connect(`ipc://${path.join(v.home, 'run', 'vriftd.sock')}`);
  const ask = async (msg: Record<string, unknown>) => {
    await sock.send(encode({ v: PROTOCOL_VERSION, build: BUILD_ID, ...msg }));
    return decode((await sock.receive())[0]);
  };
  const bad = [
    { t: 'store-op', op: 'shred' }, // an op the daemon does not have
    { t: 'store-op' }, // no op at all
    { t: 'stats', zero: 'yes' }, // a boolean that is not one
    { t: 'stats', fallbacks_since: 'yesterday' }, // an integer that is not one
    { t: 'done', id: 7, code: 0 }, // an id that is not a string
  ];
  for (const m of bad) t.like(await ask(m), { t: 'error', code: 'EBADMSG' }, JSON.stringify(m));
  t.like(await ask({ t: 'store-op', op: 'settle' }), { t: 'store-op' }, 'the daemon goes on serving');
  const errors = (await v.stats()).errors;
  t.is(errors.EBADMSG, bad.length);
  t.false('EINTERNAL' in errors);
});

test("a remote's malformed bundle or pack is EBADMSG, with what it was and the decoder's cause", (t) => {
  const d = 'a'.repeat(64);
  const bundle = encodeBundle({ value: Buffer.from('v'), entries: [[d, Buffer.from('e')]], blobs: [] });
  t.is(decodeBundle(bundle).entries.length, 1);
  const pack = encodePack([[d, bundle]]);
  t.is(decodePack(pack).length, 1);
  const cases: [string, () => unknown][] = [
    ['bundle: not msgpack', () => decodeBundle(Buffer.concat([bundle.subarray(0, 4), Buffer.from([0xc1, 0xc1])]))],
    ['bundle: truncated', () => decodeBundle(bundle.subarray(0, bundle.length - 3))],
    ['bundle: wrong shape', () => decodeBundle(Buffer.concat([bundle.subarray(0, 4), encode({ a: 1 })]))],
    ['bundle: a key that is not a digest', () => decodeBundle(encodeBundle({ value: Buffer.from('v'), entries: [['k', Buffer.from('e')]], blobs: [] }))],
    ['pack: no magic', () => decodePack(bundle)],
    ['pack: truncated', () => decodePack(pack.subarray(0, pack.length - 3))],
    ['pack: wrong shape', () => decodePack(Buffer.concat([pack.subarray(0, 4), encode({ a: 1 })]))],
  ];
  for (const [what, f] of cases) {
    const e = t.throws(f, undefined, what);
    t.true(isVriftError(e, 'EBADMSG'), `${what}: ${String(e)}`);
  }
});

test('a compiler that cannot be asked for its include path is ECOMPILER (not a daemon bug)', async (t) => {
  const e = await t.throwsAsync(systemIncludeDirs('/bin/false', 'c', []));
  t.true(isVriftError(e, 'ECOMPILER'), String(e));
  for (const out of ['no search list here\n', '#include <...> search starts here:\n /usr/include\n']) {
    const p = t.throws(() => parseSearchList(out));
    t.true(isVriftError(p, 'ECOMPILER'), String(p));
  }
  t.deepEqual(parseSearchList('#include <...> search starts here:\n /usr/include\nEnd of search list.\n'), ['/usr/include']);
});
