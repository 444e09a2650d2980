import fs from 'node:fs';
import path from 'node:path';
import test from './helpers/test.js';
import { age, instance, run, SHIM } from './helpers/instance.js';
import { waitFor } from './helpers/wait.js';

test('no daemon running: the first call starts exactly one', async (t) => {
  const v = instance(t);
  age(v.write('a.c', 'int a(void) { return 1; }\n'));
  const rs = await Promise.all(Array.from({ length: 6 }, (_, i) => v.cc(['-c', 'a.c', '-o', `a${i}.o`])));
  for (const r of rs) t.is(r.code, 0, r.err);
  // The daemon's own pid (stats wait patiently where `daemon status` gives a busy daemon 2 s).
  const { pid } = (await v.stats()).daemon;
  // Exactly one vriftd for this home.
  const procs = fs
    .readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        const cmd = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8');
        const env = fs.readFileSync(`/proc/${p}/environ`, 'utf8');
        return cmd.includes('daemon/main.js') && env.includes(`VRIFT_HOME=${v.home}\u0000`) && !cmd.startsWith('flock');
      } catch {
        return false;
      }
    });
  t.deepEqual(procs, [String(pid)], 'exactly one vriftd for this home');
});

test('the daemon killed in the middle of make -j4: the build succeeds and the store stays consistent', async (t) => {
  const v = instance(t);
  const n = 24;
  const srcs: string[] = [];
  for (let i = 0; i < n; i++) {
    // Big enough that the build takes a while.
    const body = Array.from({ length: 300 }, (_, k) => `int f${i}_${k}(int x) { return x * ${k} + ${i}; }`).join('\n');
    srcs.push(v.write(`s${i}.c`, `#include <stdio.h>\n${body}\nint main${i}(void){return 0;}\n`));
  }
  age(...srcs);
  v.write(
    'Makefile',
    `OBJS = ${srcs.map((_, i) => `s${i}.o`).join(' ')}\nall: lib.a\nlib.a: $(OBJS)\n\tar rcs $@ $^\n%.o: %.c\n\t$(CC) -O2 -c $< -o $@\nclean:\n\trm -f *.o lib.a\n`,
  );
  let finished = false;
  const make = run('make', ['-j4', `CC=${SHIM} gcc`], { cwd: v.dir, env: v.env }).finally(() => {
    finished = true;
  });
  // Kill the daemon once a few objects exist, while make still has most of them to build.
  const objects = () => fs.readdirSync(v.dir).filter((f) => f.endsWith('.o')).length;
  for (let i = 0; objects() < 3; i++) {
    if (finished) throw new Error(`make ended before 3 objects existed: ${(await make).err}`);
    if (i > 2400) throw new Error(`60 s and only ${objects()} objects`);
    await new Promise((r) => setTimeout(r, 25));
  }
  const pid = (await v.stats()).daemon.pid;
  process.kill(pid, 'SIGKILL');
  t.false(finished, 'make was still running when the daemon was killed');
  t.true(objects() < n, 'objects were still to be compiled');
  const r = await make;
  t.is(r.code, 0, r.err);
  t.true(fs.existsSync(path.join(v.dir, 'lib.a')));
  // Objects equal plain gcc's.
  for (let i = 0; i < n; i += 5) {
    const p = await run('gcc', ['-O2', '-c', `s${i}.c`, '-o', `plain${i}.o`], { cwd: v.dir });
    t.is(p.code, 0);
    t.deepEqual(fs.readFileSync(path.join(v.dir, `s${i}.o`)), fs.readFileSync(path.join(v.dir, `plain${i}.o`)));
  }
  const verify = await v.vrift(['verify', '--json']);
  t.is(verify.code, 0, verify.err);
  t.is(JSON.parse(verify.out).corrupt, 0);
  // And the cache works again: a clean rebuild is all hits or (for the killed ones) misses, and correct.
  await run('make', ['clean'], { cwd: v.dir });
  const again = await run('make', ['-j4', `CC=${SHIM} gcc`], { cwd: v.dir, env: v.env });
  t.is(again.code, 0, again.err);
  t.true((await v.stats()).hits > 0);
});

test('the store is evicted to its size limit and keeps the newest entries', async (t) => {
  const v = instance(t, { VRIFT_MAX_LOCAL_SIZE: '12KB' });
  const n = 12;
  for (let i = 0; i < n; i++) {
    const body = Array.from({ length: 60 }, (_, k) => `int g${i}_${k}(int x) { return x ^ ${k * 7 + i}; }`).join('\n');
    age(v.write(`e${i}.c`, body + '\n'));
    t.is((await v.cc(['-c', `e${i}.c`, '-o', `e${i}.o`])).code, 0);
    await v.stored(i + 1); // stored in compile order, the order eviction ranks them by
  }
  const s = await v.until((x) => x.local.evicted_files > 0 && x.local.bytes <= 12 * 1024, 'eviction down to 12 KB');
  t.true(s.local.bytes <= 12 * 1024, `store holds ${s.local.bytes} bytes`);
  t.true(s.local.evicted_files > 0, JSON.stringify(s.local));
  // The newest compile still hits.
  t.is((await v.cc(['-c', `e${n - 1}.c`, '-o', `e${n - 1}.o`])).code, 0);
  t.is((await v.stats()).hits, 1);
});

test('with the daemon unable to start, the compile still runs (fail open)', async (t) => {
  const v = instance(t, { VRIFT_DAEMON: '/bin/false', VRIFT_START_TIMEOUT_MS: '300' });
  age(v.write('a.c', 'int a(void) { return 1; }\n'));
  const r = await v.cc(['-c', 'a.c', '-o', 'a.o']);
  t.is(r.code, 0, r.err);
  t.is(r.err, '');
  t.true(fs.existsSync(path.join(v.dir, 'a.o')));
});

test('an idle daemon exits by itself and keeps its stats', async (t) => {
  const v = instance(t, { VRIFT_IDLE_TIMEOUT: '1' });
  age(v.write('a.c', 'int a(void) { return 1; }\n'));
  t.is((await v.cc(['-c', 'a.c', '-o', 'a.o'])).code, 0);
  await waitFor(async () => (await v.vrift(['daemon', 'status'])).code !== 0, 'the daemon to shut down after being idle', { everyMs: 100 });
  t.false(fs.existsSync(path.join(v.home, 'run', 'vriftd.sock')));
  t.is((await v.stats()).misses, 1, 'stats survived');
});

test('a daemon restarted while a link it answered is running: the link still succeeds (its dep file has somewhere to go)', async (t) => {
  const v = instance(t);
  age(v.write('f.c', 'int f(void) { return 3; }\n'), v.write('m.c', 'int f(void);\nint main(void) { return f(); }\n'));
  t.is((await run('gcc', ['-c', 'f.c', 'm.c'], { cwd: v.dir })).code, 0);
  // The link's compiler waits on a FIFO until the daemon has been restarted: the restart
  // surely lands while it runs. It tells the test it started by creating `started`.
  const fifo = path.join(v.dir, 'go.fifo');
  t.is((await run('mkfifo', [fifo])).code, 0);
  const slow = v.write('bin/slowcc', `#!/bin/sh\ncase " $* " in *" prog "*) : > ${v.dir}/started; read x < ${fifo};; esac\nexec gcc "$@"\n`);
  fs.chmodSync(slow, 0o755);
  age(slow, path.join(v.dir, 'f.o'), path.join(v.dir, 'm.o'));
  let finished = false;
  const link = v.cc(['-o', 'prog', 'm.o', 'f.o'], { compiler: slow }).finally(() => {
    finished = true;
  });
  await v.until((x) => x.daemon.pending >= 1, "the link's lookup at the daemon");
  for (let i = 0; !fs.existsSync(path.join(v.dir, 'started')); i++) {
    if (finished) throw new Error(`the link ended before its compiler started: ${(await link).err}`);
    if (i > 1200) throw new Error("the link's compiler did not start within 60 s");
    await new Promise((r) => setTimeout(r, 50));
  }
  t.is((await v.vrift(['daemon', 'stop'])).code, 0);
  t.is((await v.vrift(['daemon', 'start'])).code, 0);
  t.false(finished, 'the link was still running across the restart');
  fs.writeFileSync(fifo, 'go\n');
  const r = await link;
  t.is(r.code, 0, r.err);
  t.is((await run(path.join(v.dir, 'prog'), [])).code, 3);
});
