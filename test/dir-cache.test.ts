import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from './helpers/test.js';
import { DirCache } from '../daemon/hot/dir-cache.js';

// The absent-candidate check: listings of quiet directories are reused while their mtime
// holds; a directory being written to right now is never listed, its names are stat'ed.

function tmp(t: { teardown(f: () => void): void }): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'vrift-dircache-'));
  t.teardown(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

test('a quiet directory is listed once and reused until its mtime changes', (t) => {
  const d = tmp(t);
  fs.writeFileSync(path.join(d, 'a.h'), '');
  const old = new Date(Date.now() - 60_000);
  fs.utimesSync(d, old, old);
  const c = new DirCache();
  const readdir = fs.readdirSync;
  let listed = 0;
  (fs as { readdirSync: unknown }).readdirSync = (...a: unknown[]) => {
    listed++;
    return (readdir as (...x: unknown[]) => unknown)(...a);
  };
  t.teardown(() => void ((fs as { readdirSync: unknown }).readdirSync = readdir));
  for (let round = 0; round < 3; round++) {
    c.beginRound();
    t.true(c.exists(path.join(d, 'a.h')));
    t.false(c.exists(path.join(d, 'b.h')));
  }
  t.is(listed, 1);
  fs.writeFileSync(path.join(d, 'b.h'), '');
  fs.utimesSync(d, new Date(Date.now() - 30_000), new Date(Date.now() - 30_000));
  c.beginRound();
  t.true(c.exists(path.join(d, 'b.h')), 'a changed mtime means a new listing');
  t.is(listed, 2);
});

test("a directory modified just now is not listed: each candidate is stat'ed, live", (t) => {
  const d = tmp(t);
  fs.writeFileSync(path.join(d, 'x.o'), '');
  const c = new DirCache();
  c.beginRound();
  t.false(c.exists(path.join(d, 'late.h')));
  fs.writeFileSync(path.join(d, 'late.h'), '');
  t.true(c.exists(path.join(d, 'late.h')), 'seen even within the same round');
  t.false(c.exists(path.join(d, 'missing', 'deeper.h')));
  fs.writeFileSync(path.join(d, 'file'), '');
  t.false(c.exists(path.join(d, 'file', 'under-a-file.h')), 'ENOTDIR is absent');
});
