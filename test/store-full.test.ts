import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import test from './helpers/test.js';
import type { ExecutionContext } from 'ava';
import { age, instance, run, SHIM } from './helpers/instance.js';
import { tmpDir } from './helpers/remote.js';
import { waitFor } from './helpers/wait.js';

// A store that fills up or turns read-only while a build runs (a tmpfs of its own, as root):
// the build succeeds with plain gcc's objects, the daemon stays up, what it did store is
// sound and served (fail open at the daemon, not only in LocalStore).

async function tmpfs(t: ExecutionContext, size: string): Promise<string> {
  const dir = tmpDir(t, 'vrift-tmpfs-');
  const r = await run('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir]);
  if (r.code !== 0) throw new Error(`mount tmpfs: ${r.err}`);
  t.teardown(async () => {
    const u = await run('umount', [dir]);
    if (u.code !== 0) throw new Error(`umount ${dir}: ${u.err}`);
  });
  return dir;
}

/** n sources of ~50 KB objects of random (incompressible) bytes: a dozen is more than the small store holds. */
function sources(v: ReturnType<typeof instance>, n: number) {
  const srcs: string[] = [];
  for (let i = 0; i < n; i++)
    srcs.push(v.write(`s${i}.c`, `const unsigned char big${i}[] = { ${[...randomBytes(50_000)].join(',')} };\nint f${i}(void) { return big${i}[0]; }\n`));
  age(...srcs);
}

function project(v: ReturnType<typeof instance>, n: number) {
  sources(v, n);
  const srcs = Array.from({ length: n }, (_, i) => `s${i}.c`);
  v.write('Makefile', `OBJS = ${srcs.map((_, i) => `s${i}.o`).join(' ')}\nall: $(OBJS)\n%.o: %.c\n\t$(CC) -O2 -c $< -o $@\nclean:\n\trm -f *.o\n`);
}

async function checkObjects(t: ExecutionContext, v: ReturnType<typeof instance>, n: number) {
  for (let i = 0; i < n; i++) {
    t.is((await run('gcc', ['-O2', '-c', `s${i}.c`, '-o', `plain${i}.o`], { cwd: v.dir })).code, 0);
    t.deepEqual(fs.readFileSync(path.join(v.dir, `s${i}.o`)), fs.readFileSync(path.join(v.dir, `plain${i}.o`)), `s${i}.o is plain gcc's`);
  }
}

/** After the build: the daemon that served it still answers, the store verifies, and a clean rebuild is right, served from what was stored. */
async function afterwards(t: ExecutionContext, v: ReturnType<typeof instance>, n: number, pid: number) {
  await checkObjects(t, v, n);
  const s = await v.stats();
  t.is(s.daemon.pid, pid, 'the daemon that served the build is still up');
  const verify = await v.vrift(['verify', '--json']);
  t.is(verify.code, 0, verify.err);
  t.is(JSON.parse(verify.out).corrupt, 0);
  await run('make', ['clean'], { cwd: v.dir });
  const again = await run('make', ['-j2', `CC=${SHIM} gcc`], { cwd: v.dir, env: v.env });
  t.is(again.code, 0, again.err);
  await checkObjects(t, v, n);
  const after = await v.stats();
  t.true(after.hits > s.hits, `what was stored is served (${after.hits - s.hits} hits)`);
  return s;
}

test("the store's filesystem fills up during a build: the build succeeds with right objects, the daemon stays up", async (t) => {
  const store = await tmpfs(t, '300k');
  const v = instance(t, { VRIFT_LOCAL_PATH: store });
  const n = 12;
  project(v, n);
  const { pid } = (await v.stats()).daemon;
  const r = await run('make', ['-j2', `CC=${SHIM} gcc`], { cwd: v.dir, env: v.env });
  t.is(r.code, 0, r.err);
  t.is(r.err, '');
  // Entries are written when the build pauses: once nothing waits, the store holds what fit.
  const held = await v.until((x) => (x.local as unknown as { waiting: { items: number } }).waiting.items === 0, 'the store writes done');
  t.true(held.local.blobs < n, `the store could not hold them all (${held.local.blobs} objects)`);
  t.true(fs.readFileSync(path.join(v.home, 'log', 'vriftd.ndjson'), 'utf8').includes('ENOSPC'), 'writes failed with ENOSPC');
  await afterwards(t, v, n, pid);
});

test('the store turns read-only during a build: the build succeeds with right objects, the daemon stays up', async (t) => {
  const store = await tmpfs(t, '64m');
  const v = instance(t, { VRIFT_LOCAL_PATH: store });
  const n = 12;
  project(v, n);
  const { pid } = (await v.stats()).daemon;
  // make runs one compile at a time, each held until the test lets it go: the store turns
  // read-only after the third, with the build surely still running.
  const gate = path.join(v.dir, 'gate');
  const cc = v.write(
    'bin/cc',
    `#!/bin/sh\nn=$(ls ${v.dir}/*.o 2>/dev/null | wc -l)\nif [ "$n" -ge 3 ]; then i=0; while [ ! -e ${gate} ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done; fi\nexec gcc "$@"\n`,
  );
  fs.chmodSync(cc, 0o755);
  age(cc);
  let finished = false;
  const make = run('make', ['-j1', `CC=${SHIM} ${cc}`], { cwd: v.dir, env: v.env }).finally(() => {
    finished = true;
  });
  await waitFor(() => fs.readdirSync(v.dir).filter((f) => f.endsWith('.o')).length >= 3 || finished, 'three objects built', { ms: 120_000, everyMs: 50 });
  const ro = await run('mount', ['-o', 'remount,ro', store]);
  t.is(ro.code, 0, ro.err);
  t.false(finished, 'the build was still running');
  fs.writeFileSync(gate, '');
  const r = await make;
  t.is(r.code, 0, r.err);
  t.is(r.err, '');
  await checkObjects(t, v, n);
  const s = await v.stats();
  t.is(s.daemon.pid, pid, 'the daemon that served the build is still up');
  // A rebuild while it is still read-only: right, served from what made it in, if anything.
  await run('make', ['clean'], { cwd: v.dir });
  const again = await run('make', ['-j2', `CC=${SHIM} gcc`], { cwd: v.dir, env: v.env });
  t.is(again.code, 0, again.err);
  await checkObjects(t, v, n);
  // Writable again: the same daemon stores again.
  t.is((await run('mount', ['-o', 'remount,rw', store])).code, 0);
  const before = (await v.stats()).stored;
  sources(v, n);
  await run('make', ['clean'], { cwd: v.dir });
  const third = await run('make', ['-j2', `CC=${SHIM} gcc`], { cwd: v.dir, env: v.env });
  t.is(third.code, 0, third.err);
  await checkObjects(t, v, n);
  await v.until((x) => x.stored >= before + n, 'the new objects stored once the store is writable again');
  t.is((await v.stats()).daemon.pid, pid);
  const verify = await v.vrift(['verify', '--json']);
  t.is(JSON.parse(verify.out).corrupt, 0);
});
