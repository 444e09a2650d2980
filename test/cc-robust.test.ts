import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { age, instance, run, SHIM } from './helpers/instance.js';

test('no daemon running: the first call starts exactly one', async (t) => {
  const v = instance(t);
  age(v.write('a.c', 'int a(void) { return 1; }\n'));
  const rs = await Promise.all(Array.from({ length: 6 }, (_, i) => v.cc(['-c', 'a.c', '-o', `a${i}.o`])));
  for (const r of rs) t.is(r.code, 0, r.err);
  const st = await v.vrift(['daemon', 'status', '--json']);
  t.is(st.code, 0);
  const info = JSON.parse(st.out);
  t.true(info.running);
  // Exactly one vriftd for this home.
  const procs = fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
    try {
      const cmd = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8');
      const env = fs.readFileSync(`/proc/${p}/environ`, 'utf8');
      return cmd.includes('daemon/main.js') && env.includes(`VRIFT_HOME=${v.home}\u0000`) && !cmd.startsWith('flock');
    } catch {
      return false;
    }
  });
  t.is(procs.length, 1, `daemons: ${procs.join(',')}`);
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
  v.write('Makefile', `OBJS = ${srcs.map((_, i) => `s${i}.o`).join(' ')}\nall: lib.a\nlib.a: $(OBJS)\n\tar rcs $@ $^\n%.o: %.c\n\t$(CC) -O2 -c $< -o $@\nclean:\n\trm -f *.o lib.a\n`);
  const make = run('make', ['-j4', `CC=${SHIM} gcc`], { cwd: v.dir, env: v.env });
  // Kill the daemon once a few objects exist.
  for (let i = 0; i < 400; i++) {
    if (fs.readdirSync(v.dir).filter((f) => f.endsWith('.o')).length >= 3) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  const st = JSON.parse((await run(process.execPath, [path.join(path.dirname(SHIM), '../../dist/shim/cli.js'), 'daemon', 'status', '--json'], { env: v.env })).out);
  if (st.pid) process.kill(st.pid, 'SIGKILL');
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
    await new Promise((r) => setTimeout(r, 60)); // past the "modified just before the compile" guard (ctime)
    t.is((await v.cc(['-c', `e${i}.c`, '-o', `e${i}.o`])).code, 0);
    await new Promise((r) => setTimeout(r, 30));
  }
  await new Promise((r) => setTimeout(r, 300));
  const s = await v.stats();
  t.true(s.local.bytes <= 12 * 1024, `store holds ${s.local.bytes} bytes`);
  t.true(s.local.evictedFiles > 0, JSON.stringify(s.local));
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
  let running = true;
  for (let i = 0; i < 200 && running; i++) {
    await new Promise((r) => setTimeout(r, 100));
    running = (await v.vrift(['daemon', 'status'])).code === 0;
  }
  t.false(running, 'the daemon shut down after being idle');
  t.false(fs.existsSync(path.join(v.home, 'run', 'vriftd.sock')));
  t.is((await v.stats()).misses, 1, 'stats survived');
});

test('a daemon restarted while a link it answered is running: the link still succeeds (its dep file has somewhere to go)', async (t) => {
  const v = instance(t);
  age(v.write('f.c', 'int f(void) { return 3; }\n'), v.write('m.c', 'int f(void);\nint main(void) { return f(); }\n'));
  t.is((await run('gcc', ['-c', 'f.c', 'm.c'], { cwd: v.dir })).code, 0);
  const slow = v.write('bin/slowcc', '#!/bin/sh\nsleep 3\nexec gcc "$@"\n');
  fs.chmodSync(slow, 0o755);
  age(slow, path.join(v.dir, 'f.o'), path.join(v.dir, 'm.o'));
  const link = v.cc(['-o', 'prog', 'm.o', 'f.o'], { compiler: slow });
  if ((await v.until((x) => x.daemon.pending >= 1)).daemon.pending < 1) throw new Error('the link never reached the daemon');
  t.is((await v.vrift(['daemon', 'stop'])).code, 0);
  t.is((await v.vrift(['daemon', 'start'])).code, 0);
  const r = await link;
  t.is(r.code, 0, r.err);
  t.is((await run(path.join(v.dir, 'prog'), [])).code, 3);
});
