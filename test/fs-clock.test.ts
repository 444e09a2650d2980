import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from './helpers/test.js';
import { changedBefore, FsClock, writtenBefore } from '../daemon/hot/fs-clock.js';

// The filesystems' clock against real writes on this machine's filesystem: what was written
// before a reading compares as before it, what is written after never does.

function dir(t: { teardown(f: () => void): void }): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'vrift-fsclock-'));
  t.teardown(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

test('a file written after a reading is never stamped before it; one written before, on the same filesystem, is (multigrain kernels: always)', (t) => {
  const d = dir(t);
  const clock = FsClock.open(d);
  t.teardown(() => clock.close());
  const before = path.join(d, 'before.h');
  const after = path.join(d, 'after.o');
  let sameTick = 0;
  const n = 2000;
  for (let i = 0; i < n; i++) {
    fs.writeFileSync(before, `#define X ${i}\n`); // no stat of it: its stamp is the coarse clock's
    const start = clock.now();
    fs.writeFileSync(after, String(i));
    const a = fs.statSync(after);
    t.false(changedBefore(start, a), `written after, stamped ${a.mtimeMs} before ${start.ms}`);
    t.false(writtenBefore(start, a.dev, a.mtimeMs));
    if (!changedBefore(start, fs.statSync(before))) sameTick++;
  }
  // Without multigrain timestamps (kernels before 6.13) writes in the reading's tick can't
  // be told from later ones: refused, which is safe, so only counted.
  t.log(`written just before, not provably before: ${sameTick} of ${n}`);
  if (fs.statSync(d).dev === clock.now().dev && multigrain(d)) t.is(sameTick, 0);
});

test('without its marker the clock is the wall clock less the slack, for every device', (t) => {
  const clock = FsClock.open(path.join(dir(t), 'no', 'such', 'dir'), { wall: () => 1_000_000, slackMs: 9 });
  const now = clock.now();
  t.deepEqual(now, { ms: 1_000_000, dev: -1, slackMs: 9 });
  t.true(changedBefore(now, { dev: 1, mtimeMs: 999_990, ctimeMs: 999_990 }));
  t.false(changedBefore(now, { dev: 1, mtimeMs: 999_991, ctimeMs: 1 }));
  t.false(changedBefore(now, { dev: 1, mtimeMs: 1, ctimeMs: 999_991 }));
  clock.close();
});

test('a file on another device than the marker is compared with the slack', (t) => {
  const at = { ms: 5000.5, dev: 7, slackMs: 9 };
  t.false(changedBefore(at, { dev: 7, mtimeMs: 5000.5, ctimeMs: 1 }), 'same device: at the reading is not before it');
  t.true(changedBefore(at, { dev: 7, mtimeMs: 5000.4, ctimeMs: 5000.4 }));
  t.false(changedBefore(at, { dev: 8, mtimeMs: 4992, ctimeMs: 1 }), 'another device: within the slack is not before');
  t.true(changedBefore(at, { dev: 8, mtimeMs: 4991, ctimeMs: 4991 }));
  t.true(writtenBefore(at, 7, 4999), 'an output stamped in an earlier millisecond was not written by the compile');
  t.false(writtenBefore(at, 7, 5000), "whole milliseconds (the native shim's): the same millisecond may be after");
});

// Whether this filesystem hands out fine-grained stamps: two writes in one tick, a stat between.
function multigrain(d: string): boolean {
  const f = path.join(d, 'probe');
  for (let i = 0; i < 20; i++) {
    fs.writeFileSync(f, 'a');
    const a = fs.statSync(f, { bigint: true }).mtimeNs;
    fs.writeFileSync(f, 'b');
    const b = fs.statSync(f, { bigint: true }).mtimeNs;
    if (b !== a && b - a < 1_000_000n) return true;
  }
  return false;
}
