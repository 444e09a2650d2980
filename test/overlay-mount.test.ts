import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import test from './helpers/test.js';
import { CLI, instance, run, SHIM, type Instance } from './helpers/instance.js';
import { readMountRecord, writeMountRecord } from '../ipc/mounts.js';
import { processes } from './helpers/procs.js';
import { waitFor } from './helpers/wait.js';
import { isMounted, mountFor, tree, treeDiff } from './helpers/overlay.js';
import { ensureSources, luaTree } from './helpers/workloads.js';

// The overlay as a passthrough (docs/overlay.md): mounted over a directory with real FUSE,
// everything a build does inside goes to the real directory beneath, which after the unmount
// holds exactly what a plain build leaves.

function lua(to: string): string {
  ensureSources({ quiet: true });
  return luaTree(to);
}
const MAKE = ['-j2', 'all', 'MYCFLAGS=-O0 -MMD'];

test('a real make build of Lua inside a mounted dir, cold then warm through vrift (objects lazy until the links read them): after unmount every file is byte-identical to a plain build', async (t) => {
  const inst = instance(t);
  const plainSrc = lua(path.join(inst.dir, 'plain'));
  const plain = await run('make', [...MAKE, 'CC=gcc'], { cwd: plainSrc, env: { ...inst.env, VRIFT_DISABLE: '1' } });
  t.is(plain.code, 0, plain.err);

  const src = lua(path.join(inst.dir, 'mounted'));
  // The real dir, seen from here past the mount (a descriptor opened before it; closed before the unmount).
  const fd = fs.openSync(src, 'r');
  let fdOpen = true;
  await mountFor(t, inst, src);
  t.teardown(() => void (fdOpen && fs.closeSync(fd)));
  const mounts = await inst.vrift(['mounts', '--json']);
  t.like(JSON.parse(mounts.out)[0], { dir: src, state: 'mounted' });

  // Cold (misses: the compiler writes through the overlay), clean, warm (hits written through it).
  const cold = await inst.vrift(['run', '--', 'make', ...MAKE, `CC=${SHIM} gcc`], { cwd: src });
  t.is(cold.code, 0, cold.err);
  t.regex(cold.err, / 0 hits, \d+ misses/);
  t.is((await run('make', ['clean'], { cwd: src })).code, 0);
  t.false(fs.existsSync(path.join(src, 'lapi.o')));
  // Warm, the objects alone first: every one a lazy hit, no bytes beneath until something reads it.
  const objs = fs.readdirSync(plainSrc).filter((n) => n.endsWith('.o'));
  const warmObjs = await inst.vrift(['run', '--', 'make', '-j2', 'MYCFLAGS=-O0 -MMD', ...objs, `CC=${SHIM} gcc`], { cwd: src });
  t.is(warmObjs.code, 0, warmObjs.err);
  t.regex(warmObjs.err, new RegExp(`, ${objs.length} hits, 0 misses`));
  const listed = JSON.parse((await inst.vrift(['mounts', '--json'])).out) as { lazy: { files: number } }[];
  t.is(listed[0]!.lazy.files, objs.length, 'every object lazy');
  for (const o of objs) t.false(fs.existsSync(`/proc/self/fd/${fd}/${o}`), `${o}: not beneath yet`);
  // The rest of the build (ar and the links read every object in), then the binary.
  const warm = await inst.vrift(['run', '--', 'make', ...MAKE, `CC=${SHIM} gcc`], { cwd: src });
  t.is(warm.code, 0, warm.err);
  t.regex(warm.err, / 0 misses/);
  t.is(JSON.parse((await inst.vrift(['mounts', '--json'])).out)[0].lazy.files, 0, 'all read in by the links');
  fs.closeSync(fd);
  fdOpen = false;
  // The binary runs from inside the mount.
  const hello = await run(path.join(src, 'lua'), ['-e', 'print(6*7)']);
  t.is(hello.out, '42\n');
  const upToDate = await run('make', [...MAKE, 'CC=gcc', '-q'], { cwd: src });
  t.is(upToDate.code, 0, 'make -q: nothing to rebuild inside the mount');

  const un = await inst.vrift(['unmount', src]);
  t.is(un.code, 0, un.err);
  t.false(isMounted(src));
  t.deepEqual(treeDiff(tree(plainSrc), tree(src)), []);
  t.is((await run('make', [...MAKE, 'CC=gcc', '-q'], { cwd: src })).code, 0, 'make -q after the unmount: nothing to rebuild');
  t.is((await inst.vrift(['mounts'])).out, 'no directories mounted\n');
});

test('each operation passes through: mkdir, create, write, rename, hard link, symlink, chmod, truncate, utimens, unlink, rmdir', async (t) => {
  const inst = instance(t);
  const dir = path.join(inst.dir, 'out');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'before'), 'was here');
  await mountFor(t, inst, dir);
  t.is(fs.readFileSync(path.join(dir, 'before'), 'utf8'), 'was here', 'what DIR held before shows through');
  fs.mkdirSync(path.join(dir, 'd/e'), { recursive: true, mode: 0o750 });
  fs.writeFileSync(path.join(dir, 'd/a'), 'abcdef', { mode: 0o640 });
  fs.renameSync(path.join(dir, 'd/a'), path.join(dir, 'd/b'));
  fs.linkSync(path.join(dir, 'd/b'), path.join(dir, 'd/e/c'));
  fs.symlinkSync('../b', path.join(dir, 'd/e/s'));
  t.is(fs.readFileSync(path.join(dir, 'd/e/s'), 'utf8'), 'abcdef');
  fs.chmodSync(path.join(dir, 'd/b'), 0o755);
  fs.truncateSync(path.join(dir, 'd/b'), 3);
  fs.utimesSync(path.join(dir, 'd/b'), 1_000_000, 1_000_000);
  fs.writeFileSync(path.join(dir, 'gone'), 'x');
  fs.unlinkSync(path.join(dir, 'gone'));
  fs.mkdirSync(path.join(dir, 'empty'));
  fs.rmdirSync(path.join(dir, 'empty'));
  const h = fs.openSync(path.join(dir, 'd/e/c'), 'r+');
  fs.writeSync(h, 'X', 1, 'utf8'); // through the hard link's other name, at an offset
  fs.closeSync(h);

  t.is((await inst.vrift(['unmount', dir])).code, 0);
  t.false(isMounted(dir));
  // Beneath, as the operations left it.
  const b = fs.statSync(path.join(dir, 'd/b'));
  t.is(b.mode & 0o777, 0o755);
  t.is(b.nlink, 2);
  t.is(b.ino, fs.statSync(path.join(dir, 'd/e/c')).ino, 'a real hard link');
  t.is(fs.readFileSync(path.join(dir, 'd/b'), 'utf8'), 'aXc');
  t.is(fs.readlinkSync(path.join(dir, 'd/e/s')), '../b');
  t.is(fs.statSync(path.join(dir, 'd/e')).mode & 0o777, 0o750);
  t.false(fs.existsSync(path.join(dir, 'gone')));
  t.false(fs.existsSync(path.join(dir, 'empty')));
  t.false(fs.existsSync(path.join(dir, 'd/a')));
  t.is(fs.readFileSync(path.join(dir, 'before'), 'utf8'), 'was here');
});

test('utimens keeps the time given (to the millisecond: fuse-native carries ms) and touch sets now', async (t) => {
  const inst = instance(t);
  const dir = path.join(inst.dir, 'out');
  fs.mkdirSync(dir);
  await mountFor(t, inst, dir);
  const f = path.join(dir, 'f');
  fs.writeFileSync(f, 'x');
  fs.utimesSync(f, 1_700_000_000.123, 1_600_000_000.456);
  t.is(fs.statSync(f).mtimeMs, 1_600_000_000_456);
  const before = Date.now() - 2000;
  t.is((await run('touch', [f])).code, 0);
  t.true(fs.statSync(f).mtimeMs >= before, 'touch: now');
  t.is((await run('touch', ['-a', '-d', '@1000', f])).code, 0);
  t.true(fs.statSync(f).mtimeMs >= before, 'touch -a leaves the mtime alone (UTIME_OMIT reads as now)');
});

test('vrift mount: FUSE unavailable (no /dev/fuse, as in a container) is said once, exit 0, nothing mounted', async (t) => {
  const inst = instance(t);
  const dir = path.join(inst.dir, 'out');
  fs.mkdirSync(dir);
  // A private mount namespace whose /dev has no fuse device: what a container without it looks like.
  const r = await run('unshare', ['-m', 'sh', '-c', `mount -t tmpfs none /dev && exec "${process.execPath}" "${CLI}" mount "${dir}"`], { env: inst.env });
  t.is(r.code, 0, r.err);
  t.regex(r.err, /^vrift: FUSE is unavailable here \(no \/dev\/fuse here\): outputs are written as before\n$/);
  t.false(isMounted(dir));
  t.is((await inst.vrift(['mounts'])).out, 'no directories mounted\n');
});

test('vrift mount with no DIR mounts the project lazy_dirs (velo.toml, relative to it); unmount with none says so', async (t) => {
  const inst = instance(t);
  fs.writeFileSync(path.join(inst.dir, 'velo.toml'), '[l2_cache]\nlazy_dirs = ["build"]\n');
  const dir = path.join(inst.dir, 'build');
  t.teardown(() => {
    if (isMounted(dir)) execFileSync('fusermount', ['-uz', dir]);
  });
  const m = await inst.vrift(['mount'], { cwd: inst.dir });
  t.is(m.code, 0, m.err);
  t.true(isMounted(dir), 'made and mounted');
  const again = await inst.vrift(['mount', dir]);
  t.regex(again.err, /is already mounted/);
  const u = await inst.vrift(['unmount']);
  t.is(u.code, 0, u.err);
  t.false(isMounted(dir));
  const none = await inst.vrift(['unmount', dir]);
  t.is(none.code, 1);
  t.regex(none.err, /is not mounted/);
});

test('the overlay server killed (SIGKILL) mid-use: its keeper detaches the dead mount and mounts again; nothing written is lost', async (t) => {
  const inst = instance(t);
  const dir = path.join(inst.dir, 'out');
  fs.mkdirSync(dir);
  const keeper = await mountFor(t, inst, dir);
  fs.writeFileSync(path.join(dir, 'before'), 'one');
  const servers = () => processes((p) => p.cmdline.includes(`${dir}\0--serve`)).map((p) => p.pid);
  const [server] = servers();
  t.truthy(server, 'a server process under the keeper');
  const killedAt = Date.now();
  process.kill(server!, 'SIGKILL');
  await waitFor(() => {
    try {
      // The keeper logs it once the new server's mount is in place (the dead one is detached before).
      const again = /server \d+ mounted again/.test(fs.readFileSync(path.join(inst.home, 'log', 'overlay.log'), 'utf8'));
      return again && isMounted(dir) && fs.readFileSync(path.join(dir, 'before'), 'utf8') === 'one';
    } catch {
      return false; // ENOTCONN until the keeper mounted again
    }
  }, 'the mount served again');
  t.log(`served again ${Date.now() - killedAt} ms after the kill`);
  t.true(
    servers().some((p) => p !== server),
    'by a new server',
  );
  const list = JSON.parse((await inst.vrift(['mounts', '--json'])).out) as { pid: number; state: string }[];
  t.like(list[0], { pid: keeper, state: 'mounted' });
  fs.writeFileSync(path.join(dir, 'after'), 'two');
  t.is((await inst.vrift(['unmount', dir])).code, 0);
  t.false(isMounted(dir));
  t.is(fs.readFileSync(path.join(dir, 'before'), 'utf8'), 'one');
  t.is(fs.readFileSync(path.join(dir, 'after'), 'utf8'), 'two');
});

test('vrift run --lazy DIR mounts DIR before the build, says so, and leaves it mounted', async (t) => {
  const inst = instance(t);
  const dir = path.join(inst.dir, 'build');
  t.teardown(async () => {
    if (isMounted(dir)) await inst.vrift(['unmount', dir]);
    if (isMounted(dir)) execFileSync('fusermount', ['-uz', dir]);
  });
  // The build checks from inside that its output dir is the overlay by then.
  const r = await inst.vrift(['run', '--lazy', 'build', '--', 'sh', '-c', `grep -q " ${dir} fuse.vrift " /proc/self/mounts && echo out > build/x`]);
  t.is(r.code, 0, r.err);
  t.regex(r.err, new RegExp(`vrift: ${dir} mounted \\(overlay pid \\d+\\)`));
  t.true(isMounted(dir), 'still mounted after the build');
  const again = await inst.vrift(['run', '--lazy', 'build', '--', 'true']);
  t.regex(again.err, /is already mounted/);
  t.is((await inst.vrift(['unmount', dir])).code, 0);
  t.is(fs.readFileSync(path.join(dir, 'x'), 'utf8'), 'out\n');
});

test('the daemon SIGKILLed in the middle of a build inside a mounted dir: the build succeeds, the mount stays served, objects equal plain gcc', async (t) => {
  const inst = instance(t);
  const dir = path.join(inst.dir, 'p');
  fs.mkdirSync(dir);
  const n = 4;
  for (let i = 0; i < n; i++) fs.writeFileSync(path.join(dir, `s${i}.c`), `int f${i}(int x) { return x * ${i + 3}; }\n`);
  // -j1 in this order: two compiles, the kill, two more (the shim then finds no daemon, or starts one).
  fs.writeFileSync(
    path.join(dir, 'Makefile'),
    `all: s0.o s1.o kill s2.o s3.o\nkill:\n\tkill -9 $$(cat daemon.pid)\n%.o: %.c\n\t$(CC) -O2 -c $< -o $@\n.PHONY: all kill\n`,
  );
  const keeper = await mountFor(t, inst, dir);
  const daemon = (await inst.stats()).daemon.pid;
  fs.writeFileSync(path.join(dir, 'daemon.pid'), String(daemon));
  const r = await run('make', ['-j1', `CC=${SHIM} gcc`], { cwd: dir, env: inst.env });
  t.is(r.code, 0, r.err);
  t.throws(() => process.kill(daemon, 0), undefined, 'the daemon was killed');
  t.true(isMounted(dir));
  t.like(JSON.parse((await inst.vrift(['mounts', '--json'])).out)[0], { pid: keeper, state: 'mounted' });
  for (let i = 0; i < n; i++) {
    const p = await run('gcc', ['-O2', '-c', `s${i}.c`, '-o', `plain${i}.o`], { cwd: dir });
    t.is(p.code, 0);
    t.deepEqual(fs.readFileSync(path.join(dir, `s${i}.o`)), fs.readFileSync(path.join(dir, `plain${i}.o`)), `s${i}.o`);
  }
  t.is((await inst.vrift(['unmount', dir])).code, 0);
  for (let i = 0; i < n; i++) t.true(fs.existsSync(path.join(dir, `s${i}.o`)), `s${i}.o beneath`);
});

test('vrift run --lazy DIR run from inside DIR: the build works in the overlay, not in the directory beneath it', async (t) => {
  const inst = instance(t);
  const dir = path.join(inst.dir, 'build');
  fs.mkdirSync(dir);
  t.teardown(async () => {
    if (isMounted(dir)) await inst.vrift(['unmount', dir]);
    if (isMounted(dir)) execFileSync('fusermount', ['-uz', dir]);
  });
  // The same device for `.` and DIR by its path: the cwd is the mount's root, not the one beneath.
  const r = await inst.vrift(['run', '--lazy', '.', '--', 'sh', '-c', `test "$(stat -c %d .)" = "$(stat -c %d "${dir}")"`], { cwd: dir });
  t.is(r.code, 0, r.err);
  t.true(isMounted(dir));
});

test('a DIR given through a symlink is mounted, listed and unmounted by its real path, once', async (t) => {
  const inst = instance(t);
  const real = path.join(inst.dir, 'real');
  fs.mkdirSync(path.join(real, 'out'), { recursive: true });
  fs.symlinkSync(real, path.join(inst.dir, 'link'));
  const dir = path.join(inst.dir, 'link', 'out');
  const realOut = path.join(real, 'out');
  t.teardown(async () => {
    if (isMounted(realOut)) await inst.vrift(['unmount', realOut]);
    if (isMounted(realOut)) execFileSync('fusermount', ['-uz', realOut]);
  });
  const m = await inst.vrift(['mount', dir]);
  t.is(m.code, 0, m.err);
  t.true(isMounted(realOut));
  // The server compares the kernel's table against the path it serves: the real one (through
  // the symlink it would see itself unmounted from outside and stop).
  t.true(processes((p) => p.cmdline.includes(`${realOut}\0--serve`)).length === 1, 'the server serves the real path');
  const again = await inst.vrift(['mount', dir]);
  t.regex(again.err, /is already mounted/);
  const list = JSON.parse((await inst.vrift(['mounts', '--json'])).out) as { dir: string; state: string }[];
  t.deepEqual(
    list.map((l) => [l.dir, l.state]),
    [[realOut, 'mounted']],
  );
  const stacked = fs
    .readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .filter((l) => l.split(' ')[1] === realOut);
  t.is(stacked.length, 1, 'one overlay on it, not two stacked');
  fs.writeFileSync(path.join(dir, 'x'), 'through');
  const u = await inst.vrift(['unmount', dir]);
  t.is(u.code, 0, u.err);
  t.false(isMounted(realOut));
  t.is(fs.readFileSync(path.join(realOut, 'x'), 'utf8'), 'through');
});

/** SIGKILLs the keeper of `dir` with its server (one process group), leaving a dead mount (ENOTCONN). */
async function killOverlay(inst: Instance, dir: string): Promise<void> {
  const keeper = readMountRecord(path.join(inst.home, 'run'), dir)!.pid;
  process.kill(-keeper, 'SIGKILL');
  await waitFor(() => {
    try {
      fs.statSync(dir);
      return false;
    } catch (e) {
      return (e as NodeJS.ErrnoException).code === 'ENOTCONN';
    }
  }, 'the mount dead');
  if (!isMounted(dir)) throw new Error(`${dir}: the dead mount is gone from the table`);
}

test('a dead mount (keeper and server SIGKILLed) is not "already mounted": vrift mount detaches it and mounts again; a build inside works', async (t) => {
  const inst = instance(t);
  const dir = path.join(inst.dir, 'p');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 's.c'), 'int f(int x) { return x + 1; }\n');
  const first = await mountFor(t, inst, dir);
  await killOverlay(inst, dir);
  const m = await inst.vrift(['mount', dir]);
  t.is(m.code, 0, m.err);
  t.regex(m.err, /mounted \(overlay pid \d+\)/);
  const list = JSON.parse((await inst.vrift(['mounts', '--json'])).out) as { pid: number; state: string }[];
  t.is(list.length, 1);
  t.is(list[0]!.state, 'mounted');
  t.not(list[0]!.pid, first);
  const cc = await inst.vrift(['run', '--', 'gcc', '-c', 's.c', '-o', 's.o'], { cwd: dir });
  t.is(cc.code, 0, cc.err);
  t.true(fs.statSync(path.join(dir, 's.o')).size > 0);
  t.is((await inst.vrift(['unmount', dir])).code, 0);
  t.false(isMounted(dir));
  t.true(fs.existsSync(path.join(dir, 's.o')), 'written beneath');
});

test('vrift unmount never signals a process that merely reuses the recorded pid; it still detaches the dead mount', async (t) => {
  const inst = instance(t);
  const dir = path.join(inst.dir, 'out');
  fs.mkdirSync(dir);
  await mountFor(t, inst, dir);
  await killOverlay(inst, dir);
  const other = spawn('sleep', ['60'], { stdio: 'ignore' });
  t.teardown(() => void other.kill('SIGKILL'));
  const runDir = path.join(inst.home, 'run');
  writeMountRecord(runDir, { ...readMountRecord(runDir, dir)!, pid: other.pid! });
  const u = await inst.vrift(['unmount', dir]);
  t.is(u.code, 0, u.err);
  t.false(isMounted(dir));
  t.true(
    processes((p) => p.cmdline.startsWith('sleep\0')).some((p) => p.pid === other.pid),
    'the unrelated process was not signalled',
  );
});

test('vrift unmount refuses while a process uses files inside DIR (it would get ENOTCONN), names it, and --force unmounts anyway', async (t) => {
  const inst = instance(t);
  const dir = path.join(inst.dir, 'out');
  fs.mkdirSync(dir);
  await mountFor(t, inst, dir);
  fs.writeFileSync(path.join(dir, 'f'), 'x');
  // A process with its cwd inside and one with a file open inside: what a running build holds.
  const inCwd = spawn('sleep', ['60'], { cwd: dir, stdio: 'ignore' });
  t.teardown(() => void inCwd.kill('SIGKILL'));
  const busy = await inst.vrift(['unmount', dir]);
  t.is(busy.code, 1);
  t.regex(busy.err, new RegExp(`is in use by sleep \\(pid ${inCwd.pid}\\).*--force`));
  t.true(isMounted(dir), 'still mounted');
  inCwd.kill('SIGKILL');
  await new Promise((r) => inCwd.once('exit', r));
  const fd = fs.openSync(path.join(dir, 'f'), 'r');
  const held = await inst.vrift(['unmount', dir]);
  t.is(held.code, 1);
  t.regex(held.err, /is in use by node/);
  t.is(fs.readFileSync(fd, 'utf8'), 'x', 'the open file still served');
  try {
    const forced = await inst.vrift(['unmount', '--force', dir]);
    t.is(forced.code, 0, forced.err);
    t.false(isMounted(dir));
  } finally {
    try {
      fs.closeSync(fd);
    } catch {
      // ENOTCONN once forced: what --force warns of
    }
  }
});
