import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from './helpers/test.js';
import { DirCache } from '../daemon/hot/dir-cache.js';
import { FileHashes } from '../daemon/hot/file-hashes.js';
import { loadAddon, Watcher } from '../daemon/hot/watcher.js';
import { coarseSlackMs } from '../daemon/hot/fs-clock.js';

// Inputs trusted from inotify instead of a stat per lookup: every way a file or the path to
// it can change must still be seen once sync() has run, and what inotify cannot see
// (symlinks, other hard links, lost events) must fall back to stat'ing.

const OLD = new Date(Date.now() - 60_000);

function tmp(t: { teardown(f: () => void): void }): string {
  const d = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'vrift-watch-')));
  t.teardown(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

function write(file: string, text: string) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
  fs.utimesSync(file, OLD, OLD); // old enough to be memoised (FileHashes' recentMs)
}

function setup(t: { teardown(f: () => void): void }) {
  const w = Watcher.open({ drainEveryMs: 60_000 });
  if (!w) throw new Error('native/build/vrift_watch.node did not load: run make -C native');
  t.teardown(() => w.close());
  return { w, hashes: new FileHashes(Date.now, 2000, 200_000, w), dirs: new DirCache(Date.now, 2000, w) };
}

// A watched tree with one memoised header in it.
function header(t: { teardown(f: () => void): void }, text: string) {
  const d = tmp(t);
  const s = setup(t);
  const h = path.join(d, 'inc', 'a.h');
  write(h, text);
  return { d, h, ...s, first: s.hashes.get(h)!.hash };
}

// Counts fs.statSync calls made while f runs.
function stats<T>(f: () => T): [T, number] {
  const real = fs.statSync;
  let n = 0;
  (fs as { statSync: unknown }).statSync = (...a: unknown[]) => {
    n++;
    return (real as (...x: unknown[]) => unknown)(...a);
  };
  try {
    return [f(), n];
  } finally {
    (fs as { statSync: unknown }).statSync = real;
  }
}

test.serial('a watched, unchanged file is answered without a stat; a write is seen after sync()', (t) => {
  const { w, hashes, h, first } = header(t, 'one');
  const [again, n] = stats(() => hashes.get(h)!.hash);
  t.is(again, first);
  t.is(n, 0, 'trusted: no stat');
  fs.writeFileSync(h, 'two'); // same size, within the same second
  fs.utimesSync(h, OLD, OLD);
  w.sync();
  t.not(hashes.get(h)!.hash, first);
  t.true(w.watched >= 2, 'the directory and its ancestors are watched');
});

test.serial('renaming a directory on the path and putting another in its place is seen', (t) => {
  const d = tmp(t);
  const { w, hashes } = setup(t);
  const h = path.join(d, 'proj', 'include', 'x.h');
  write(h, 'old header');
  const first = hashes.get(h)!.hash;
  fs.renameSync(path.join(d, 'proj'), path.join(d, 'proj.bak'));
  write(h, 'new header');
  w.sync();
  t.not(hashes.get(h)!.hash, first);
  // And the rename of the file itself over the old one (an editor's save).
  const tmpFile = path.join(d, 'proj', 'include', '.x.h.swp');
  write(tmpFile, 'saved header');
  const before = hashes.get(h)!.hash;
  fs.renameSync(tmpFile, h);
  w.sync();
  t.not(hashes.get(h)!.hash, before);
});

test.serial('a file reached through a symlinked directory, or with a second hard link, is stat-checked every time', (t) => {
  const d = tmp(t);
  const { w, hashes } = setup(t);
  const real = path.join(d, 'real', 'a.h');
  write(real, 'aaa');
  fs.symlinkSync(path.join(d, 'real'), path.join(d, 'link'));
  const viaLink = path.join(d, 'link', 'a.h');
  const h1 = hashes.get(viaLink)!.hash;
  const [, n] = stats(() => hashes.get(viaLink));
  t.true(n > 0, 'not trusted through a symlink');
  fs.writeFileSync(real, 'bbbb');
  t.not(hashes.get(viaLink)!.hash, h1);

  const linked = path.join(d, 'inc', 'l.h');
  write(linked, 'ccc');
  fs.mkdirSync(path.join(d, 'other'));
  fs.linkSync(linked, path.join(d, 'other', 'l.h'));
  const h2 = hashes.get(linked)!.hash;
  fs.writeFileSync(path.join(d, 'other', 'l.h'), 'dddd'); // no event in inc/
  w.sync();
  t.not(hashes.get(linked)!.hash, h2);
  t.true(w.counts.refused >= 1);
});

test.serial('listings of watched directories follow creates and deletes; a missing directory is answered from its parent', (t) => {
  const d = tmp(t);
  const { w, dirs } = setup(t);
  write(path.join(d, 'inc', 'a.h'), '');
  dirs.beginRound();
  t.true(dirs.has(path.join(d, 'inc'), 'a.h'));
  t.false(dirs.has(path.join(d, 'inc'), 'b.h'));
  t.false(dirs.has(path.join(d, 'inc', 'sys'), 'b.h'));
  const [, n] = stats(() => {
    dirs.beginRound();
    return [dirs.has(path.join(d, 'inc'), 'b.h'), dirs.has(path.join(d, 'inc', 'sys'), 'b.h')];
  });
  t.is(n, 0, 'no stat for a watched listing nor for a directory its watched parent lacks');
  fs.writeFileSync(path.join(d, 'inc', 'b.h'), '');
  write(path.join(d, 'inc', 'sys', 'b.h'), '');
  fs.rmSync(path.join(d, 'inc', 'a.h'));
  w.sync();
  dirs.beginRound();
  t.true(dirs.has(path.join(d, 'inc'), 'b.h'));
  t.true(dirs.has(path.join(d, 'inc', 'sys'), 'b.h'));
  t.false(dirs.has(path.join(d, 'inc'), 'a.h'));
});

test.serial('a directory under a missing one is answered without a system call, and seen when the tree appears', (t) => {
  const d = tmp(t);
  const { w, dirs } = setup(t);
  write(path.join(d, 'inc', 'a.h'), '');
  const deep = path.join(d, 'inc', 'bits', 'types');
  dirs.beginRound();
  t.false(dirs.has(deep, 'x.h'));
  // A watch cannot be added to a missing directory: count those attempts as well as stats.
  const ensure = w.ensure.bind(w);
  let adds = 0;
  w.ensure = (dir: string) => (fs.existsSync(dir) || adds++, ensure(dir));
  const [absent, n] = stats(() => {
    dirs.beginRound();
    return [dirs.has(deep, 'x.h'), dirs.has(path.join(deep, 'more'), 'y.h')];
  });
  t.deepEqual(absent, [false, false]);
  t.is(n, 0, 'no stat');
  t.is(adds, 0, 'no watch tried on a directory known to be missing');
  write(path.join(deep, 'x.h'), '');
  w.sync();
  dirs.beginRound();
  t.true(dirs.has(deep, 'x.h'), 'mkdir -p of the missing tree is seen');
});

test.serial('lost events (a kernel queue overflow) drop every trust', (t) => {
  const { d, w, hashes, h, first } = header(t, 'first');
  const limit = Number(fs.readFileSync('/proc/sys/fs/inotify/max_queued_events', 'utf8'));
  // Distinct events (different names) until the queue overflows; the change that matters
  // comes last, so its event is among those dropped.
  for (let i = 0; i < limit + 100; i++) fs.writeFileSync(path.join(d, 'inc', `n${i % 4000}.tmp`), String(i));
  fs.writeFileSync(h, 'secnd');
  fs.utimesSync(h, OLD, OLD);
  w.sync();
  t.true(w.counts.overflows >= 1, 'the overflow was seen');
  t.not(hashes.get(h)!.hash, first);
});

test('the clock slack is two coarse-clock ticks and a millisecond, and no write is stamped earlier than that before it happened', (t) => {
  const ns = loadAddon()!.coarseClockNs();
  t.true(ns > 0 && ns <= 12e6, `coarse clock resolution ${ns} ns`);
  const slack = coarseSlackMs(ns);
  t.is(slack, 2 * Math.ceil(ns / 1e6) + 1);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vrift-slack-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  // Writes without a stat between them (no fine-grained timestamp forced): the stamp may lag.
  const stamps: [number, string][] = [];
  for (let i = 0; i < 300; i++) {
    const f = path.join(dir, `f${i}`);
    stamps.push([Date.now(), f]);
    fs.writeFileSync(f, 'x');
  }
  let worst = 0;
  for (const [before, f] of stamps) worst = Math.max(worst, before - fs.statSync(f).ctimeMs);
  t.true(worst < slack, `a ctime ${worst.toFixed(3)} ms before its write`);
});
