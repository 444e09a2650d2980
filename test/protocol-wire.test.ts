import path from 'node:path';
import { Request } from 'zeromq';
import { decode, encode } from '../ipc/codec.js';
import { BUILD_ID, PROTOCOL_VERSION } from '../ipc/version.js';
import { age, instance } from './helpers/instance.js';
import test from './helpers/test.js';

// The typed protocol reads the wire as before: done's `nocache` (messages/done.ts) still
// keeps a result out of the store, counted under its reason.
test('a done marked nocache is not stored (output_too_big), read through the typed done request', async (t) => {
  const v = instance(t);
  age(v.write('a.c', 'int a(void) { return 1; }\n'));
  t.is((await v.vrift(['daemon', 'start'])).code, 0);
  const sock = new Request({ receiveTimeout: 10_000, linger: 0 });
  t.teardown(() => sock.close());
  sock.connect(`ipc://${path.join(v.home, 'run', 'vriftd.sock')}`);
  const ask = async (msg: Record<string, unknown>) => {
    await sock.send(encode({ v: PROTOCOL_VERSION, build: BUILD_ID, ...msg }));
    return decode((await sock.receive())[0]);
  };
  const env = Object.entries(v.env)
    .filter(([, x]) => x !== undefined)
    .map(([k, x]) => `${k}=${x}`);
  const run = await ask({ t: 'compile', cwd: v.dir, exe: '/usr/bin/gcc', argv: ['gcc', '-c', 'a.c', '-o', 'a.o'], env, tty: false });
  t.is(run.t, 'run', JSON.stringify(run));
  t.like(await ask({ t: 'done', id: run.id, code: 0, out: Buffer.alloc(0), err: Buffer.alloc(0), nocache: true }), { t: 'ok' });
  const s = await v.until((x) => (x.not_stored.output_too_big ?? 0) >= 1, 'output_too_big counted');
  t.is(s.stored, 0);
});
