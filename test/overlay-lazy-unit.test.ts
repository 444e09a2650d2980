import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from './helpers/test.js';
import { LazyFiles, LAZY_TMP_PREFIX } from '../daemon/overlay/lazy.js';
import { blobDigest } from '../daemon/store/blob-digest.js';
import { encodeBlob } from '../daemon/store/blob-file.js';
import { relPath } from '../daemon/store/layout.js';

// LazyFiles alone, on a plain directory (no mount): the orderings the handlers rely on.

function setup(t: { teardown(f: () => void): void }) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vrift-lazy-unit-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const root = path.join(dir, 'root');
  const store = path.join(dir, 'store');
  fs.mkdirSync(root);
  const data = Buffer.from('the old object bytes\n');
  const digest = blobDigest(data);
  const blob = path.join(store, relPath('cas', digest));
  fs.mkdirSync(path.dirname(blob), { recursive: true });
  fs.writeFileSync(blob, encodeBlob(data, 0));
  const lazy = LazyFiles.load(root, path.join(dir, 'map'));
  return { root, lazy, entry: { digest, size: data.length, mode: 0o644, mtime: Date.now(), store } };
}

test('a fetch whose entry was taken (a rename over the path) leaves the renamed-in file alone and no temp file', async (t) => {
  const { root, lazy, entry } = setup(t);
  await lazy.register('x.o', entry);
  const fetching = lazy.materialize('/x.o');
  // What the rename handler does before its passthrough rename: forget `to`, then the new file lands.
  t.truthy(lazy.take('/x.o'));
  fs.writeFileSync(path.join(root, 'x.o'), 'renamed in\n');
  t.is(await fetching, 0);
  t.is(fs.readFileSync(path.join(root, 'x.o'), 'utf8'), 'renamed in\n');
  t.deepEqual(fs.readdirSync(root), ['x.o']);
});

test('register refuses a path with a file beneath or a lazy one, and any once stopping; load removes stale temp files', async (t) => {
  const { root, lazy, entry } = setup(t);
  fs.writeFileSync(path.join(root, 'real.o'), 'old');
  await t.throwsAsync(lazy.register('real.o', entry), { code: 'ELAZY' });
  t.is(fs.readFileSync(path.join(root, 'real.o'), 'utf8'), 'old', 'never unlinked');
  await lazy.register('a.o', entry);
  await t.throwsAsync(lazy.register('a.o', entry), { code: 'ELAZY' });
  fs.writeFileSync(path.join(root, `${LAZY_TMP_PREFIX}a.o.deadbeef`), 'partial');
  const again = LazyFiles.load(root, path.join(path.dirname(root), 'map'));
  t.false(fs.existsSync(path.join(root, `${LAZY_TMP_PREFIX}a.o.deadbeef`)));
  t.is(again.count, 1);
  t.deepEqual(await again.materializeAll(), { written: 1, lost: 0 });
  await t.throwsAsync(again.register('b.o', entry), { code: 'ELAZY' });
});
