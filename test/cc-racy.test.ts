import fs from 'node:fs';
import path from 'node:path';
import test from './helpers/test.js';
import { ipcCall } from '../ipc/client.js';
import { MAX_MANIFEST_ENTRIES } from '../daemon/frontends/entries.js';
import { instance, run, SHIM, type Instance, type Stats } from './helpers/instance.js';
import { waitFor } from './helpers/wait.js';

// Inputs written right before a compile (a generator, `git checkout && make`) and inputs
// written while it runs. Real gcc, the native shim, a real daemon; no file is aged: the
// timestamps are the ones the writes gave.

const SRC = '#include "gen.h"\nint value(void) { return X; }\n';
const header = (i: number) => `#define X ${i}\n`;
const N = Number(process.env.RACY_N ?? 200);

// Writes the header and execs the shim in one process: the write lands as close before the
// compile's lookup as a build step can put it (a test process spawning the shim after its own
// write leaves milliseconds between them).
function writeThenCompile(v: Instance, cwd: string, text: string, args: string[]) {
  const q = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;
  return run('/bin/sh', ['-c', `printf '%s' ${q(text)} > gen.h && exec ${q(SHIM)} gcc ${args.map(q).join(' ')}`], { cwd, env: v.env });
}

const accounted = (s: Stats) => s.stored + Object.values(s.not_stored).reduce((a, b) => a + b, 0);

// Until the daemon has taken in `n` reports (stored or not): asked over its socket from here,
// a CLI process per poll being most of the time of these loops. Fails naming the count when
// they do not come (a report lost would otherwise surface later as some other difference).
async function reports(v: Instance, n: number): Promise<Stats> {
  const endpoint = `ipc://${path.join(v.home, 'run', 'vriftd.sock')}`;
  let s: Stats | undefined;
  await waitFor(
    async () => accounted((s = (await ipcCall(endpoint, { t: 'stats' })).stats as unknown as Stats)) >= n,
    `${n} compile reports taken in (stored or not)`,
    { ms: 60_000, everyMs: 5 },
  );
  return s!;
}

async function sameAsGcc(t: Parameters<typeof instance>[0], _v: Instance, cwd: string, args: string[], obj: string) {
  const plain = await run('gcc', [...args.slice(0, -1), 'plain.o'], { cwd });
  t.is(plain.code, 0);
  t.deepEqual(fs.readFileSync(path.join(cwd, obj)), fs.readFileSync(path.join(cwd, 'plain.o')));
}

// Timestamps alone decide (no watcher): one header rewritten before every compile. Each
// compile's report is taken in before the next write (else the daemon would rightly find
// the header changed since the compile).
test.serial(
  `a header written at once before each of ${N} compiles, each with new content: every entry stored, every content its manifest keeps a hit later (timestamps alone)`,
  async (t) => {
    const v = instance(t, { VRIFT_WATCH_INPUTS: '0' });
    v.write('a.c', SRC);
    const args = ['-O2', '-c', 'a.c', '-o', 'a.o'];
    for (let i = 1; i <= N; i++) {
      const r = await writeThenCompile(v, v.dir, header(i), args);
      t.is(r.code, 0, r.err);
      await reports(v, i);
    }
    let s = await v.stats();
    t.is(s.stored, N, `not stored: ${JSON.stringify(s.not_stored)}`);
    t.deepEqual(s.not_stored, {});
    // One source, one manifest: it keeps the newest MAX_MANIFEST_ENTRIES contents' entries.
    const kept = Math.min(N, MAX_MANIFEST_ENTRIES);
    for (let i = N; i > N - kept; i--) {
      fs.writeFileSync(path.join(v.dir, 'gen.h'), header(i));
      t.is((await v.cc(args)).code, 0);
    }
    s = await v.stats();
    t.is(s.hits, kept);
    t.is(s.misses, N);
    await sameAsGcc(t, v, v.dir, args, 'a.o');
  },
);

// With the watcher on, a directory first seen after the compile gives the watcher nothing to
// vouch with: timestamps decide again. A new directory per compile, no waiting; each source
// its own (one manifest each).
test.serial(`generated headers in new directories, each compiled at once, ${N} times: every entry stored, every one a hit later (watcher on)`, async (t) => {
  const v = instance(t, { VRIFT_WATCH_INPUTS: '1' });
  const args = ['-O2', '-c', 'a.c', '-o', 'a.o'];
  const dirs: string[] = [];
  for (let i = 1; i <= N; i++) {
    const d = path.join(v.dir, `gen${i}`);
    fs.mkdirSync(d);
    fs.writeFileSync(path.join(d, 'a.c'), `${SRC}/* ${i} */\n`);
    const r = await writeThenCompile(v, d, header(i), args);
    t.is(r.code, 0, r.err);
    dirs.push(d);
  }
  let s = await reports(v, N);
  t.is(s.stored, N, `not stored: ${JSON.stringify(s.not_stored)}`);
  for (const d of dirs) t.is((await v.cc(args, { cwd: d })).code, 0);
  s = await v.stats();
  t.is(s.hits, N, JSON.stringify(s));
  t.is(s.misses, N);
  await sameAsGcc(t, v, dirs[N - 1], args, 'a.o');
});

// A wrapper that runs gcc and then rewrites the header, and one that rewrites it before it
// runs gcc: the object was made from other bytes than those on disk at the report (or the
// bytes may have changed under the compiler). Never stored; the next build through the same
// wrapper (not rewriting this time: same key) compiles, and gets the object of what is on disk.
for (const watch of ['0', '1']) {
  for (const when of ['after', 'before'] as const) {
    test.serial(`a wrapper that rewrites the header ${when} running gcc: never stored, the next build compiles (watch_inputs=${watch})`, async (t) => {
      const v = instance(t, { VRIFT_WATCH_INPUTS: watch });
      v.write('a.c', SRC);
      const h = path.join(v.dir, 'gen.h');
      const rewrite = `[ -z "$REWRITE" ] || printf '#define X %s\\n' "$REWRITE" > ${h}`;
      const body = when === 'after' ? `gcc "$@"; rc=$?\n${rewrite}\nexit $rc\n` : `${rewrite}\nexec gcc "$@"\n`;
      const wrapper = v.write('bin/cc', `#!/bin/sh\n${body}`);
      fs.chmodSync(wrapper, 0o755);
      const args = ['-O2', '-c', 'a.c', '-o', 'a.o'];
      const rounds = 10;
      for (let i = 1; i <= rounds; i++) {
        fs.writeFileSync(h, header(i));
        t.is((await v.cc(args, { compiler: wrapper, env: { REWRITE: String(i + 1000) } })).code, 0);
        await reports(v, 2 * i - 1);
        t.is(fs.readFileSync(h, 'utf8'), header(i + 1000));
        t.is((await v.cc(args, { compiler: wrapper })).code, 0);
        await reports(v, 2 * i);
        await sameAsGcc(t, v, v.dir, args, 'a.o');
      }
      const s = await v.stats();
      t.is(s.hits, 0, 'no compile was served an object of other bytes');
      t.is(s.not_stored.input_too_new, rounds);
      t.is(s.stored, rounds);
    });
  }
}
