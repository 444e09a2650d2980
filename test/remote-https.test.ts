import fs from 'node:fs';
import path from 'node:path';
import test from './helpers/test.js';
import type { ExecutionContext } from 'ava';
import { instance, type Stats } from './helpers/instance.js';
import { startServe, tmpDir } from './helpers/remote.js';
import { certificates } from './helpers/tls.js';

type RStats = Stats & { remote?: Record<string, number | string | boolean> };

const SOURCES: Record<string, string> = {
  'a.c': '#include "h.h"\nint a(void) { return H + 1; }\n',
  'b.c': '#include "h.h"\nint b(void) { return H + 2; }\n',
  'h.h': '#define H 40\n',
};

async function build(t: ExecutionContext, v: ReturnType<typeof instance>): Promise<Buffer[]> {
  v.files(SOURCES);
  const out: Buffer[] = [];
  for (const f of ['a.c', 'b.c']) {
    const r = await v.cc(['-O2', '-c', f, '-o', f.replace('.c', '.o')]);
    t.is(r.code, 0, r.err);
    t.is(r.err, '');
    out.push(fs.readFileSync(path.join(v.dir, f.replace('.c', '.o'))));
  }
  return out;
}

test('an HTTPS remote whose certificate a CA made for the test signed (trusted through NODE_EXTRA_CA_CERTS): B hits what A uploaded; untrusted, B compiles', async (t) => {
  const dir = tmpDir(t);
  const { ca, cert, key } = certificates(dir);
  const serve = await startServe(t, ['--store', path.join(dir, 'store'), '--tls-cert', cert, '--tls-key', key, '--access-log', 'off']);
  t.true(serve.url.startsWith('https://127.0.0.1:'), serve.url);

  const a = instance(t, { VRIFT_REMOTE: serve.url, NODE_EXTRA_CA_CERTS: ca });
  const fromA = await build(t, a);
  t.like(await a.stats(), { misses: 2 });
  await a.stop(); // drains the uploads

  // Without the CA, the certificate is not trusted: every lookup an error, never a hit.
  const untrusted = instance(t, { VRIFT_REMOTE: serve.url });
  t.deepEqual(await build(t, untrusted), fromA);
  const u = (await untrusted.stats()) as RStats;
  t.like(u, { hits: 0, misses: 2 });
  t.true(Number(u.remote!.errors) >= 1, JSON.stringify(u.remote));

  const b = instance(t, { VRIFT_REMOTE: serve.url, NODE_EXTRA_CA_CERTS: ca });
  t.deepEqual(await build(t, b), fromA);
  const s = (await b.stats()) as RStats;
  t.like(s, { hits: 2, misses: 0 });
  t.is(s.remote!.errors, 0);
});
