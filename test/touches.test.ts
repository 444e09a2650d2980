import test from './helpers/test.js';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { memoryLogger } from '../daemon/log.js';
import { TouchBatcher } from '../daemon/store/touches.js';

// TouchBatcher.close(): what is pending is written, no timer is left, a second close()
// is the same promise, and an add() after it starts nothing.

test('close() writes pending last-use times once, leaves no timer, and is idempotent', async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'vrift-touches-'));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  fs.writeFileSync(path.join(root, 'a'), 'a');
  const when = Date.UTC(2020, 0, 1);
  const b = new TouchBatcher(root, 60_000, memoryLogger().child('store'));
  b.add('a', when);
  const first = b.close();
  t.is(b.close(), first, 'the same promise');
  await first;
  t.is(fs.statSync(path.join(root, 'a')).mtimeMs, when);
  // After close(): never written, and no timer keeps the process up.
  b.add('a', when + 1000);
  t.is(process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length, 0);
  await b.close();
  t.is(fs.statSync(path.join(root, 'a')).mtimeMs, when);
});
