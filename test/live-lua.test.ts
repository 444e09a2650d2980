import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import test from './helpers/test.js';
import { instance, run, SHIM, type Instance, type Stats } from './helpers/instance.js';
import { ensureSources, objects, pristineTree } from './helpers/workloads.js';
import type { LiveStatus } from '../ipc/messages/live.js';

// Live mode end to end on a real project: Lua as redis vendors it (Debian's redis source, 38 C
// files, its own Makefile), built with make -j2 through the native shim, -MMD so that every
// compile also writes a depfile (which warming must send elsewhere too). An edit, then
// `vrift live wait`, then the build: it compiles nothing, and its objects are those of a plain
// gcc build of the edited tree.

const FLAGS = 'MYCFLAGS=-O0 -MMD';

/** deps/lua/src of Debian's redis (and the one redis header it includes), copied under `dir`; returns the source dir. */
function lua(dir: string): string {
  const redis = pristineTree('redis', ensureSources({ quiet: true }));
  const src = path.join(dir, 'redis', 'deps', 'lua', 'src');
  fs.mkdirSync(path.join(dir, 'redis', 'src'), { recursive: true });
  fs.mkdirSync(path.dirname(src), { recursive: true });
  // cp -a keeps the sources' old mtimes: they predate every compile.
  execFileSync('cp', ['-a', path.join(redis, 'deps', 'lua', 'src'), src]);
  execFileSync('cp', ['-a', path.join(redis, 'src', 'solarisfixes.h'), path.join(dir, 'redis', 'src')]);
  return src;
}

const make = (inst: Instance, src: string, ...targets: string[]) => run('make', ['-j2', ...targets, `CC=${SHIM} gcc`, FLAGS], { cwd: src, env: inst.env });

async function liveStatus(inst: Instance): Promise<LiveStatus & { enabled: boolean }> {
  const r = await inst.vrift(['live', 'status', '--json']);
  if (r.code !== 0) throw new Error(`vrift live status: ${r.err}`);
  return JSON.parse(r.out) as LiveStatus & { enabled: boolean };
}

async function liveUntil(inst: Instance, pred: (s: LiveStatus) => boolean, what: string): Promise<LiveStatus> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const s = await liveStatus(inst);
    if (pred(s)) return s;
    if (Date.now() > deadline) throw new Error(`waited 60 s for ${what}; last live status: ${JSON.stringify(s)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function wait(t: ExecutionContext, inst: Instance): Promise<LiveStatus> {
  const w = await inst.vrift(['live', 'wait', '--timeout', '300']);
  t.is(w.code, 0, w.err);
  return liveStatus(inst);
}

/** Every file under `dir` with its size and mtime: what a build tree looks like to make. */
function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      const st = fs.lstatSync(p);
      out.set(path.relative(dir, p), `${st.size} ${st.mtimeMs}`);
    }
  };
  walk(dir);
  return out;
}

/** The redis tree `src` is in, copied next to the instance's project dir; the copy's lua source dir. */
function copyTree(inst: Instance, src: string): string {
  const copy = path.join(path.dirname(inst.dir), 'plain', 'redis');
  fs.rmSync(copy, { recursive: true, force: true });
  fs.cpSync(path.dirname(path.dirname(path.dirname(src))), copy, { recursive: true });
  return path.join(copy, 'deps', 'lua', 'src');
}

/** The objects of a plain gcc build (no vrift) of a copy of `src` as it is now. */
async function plainObjects(t: ExecutionContext, inst: Instance, src: string, ...more: string[]): Promise<Map<string, Buffer>> {
  const csrc = copyTree(inst, src);
  for (const f of fs.readdirSync(csrc)) if (f.endsWith('.d') || f.endsWith('.o')) fs.rmSync(path.join(csrc, f));
  const r = await run('make', ['-j2', 'o', ...more, 'CC=gcc', FLAGS], { cwd: csrc, env: { ...inst.env, VRIFT_DISABLE: '1' } });
  t.is(r.code, 0, r.err);
  return objects(csrc);
}

/** How many of the tree's compiles read `header` (their depfiles say). */
function readers(src: string, header: string): number {
  return fs
    .readdirSync(src)
    .filter((f) => f.endsWith('.d'))
    .filter((f) => fs.readFileSync(path.join(src, f), 'utf8').includes(header)).length;
}

/** A cold build through vrift, and live mode knowing all its compiles. */
async function cold(t: ExecutionContext, prepare?: (src: string) => void, ...more: string[]): Promise<{ v: Instance; src: string; n: number }> {
  const v = instance(t, { VRIFT_LIVE: '1' });
  const src = lua(v.dir);
  prepare?.(src);
  const r = await make(v, src, 'o', ...more);
  t.is(r.code, 0, r.err);
  const n = objects(src).size;
  t.is(n, 38 + more.length);
  await v.stored(n);
  await liveUntil(v, (s) => s.commands === n, `${n} compiles recorded`);
  return { v, src, n };
}

function edit(file: string, from: string, to: string): void {
  const text = fs.readFileSync(file, 'utf8');
  if (!text.includes(from)) throw new Error(`${from} not in ${file}`);
  fs.writeFileSync(file, text.replace(from, to));
}

const missesSince = (a: Stats, b: Stats) => b.misses - a.misses;

test.serial(
  'a header many files include, then a .c file: warmed in the background, the next builds compile nothing, objects as plain gcc, tree untouched',
  async (t) => {
    t.timeout(15 * 60_000);
    const { v, src, n } = await cold(t);

    // A header included by most files, changed so that some objects change.
    edit(path.join(src, 'luaconf.h'), '#define LUA_IDSIZE\t60', '#define LUA_IDSIZE\t61');
    const readersOfConf = readers(src, 'luaconf.h');
    t.true(readersOfConf >= 30, `${readersOfConf} compiles read luaconf.h`);
    const tree = snapshot(path.dirname(path.dirname(path.dirname(src))));
    let s = await wait(t, v);
    t.deepEqual(snapshot(path.dirname(path.dirname(path.dirname(src)))), tree, 'warming changed nothing in the build tree');
    t.is(s.warmed, readersOfConf, JSON.stringify(s));
    t.is(s.failed, 0);
    t.is(s.priority, 'SCHED_IDLE');
    t.true(s.cpu_ms > 0);

    // The build make does next (its dependency lines): every compile a hit.
    const before = await v.stats();
    const inc = await make(v, src, 'o');
    t.is(inc.code, 0, inc.err);
    const after = await v.stats();
    t.is(missesSince(before, after), 0, 'the build after the edit compiled nothing');
    t.true(after.hits - before.hits >= 20, `${after.hits - before.hits} hits`);
    s = await liveStatus(v);
    t.is(s.used, after.hits - before.hits, 'each hit used a warmed entry');

    // All of it, from clean: still nothing compiled, and the objects are plain gcc's of the edited tree.
    t.is((await run('make', ['clean'], { cwd: src })).code, 0);
    const b2 = await v.stats();
    t.is((await make(v, src, 'o')).code, 0);
    t.is(missesSince(b2, await v.stats()), 0, 'a clean build after the edit compiled nothing');
    const want = await plainObjects(t, v, src);
    const got = objects(src);
    t.is(got.size, n);
    t.deepEqual(
      [...got.keys()].filter((k) => !got.get(k)!.equals(want.get(k)!)),
      [],
      'objects byte-identical to a plain gcc build of the edited tree',
    );

    // A .c file: its one compile is warmed.
    const warmedBefore = (await liveStatus(v)).warmed;
    edit(path.join(src, 'lstrlib.c'), '"invalid capture index"', '"invalid capture index (edited)"');
    s = await wait(t, v);
    t.is(s.warmed, warmedBefore + 1, JSON.stringify(s));
    const b3 = await v.stats();
    t.is((await make(v, src, 'o')).code, 0);
    t.is(missesSince(b3, await v.stats()), 0, 'the build after the .c edit compiled nothing');
    const want2 = await plainObjects(t, v, src);
    t.true(objects(src).get('lstrlib.o')!.equals(want2.get('lstrlib.o')!));
    t.is((await liveStatus(v)).never_used, 0);
  },
);

test.serial("an edit that breaks the compile: warming stores nothing, and the build reports gcc's error exactly", async (t) => {
  t.timeout(15 * 60_000);
  const { v, src } = await cold(t);
  const { local } = await v.stats();
  edit(path.join(src, 'lapi.c'), 'const char lua_ident[] =', 'int vrift_broken = ;\nconst char lua_ident[] =');
  const s = await wait(t, v);
  t.is(s.failed, 1, JSON.stringify(s));
  t.is(s.warmed, 0);
  const now = (await v.stats()).local;
  t.deepEqual([now.entries, now.blobs], [local.entries, local.blobs], 'nothing stored');

  const viaVrift = await make(v, src, 'lapi.o');
  t.not(viaVrift.code, 0);
  const csrc = copyTree(v, src);
  fs.rmSync(path.join(csrc, 'lapi.o'), { force: true });
  const plain = await run('make', ['lapi.o', 'CC=gcc', FLAGS], { cwd: csrc, env: { ...v.env, VRIFT_DISABLE: '1' } });
  t.not(plain.code, 0);
  t.regex(plain.err, /error/);
  t.is(viaVrift.err, plain.err, "the build's error is gcc's, byte for byte");
  t.is(viaVrift.code, plain.code);
});

/** A source that takes gcc seconds to compile (it includes luaconf.h like the rest). */
function slowSource(src: string): void {
  const fns = ['int f0(int x) { return x * 3; }'];
  for (let f = 1; f < 200; f++)
    fns.push(
      `int f${f}(int x) { int s = 0; for (int i = 0; i < x; i++) { s += (i * ${f + 3}) ^ (s >> 3); if (s % ${f + 7} == 0) s += f${f - 1}(i & 3); } return s; }`,
    );
  const body = Array.from({ length: 200 }, (_, f) => ` s += f${f}(sink);`).join('');
  fs.writeFileSync(
    path.join(src, 'slow.c'),
    ['#pragma GCC optimize ("O2")', '#include "luaconf.h"', 'volatile int sink;', ...fns, `int slow_main(void) { int s = 0;${body} return s; }`, ''].join('\n'),
  );
  const past = new Date(Date.now() - 60_000);
  fs.utimesSync(path.join(src, 'slow.c'), past, past);
}

test.serial('a build that needs a compile being warmed waits for it or compiles it itself, never both; the newest edit is warmed first', async (t) => {
  t.timeout(15 * 60_000);
  const { v, src } = await cold(t, (src) => slowSource(src), 'slow.o');
  edit(path.join(src, 'luaconf.h'), '#define LUA_IDSIZE\t60', '#define LUA_IDSIZE\t62');
  await liveUntil(v, (s) => s.changed > 0 || s.queued > 0 || s.running > 0, 'the header edit seen');
  fs.appendFileSync(path.join(src, 'slow.c'), 'int slow_edited;\n');
  const affected = readers(src, 'luaconf.h');
  // slow.c changed last: warmed before the 36 compiles the header edit queued.
  const seen = await liveUntil(v, (s) => s.running_sources.some((f) => f.endsWith('/slow.c')), 'slow.c being warmed');
  t.true(seen.warmed <= seen.jobs, `${seen.warmed} warmed before the newest edit`);

  // The build asks for the very compile being warmed, then for everything.
  fs.rmSync(path.join(src, 'slow.o'));
  const b1 = await v.stats();
  const r1 = await make(v, src, 'slow.o');
  t.is(r1.code, 0, r1.err);
  const b2 = await v.stats();
  t.is((await run('make', ['clean'], { cwd: src })).code, 0);
  const r2 = await make(v, src, 'o');
  t.is(r2.code, 0, r2.err);
  const misses = missesSince(b1, await v.stats());
  const s = await wait(t, v);
  t.log(JSON.stringify({ slowMisses: missesSince(b1, b2), misses, affected, warmed: s.warmed, fresh: s.fresh, left_to_build: s.left_to_build }));
  // Each affected compile ran exactly once: warmed in the background, or compiled by the build.
  t.is(s.warmed + misses, affected, JSON.stringify({ misses, affected, s }));
  t.is(s.failed, 0);
  const want = await plainObjects(t, v, src, 'slow.o');
  const got = objects(src);
  t.is(got.size, 39);
  t.deepEqual(
    [...got.keys()].filter((k) => !got.get(k)!.equals(want.get(k)!)),
    [],
  );
});
