import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import test from './helpers/test.js';
import { run } from './helpers/instance.js';
import { objects } from './helpers/workloads.js';
import { cold, edit, liveStatus, liveUntil, make, missesSince, plainObjects, readers, slowSource, wait } from './helpers/live.js';
import { waitFor } from './helpers/wait.js';

// Live mode and the ways files change in real life (helpers/live.ts: Lua from Debian's redis):
// editors' save patterns, git, a daemon restart, a storm of events.

const git = (cwd: string, ...args: string[]) =>
  run('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.com', '-c', 'init.defaultBranch=main', ...args], { cwd });

test.serial("editors' saves: temp-then-rename and vim's probe-and-backup warm the final content once; a newer save cancels the older warm", async (t) => {
  t.timeout(15 * 60_000);
  const { v, src } = await cold(t, slowSource, 'slow.o');
  const conf = path.join(src, 'luaconf.h');
  const affected = readers(src, 'luaconf.h');
  const text = (n: number) => fs.readFileSync(conf, 'utf8').replace(/#define LUA_IDSIZE\t\d+/, `#define LUA_IDSIZE\t${n}`);

  // Write a temp file, rename it over the header (atomic saves).
  let s0 = await liveStatus(v);
  fs.writeFileSync(`${conf}.tmp~`, text(63));
  fs.renameSync(`${conf}.tmp~`, conf);
  let s = await wait(t, v);
  t.is(s.warmed - s0.warmed, affected, JSON.stringify(s));
  t.is(s.failed, 0);

  // vim: probe with 4913, rename the file to its backup, write it anew, drop the backup. The
  // header is missing meanwhile: that is a save under way, not a change to warm.
  s0 = s;
  fs.writeFileSync(path.join(src, '4913'), '');
  fs.rmSync(path.join(src, '4913'));
  fs.renameSync(conf, `${conf}~`);
  const held = await liveUntil(v, (x) => x.state === 'suspended' && (x.why ?? '').includes('being saved'), 'the missing header held');
  t.is(held.running, 0);
  fs.writeFileSync(conf, fs.readFileSync(`${conf}~`, 'utf8').replace(/#define LUA_IDSIZE\t\d+/, '#define LUA_IDSIZE\t64'));
  fs.rmSync(`${conf}~`);
  s = await wait(t, v);
  t.is(s.warmed - s0.warmed, affected, JSON.stringify(s));
  t.is(s.failed - s0.failed, 0, 'no warm run of a tree without the header');

  // Saved again while its warm run compiles: that run is cancelled, the final content warmed once.
  s0 = s;
  const slow = path.join(src, 'slow.c');
  fs.appendFileSync(slow, 'int save1;\n');
  await liveUntil(v, (x) => x.running_sources.some((f) => f.endsWith('/slow.c')), 'slow.c being warmed');
  fs.appendFileSync(slow, 'int save2;\n');
  s = await wait(t, v);
  // The older content's run is cancelled (at least once: a slow machine can see the second
  // save's events in two reads, each cancelling the run under way), or, when it ended before
  // those events were read, refused to store (its input changed under it): never stored.
  t.true(s.cancelled - s0.cancelled + (s.not_stored - s0.not_stored) >= 1, JSON.stringify(s));
  t.is(s.warmed - s0.warmed, 1, 'the final content warmed once');

  const before = await v.stats();
  const r = await make(v, src, 'o', 'slow.o');
  t.is(r.code, 0, r.err);
  t.is(missesSince(before, await v.stats()), 0, 'the build after the saves compiled nothing');
  const want = await plainObjects(t, v, src, 'slow.o');
  const got = objects(src);
  t.deepEqual(
    [...got.keys()].filter((k) => !got.get(k)!.equals(want.get(k)!)),
    [],
  );
});

test.serial(
  'git: nothing is warmed while .git/index.lock exists; a checkout of another branch is; so is an edit made while the daemon was stopped',
  async (t) => {
    t.timeout(15 * 60_000);
    const { v, src } = await cold(t);
    const root = path.dirname(path.dirname(path.dirname(src)));
    const conf = path.join(src, 'luaconf.h');
    const affected = readers(src, 'luaconf.h');
    fs.writeFileSync(path.join(root, '.gitignore'), '*.o\n*.d\n');
    t.is((await git(root, 'init', '-q')).code, 0);
    t.is((await git(root, 'add', '-A')).code, 0);
    t.is((await git(root, 'commit', '-qm', 'base')).code, 0);
    // Another branch, made in a clone: this tree does not change until the checkout.
    const clone = path.join(path.dirname(v.dir), 'clone');
    t.is((await git(path.dirname(v.dir), 'clone', '-q', root, clone)).code, 0);
    fs.writeFileSync(
      path.join(clone, 'deps', 'lua', 'src', 'luaconf.h'),
      fs.readFileSync(conf, 'utf8').replace('#define LUA_IDSIZE\t60', '#define LUA_IDSIZE\t70'),
    );
    t.is((await git(clone, 'commit', '-qam', 'other')).code, 0);
    t.is((await git(root, 'fetch', '-q', clone, 'main:other')).code, 0);
    let s0 = await wait(t, v);

    // git at work (its index lock held): the edit waits.
    const lock = path.join(root, '.git', 'index.lock');
    fs.writeFileSync(lock, '');
    fs.writeFileSync(conf, fs.readFileSync(conf, 'utf8').replace('#define LUA_IDSIZE\t60', '#define LUA_IDSIZE\t71'));
    const held = await liveUntil(v, (x) => x.state === 'suspended' && (x.why ?? '').includes('index.lock'), 'warming held for the index lock');
    t.is(held.warmed, s0.warmed);
    t.is(held.running, 0);
    fs.rmSync(lock);
    let s = await wait(t, v);
    t.is(s.warmed - s0.warmed, affected, JSON.stringify(s));

    // A real checkout of the other branch: warmed, and the build after it compiles nothing.
    t.is((await git(root, 'checkout', '-q', '--', '.')).code, 0);
    s0 = await wait(t, v);
    t.is((await git(root, 'checkout', '-q', 'other')).code, 0);
    s = await wait(t, v);
    t.is(s.warmed - s0.warmed, affected, JSON.stringify(s));
    let before = await v.stats();
    t.is((await make(v, src, 'o')).code, 0);
    t.is(missesSince(before, await v.stats()), 0, 'the build after the checkout compiled nothing');

    // An edit while no daemon runs: the next daemon reads its journal and warms it.
    await v.stop();
    fs.writeFileSync(conf, fs.readFileSync(conf, 'utf8').replace('#define LUA_IDSIZE\t70', '#define LUA_IDSIZE\t72'));
    s = await wait(t, v);
    t.is(s.commands, 38);
    t.is(s.warmed, affected, JSON.stringify(s));
    before = await v.stats();
    t.is((await make(v, src, 'o')).code, 0);
    t.is(missesSince(before, await v.stats()), 0, 'the build after the restart compiled nothing');
  },
);

test.serial('a storm of events (thousands of files written): nothing is warmed while it lasts, then what changed in it, each compile once', async (t) => {
  t.timeout(15 * 60_000);
  const { v, src } = await cold(t);
  const affected = readers(src, 'luaconf.h');
  const s0 = await liveStatus(v);
  // A burst of 3 000 files as fast as the machine writes them (a storm at any load: live mode
  // counts events per second), then a file every 20 ms, until the test ends it: the storm
  // lasts as long as the test needs, however slow the machine.
  const script = `
    const fs = require('fs');
    const dir = ${JSON.stringify(src)};
    for (let i = 0; i < 3000; i++) fs.writeFileSync(dir + '/storm-' + i + '.tmp', 'x');
    let i = 3000;
    setInterval(() => fs.writeFileSync(dir + '/storm-' + i++ + '.tmp', 'x'), 20);`;
  const storm = spawn(process.execPath, ['-e', script], { stdio: 'ignore' });
  const ended = new Promise<unknown>((r) => storm.on('close', r));
  try {
    await waitFor(() => fs.readdirSync(src).filter((f) => f.startsWith('storm-')).length > 3000, 'the burst written', { ms: 120_000 });
    // Two inputs change during the storm: luaconf.h (most compiles read it), then lstrlib.c
    // (one of those): held while the storm lasts, then warmed together, each compile once.
    edit(path.join(src, 'luaconf.h'), '#define LUA_IDSIZE\t60', '#define LUA_IDSIZE\t61');
    const held = await liveUntil(v, (x) => x.state === 'suspended' && (x.why ?? '').includes('storm'), 'warming held for the storm');
    t.is(held.warmed, s0.warmed);
    t.is(held.running, 0);
    edit(path.join(src, 'lstrlib.c'), '"invalid capture index"', '"invalid capture index (storm)"');
    const both = await liveUntil(v, (x) => x.changed === 2, 'both changes seen');
    t.is(both.state, 'suspended');
    t.is(both.warmed, s0.warmed);
    t.is(both.running, 0);
  } finally {
    storm.kill();
    await ended;
  }
  const s = await wait(t, v);
  t.is(s.warmed - s0.warmed, affected, JSON.stringify(s));
  t.is(s.cancelled, 0);
  const before = await v.stats();
  t.is((await make(v, src, 'o')).code, 0);
  t.is(missesSince(before, await v.stats()), 0, 'the build after the storm compiled nothing');
});
