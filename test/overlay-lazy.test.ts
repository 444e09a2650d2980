import fs from 'node:fs';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import test from './helpers/test.js';
import { instance, run, SHIM, type Instance } from './helpers/instance.js';
import { lazyMapFile, lazySocketFile } from '../ipc/lazy-map.js';
import { isMounted, mountFor, tree, treeDiff } from './helpers/overlay.js';
import { processes } from './helpers/procs.js';
import { waitFor } from './helpers/wait.js';

// Lazy hits (docs/overlay.md): a hit's object inside a mounted DIR appears with its size, mode
// and the hit's mtime, with no bytes beneath until something opens it; then it is an ordinary file.

const N = 8;

/** A C project in `root` whose objects and program go to `root/build` (the dir to mount). */
function project(root: string): string {
  fs.mkdirSync(path.join(root, 'build'), { recursive: true });
  const names = Array.from({ length: N }, (_, i) => `s${i}`);
  for (const [i, n] of names.entries()) fs.writeFileSync(path.join(root, `${n}.c`), `int f${i}(int x) { return x * ${i + 3} + ${i}; }\n`);
  fs.writeFileSync(
    path.join(root, 'main.c'),
    `#include <stdio.h>\n${names.map((_, i) => `int f${i}(int);`).join('\n')}\nint main(void) { int s = 0;\n${names.map((_, i) => `  s += f${i}(${i});`).join('\n')}\n  printf("%d\\n", s); return 0; }\n`,
  );
  const objs = [...names, 'main'].map((n) => `build/${n}.o`).join(' ');
  fs.writeFileSync(
    path.join(root, 'Makefile'),
    `OBJS = ${objs}\nall: build/prog\nobjs: $(OBJS)\nbuild/prog: $(OBJS)\n\t$(CC) -o $@ $^\nbuild/%.o: %.c\n\t$(CC) -O2 -c $< -o $@\nclean:\n\trm -f build/*.o build/prog\n.PHONY: all objs clean\n`,
  );
  return path.join(root, 'build');
}

const lazyCount = async (inst: Instance) => (JSON.parse((await inst.vrift(['mounts', '--json'])).out) as { lazy: { files: number; bytes: number } }[])[0]!.lazy;

/** Cold build through vrift, make clean, then a warm `make objs`: every object a lazy hit. */
async function warmLazy(t: ExecutionContext, inst: Instance, src: string, build: string) {
  // A descriptor of the real build dir, opened before the mount covers it: beneath, seen from here.
  // Closed before the unmount (vrift unmount refuses while a process holds something in DIR).
  const fd = fs.openSync(build, 'r');
  let open = true;
  await mountFor(t, inst, build);
  // After mountFor's: run before it (last first), so its unmount finds DIR unused.
  t.teardown(() => void (open && fs.closeSync(fd)));
  const cold = await inst.vrift(['run', '--', 'make', 'all', `CC=${SHIM} gcc`], { cwd: src });
  t.is(cold.code, 0, cold.err);
  t.is((await run('make', ['clean'], { cwd: src })).code, 0);
  const warm = await inst.vrift(['run', '--', 'make', '-j2', 'objs', `CC=${SHIM} gcc`], { cwd: src });
  t.is(warm.code, 0, warm.err);
  t.regex(warm.err, new RegExp(`, ${N + 1} hits, 0 misses`));
  const beneath = (rel: string) => `/proc/self/fd/${fd}/${rel}`;
  const unmount = async () => {
    if (open) fs.closeSync(fd);
    open = false;
    const u = await inst.vrift(['unmount', build]);
    t.is(u.code, 0, u.err);
    t.false(isMounted(build));
  };
  return { beneath, unmount };
}

/** The project's objects built plainly (in `plain/`), and warm through vrift with p/build mounted (all lazy). */
async function lazyAndPlain(t: ExecutionContext) {
  const inst = instance(t);
  const plainBuild = project(path.join(inst.dir, 'plain'));
  t.is((await run('make', ['objs', 'CC=gcc'], { cwd: path.dirname(plainBuild) })).code, 0);
  const src = path.join(inst.dir, 'p');
  const build = project(src);
  return { inst, plainBuild, src, build, ...(await warmLazy(t, inst, src, build)) };
}

test('a warm build in a mounted build dir writes no object bytes; the linker reads them in; after unmount every file equals a plain build', async (t) => {
  const inst = instance(t);
  const plainBuild = project(path.join(inst.dir, 'plain'));
  const p = await run('make', ['all', 'CC=gcc'], { cwd: path.dirname(plainBuild) });
  t.is(p.code, 0, p.err);
  const src = path.join(inst.dir, 'p');
  const build = project(src);
  const { beneath, unmount } = await warmLazy(t, inst, src, build);

  const objs = fs.readdirSync(plainBuild).filter((n) => n.endsWith('.o'));
  t.is(objs.length, N + 1);
  const lazy = await lazyCount(inst);
  t.is(lazy.files, N + 1, 'every object lazy');
  t.is(
    lazy.bytes,
    objs.reduce((a, n) => a + fs.statSync(path.join(plainBuild, n)).size, 0),
  );
  t.regex((await inst.vrift(['mounts'])).out, new RegExp(`^${build}  pid \\d+  ${N + 1} lazy files \\([\\d.]+[KM]?B\\) not yet materialized\n$`));
  for (const n of objs) {
    t.false(fs.existsSync(beneath(n)), `${n}: no file beneath`);
    const st = fs.statSync(path.join(build, n));
    t.is(st.size, fs.statSync(path.join(plainBuild, n)).size, `${n}: its size through the mount`);
    t.is(st.mode & 0o777, 0o644);
    t.is(fs.statSync(path.join(build, n)).mtimeMs, st.mtimeMs, 'the same mtime at every stat');
  }
  t.deepEqual(fs.readdirSync(build).sort(), objs.sort(), 'listed');
  t.is((await run('make', ['-q', 'objs', 'CC=gcc'], { cwd: src })).code, 0, 'make -q: lazy objects are up to date');
  const mtime = fs.statSync(path.join(build, 's0.o')).mtimeMs;

  // The link reads every object: each is fetched, verified and written beneath as it is opened.
  const link = await inst.vrift(['run', '--', 'make', 'all', `CC=${SHIM} gcc`], { cwd: src });
  t.is(link.code, 0, link.err);
  t.is((await run(path.join(build, 'prog'), [])).out, (await run(path.join(plainBuild, 'prog'), [])).out);
  t.is((await lazyCount(inst)).files, 0, 'all read in');
  for (const n of objs) t.true(fs.existsSync(beneath(n)), `${n}: beneath once read`);
  t.is(Math.round(fs.statSync(beneath('s0.o')).mtimeMs), mtime, 'the hit time kept');
  t.is(fs.statSync(path.join(build, 's0.o')).mtimeMs, mtime, 'and seen through the mount');
  t.is((await run('make', ['-q', 'all', 'CC=gcc'], { cwd: src })).code, 0, 'make -q: nothing to do');

  await unmount();
  t.deepEqual(treeDiff(tree(plainBuild), tree(build)), []);
  t.is((await run('make', ['-q', 'all', 'CC=gcc'], { cwd: src })).code, 0, 'make -q after the unmount: nothing to do');
});

test('each operation on a lazy file: open for write, truncate, rename, unlink, hard link, chmod, utimens, O_TRUNC; unread ones are written at unmount', async (t) => {
  const { inst, plainBuild, build, beneath, unmount } = await lazyAndPlain(t);
  const plain = (n: string) => fs.readFileSync(path.join(plainBuild, n));
  const at = (n: string) => path.join(build, n);
  const hitTime = fs.statSync(at('s7.o')).mtimeMs;

  // Open for writing (no truncation): the old bytes are there to be overwritten in part.
  const h = fs.openSync(at('s0.o'), 'r+');
  fs.writeSync(h, 'XY', 4, 'latin1');
  fs.closeSync(h);
  const want0 = Buffer.from(plain('s0.o'));
  want0.write('XY', 4, 'latin1');
  t.deepEqual(fs.readFileSync(at('s0.o')), want0, 'open for write');
  fs.truncateSync(at('s1.o'), 5);
  t.deepEqual(fs.readFileSync(at('s1.o')), plain('s1.o').subarray(0, 5), 'truncate');
  fs.renameSync(at('s2.o'), at('moved.o'));
  t.false(fs.existsSync(at('s2.o')));
  t.deepEqual(fs.readFileSync(at('moved.o')), plain('s2.o'), 'rename');
  fs.unlinkSync(at('s3.o'));
  t.false(fs.existsSync(at('s3.o')), 'unlink');
  t.false(fs.existsSync(beneath('s3.o')));
  fs.linkSync(at('s4.o'), at('link.o'));
  t.deepEqual(fs.readFileSync(at('link.o')), plain('s4.o'), 'hard link');
  t.is(fs.statSync(beneath('s4.o')).ino, fs.statSync(beneath('link.o')).ino, 'one file beneath');
  fs.chmodSync(at('s5.o'), 0o600);
  t.is(fs.statSync(at('s5.o')).mode & 0o777, 0o600);
  t.deepEqual(fs.readFileSync(at('s5.o')), plain('s5.o'), 'chmod');
  fs.utimesSync(at('s6.o'), 1_000_000, 1_000_000);
  t.is(fs.statSync(at('s6.o')).mtimeMs, 1_000_000_000);
  t.deepEqual(fs.readFileSync(at('s6.o')), plain('s6.o'), 'utimens');
  fs.writeFileSync(at('main.o'), 'new'); // O_TRUNC: replaced without fetching
  t.is(fs.readFileSync(at('main.o'), 'utf8'), 'new');
  t.is((await lazyCount(inst)).files, 1, 's7.o is still lazy');
  t.false(fs.existsSync(beneath('s7.o')));

  await unmount();
  t.deepEqual(fs.readFileSync(path.join(build, 's7.o')), plain('s7.o'), 'written at unmount');
  t.is(Math.round(fs.statSync(path.join(build, 's7.o')).mtimeMs), hitTime, 'with the hit time');
  t.deepEqual(fs.readFileSync(path.join(build, 's0.o')), want0);
  t.false(fs.existsSync(path.join(build, 's3.o')));
  t.false(fs.existsSync(lazyMapFile(path.join(inst.home, 'run'), build)), 'no lazy map left');
  t.false(fs.existsSync(lazySocketFile(path.join(inst.home, 'run'), build)), 'nor its socket');
});

test('a lazy file pins its blob: vrift clean keeps it and the file reads whole; a blob gone anyway leaves no file at unmount', async (t) => {
  const { inst, plainBuild, src, build, beneath, unmount } = await lazyAndPlain(t);
  const clean = await inst.vrift(['clean']);
  t.is(clean.code, 0, clean.err);
  t.deepEqual(fs.readFileSync(path.join(build, 's0.o')), fs.readFileSync(path.join(plainBuild, 's0.o')), 'read after vrift clean');
  t.true(fs.existsSync(beneath('s0.o')));

  // The store wiped behind vrift's back: a lazy file's bytes cannot be had.
  fs.rmSync(path.join(inst.home, 'l2'), { recursive: true, force: true });
  await unmount();
  t.true(fs.existsSync(path.join(build, 's0.o')), 'the one read stays');
  t.false(fs.existsSync(path.join(build, 's1.o')), 'never an empty file where the bytes were lost');
  t.is((await run('make', ['-q', 'objs', 'CC=gcc'], { cwd: src })).code, 1, 'make rebuilds it');
});

test('the overlay server SIGKILLed with lazy files: the server its keeper starts reloads the lazy map and serves them', async (t) => {
  const { inst, plainBuild, src, build, beneath, unmount } = await lazyAndPlain(t);
  const before = fs.statSync(path.join(build, 's0.o'));
  const servers = () => processes((p) => p.cmdline.includes(`${build}\0--serve`)).map((p) => p.pid);
  const [server] = servers();
  process.kill(server!, 'SIGKILL');
  await waitFor(() => {
    try {
      return (
        /server \d+ mounted again/.test(fs.readFileSync(path.join(inst.home, 'log', 'overlay.log'), 'utf8')) && fs.statSync(path.join(build, 's0.o')).size > 0
      );
    } catch {
      return false; // ENOTCONN until the keeper mounted again
    }
  }, 'the mount served again');
  t.true(servers().some((p) => p !== server));
  const after = fs.statSync(path.join(build, 's0.o'));
  t.is(after.mtimeMs, before.mtimeMs, 'the same mtime as before the kill');
  t.is(after.size, before.size);
  t.is((await lazyCount(inst)).files, N + 1);
  t.false(fs.existsSync(beneath('s0.o')));
  t.deepEqual(fs.readFileSync(path.join(build, 's0.o')), fs.readFileSync(path.join(plainBuild, 's0.o')));
  // A hit after the restart registers with the new server.
  t.is((await run('make', ['clean'], { cwd: src })).code, 0);
  const again = await inst.vrift(['run', '--', 'make', 'objs', `CC=${SHIM} gcc`], { cwd: src });
  t.regex(again.err, new RegExp(`, ${N + 1} hits, 0 misses`));
  t.is((await lazyCount(inst)).files, N + 1);
  await unmount();
  t.deepEqual(treeDiff(tree(plainBuild), tree(build)), []);
});

test('a hit onto an existing file is written in full beneath, never lazy (the kernel may cache its old size)', async (t) => {
  const { inst, plainBuild, src, build, beneath, unmount } = await lazyAndPlain(t);
  // An old, shorter object at the path, stat'ed through the mount (its attributes now cached).
  fs.writeFileSync(path.join(build, 's0.o'), 'old');
  t.is(fs.statSync(path.join(build, 's0.o')).size, 3);
  const again = await inst.vrift(['run', '--', 'make', '-B', 'build/s0.o', `CC=${SHIM} gcc`], { cwd: src });
  t.is(again.code, 0, again.err);
  t.regex(again.err, /, 1 hits, 0 misses/);
  t.deepEqual(fs.readFileSync(beneath('s0.o')), fs.readFileSync(path.join(plainBuild, 's0.o')), 'the new bytes beneath');
  t.is((await lazyCount(inst)).files, N, 's0.o is not lazy');
  await unmount();
  t.deepEqual(treeDiff(tree(plainBuild), tree(build)), []);
});

test('concurrent readers of lazy files (8 at once, several on one file) each reads the whole bytes; no temp file left', async (t) => {
  const { inst, plainBuild, build, beneath, unmount } = await lazyAndPlain(t);
  const names = ['s0.o', 's0.o', 's0.o', 's0.o', 's1.o', 's1.o', 's2.o', 'main.o'];
  // cmp: each reader's bytes against the plain build's.
  const reads = await Promise.all(names.map((n) => run('cmp', [path.join(build, n), path.join(plainBuild, n)])));
  for (const [i, n] of names.entries()) t.is(reads[i]!.code, 0, `${n}: ${reads[i]!.out}${reads[i]!.err}`);
  for (const n of new Set(names)) t.deepEqual(fs.readFileSync(beneath(n)), fs.readFileSync(path.join(plainBuild, n)), n);
  t.deepEqual(
    fs.readdirSync(beneath('.')).filter((n) => n.startsWith('.vrift-lazy-')),
    [],
    'no temp file left',
  );
  t.is((await lazyCount(inst)).files, N + 1 - new Set(names).size);
  await unmount();
});

test('fail open: with the overlay socket gone (no answer to register), a warm build writes its hits in full as without the overlay', async (t) => {
  const inst = instance(t);
  const src = path.join(inst.dir, 'p');
  const build = project(src);
  const fd = fs.openSync(build, 'r');
  await mountFor(t, inst, build);
  t.teardown(() => fs.closeSync(fd));
  t.is((await inst.vrift(['run', '--', 'make', 'objs', `CC=${SHIM} gcc`], { cwd: src })).code, 0);
  t.is((await run('make', ['clean'], { cwd: src })).code, 0);
  fs.rmSync(lazySocketFile(path.join(inst.home, 'run'), build));
  const warm = await inst.vrift(['run', '--', 'make', 'objs', `CC=${SHIM} gcc`], { cwd: src });
  t.is(warm.code, 0, warm.err);
  t.regex(warm.err, new RegExp(`, ${N + 1} hits, 0 misses`));
  t.is((await lazyCount(inst)).files, 0);
  for (let i = 0; i < N; i++) t.true(fs.statSync(`/proc/self/fd/${fd}/s${i}.o`).size > 0, `s${i}.o written beneath`);
});
