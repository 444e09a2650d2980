import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import test from './helpers/test.js';
import type { ExecutionContext } from 'ava';
import { processAlive } from '../daemon/sent-reports.js';
import { age, instance, run, SHIM, type Instance, type Stats } from './helpers/instance.js';
import { startServe, tmpDir, type Served } from './helpers/remote.js';
import { ensureSources, objects, luaTree } from './helpers/workloads.js';
import { waitFor } from './helpers/wait.js';

// Team uploads in time: a teammate (or the next CI job) starting right after a build, or
// while it still runs, finds that build's results on the server. The project is Lua as
// redis vendors it (Debian's redis source): 38 C files built by its own Makefile, make -j2,
// through the native shim.

type RStats = Stats & { remote?: Record<string, number | string | boolean> };

function lua(dir: string): string {
  ensureSources({ quiet: true });
  return luaTree(dir);
}

async function make(t: ExecutionContext, inst: Instance, src: string): Promise<Map<string, Buffer>> {
  // -O0 (after the Makefile's -O2): the same 38 compiles, less of a loaded machine's time.
  const r = await run('make', ['-j2', 'o', `CC=${SHIM} gcc`, 'MYCFLAGS=-O0'], { cwd: src, env: inst.env });
  t.is(r.code, 0, r.err);
  return objects(src);
}

/** When the build's last compile ended: its newest object's mtime. */
function lastCompile(src: string): number {
  return Math.max(...[...objects(src).keys()].map((f) => fs.statSync(path.join(src, f)).mtimeMs));
}

const sleepUntil = (at: number) => new Promise((r) => setTimeout(r, Math.max(0, at - Date.now())));

/** Starts the instance's daemon (as the build's first compile would); its pid. */
async function daemonPid(inst: Instance): Promise<number> {
  await inst.vrift(['daemon', 'start']);
  const st = JSON.parse((await inst.vrift(['daemon', 'status', '--json'])).out) as { pid?: number };
  if (!st.pid) throw new Error('no daemon running');
  return st.pid;
}

/** What the server has stored so far (each PUT answered 200), by path. */
function uploaded(serve: Served): Set<string> {
  return new Set(
    serve.accessLog
      .map((l) => JSON.parse(l) as { method: string; path: string; status: number })
      .filter((l) => l.method === 'PUT' && l.status === 200)
      .map((l) => l.path),
  );
}

// B must find everything on the server; whether a lookup gives up waiting on a loaded
// machine (remote_wait) is not what is tested here.
const PATIENT = { VRIFT_REMOTE_WAIT: '10s', VRIFT_REMOTE_TIMEOUT: '10s' };

test.serial(
  "a teammate who starts 3 s after the build's last compile compiles nothing, though the first daemon got SIGTERM right after its build",
  async (t) => {
    const dir = tmpDir(t);
    const serve = await startServe(t, ['--store', path.join(dir, 'store')]);
    const a = instance(t, { VRIFT_REMOTE: serve.url });
    const srcA = lua(a.dir);
    const pid = await daemonPid(a);
    const fromA = await make(t, a, srcA);
    // A CI job's teardown the moment make is done: no `vrift stats`, no `daemon stop`.
    process.kill(pid, 'SIGTERM');
    t.is(fromA.size, 38);
    const last = lastCompile(srcA);

    await sleepUntil(last + 3000);
    const b = instance(t, { VRIFT_REMOTE: serve.url, ...PATIENT });
    const srcB = lua(b.dir);
    const fromB = await make(t, b, srcB);
    t.deepEqual(fromB, fromA);
    const s = (await b.stats()) as RStats;
    t.is(s.misses, 0, JSON.stringify(s.remote));
    t.is(s.hits, 38);

    // A's daemon ended by itself (its uploads done), its log says so.
    await waitFor(() => !processAlive(pid), "A's daemon to end after its SIGTERM", { everyMs: 50 });
    const log = fs.readFileSync(path.join(a.home, 'log', 'vriftd.ndjson'), 'utf8');
    t.regex(log, /"msg":"stopping on signal","signal":"SIGTERM"/);
    t.regex(log, /"msg":"stopped"/);
    t.notRegex(log, /uploads still queued at close/);
  },
);

test.serial('every entry of a finished build is on the server 2 s after its last compile, with no stop, stats or signal', async (t) => {
  const dir = tmpDir(t);
  const serve = await startServe(t, ['--store', path.join(dir, 'store')]);
  const a = instance(t, { VRIFT_REMOTE: serve.url });
  const src = lua(a.dir);
  await make(t, a, src);
  await sleepUntil(lastCompile(src) + 2000);
  const by2s = uploaded(serve);
  // Everything A will ever upload: what stopping it flushes on top is what was late.
  await a.stop();
  const puts = JSON.parse(await (await fetch(`${serve.url}/status`)).text()).puts as number;
  await serve.logged((ls) => ls.filter((l) => l.method === 'PUT').length >= puts);
  const all = uploaded(serve);
  const late = [...all].filter((p) => !by2s.has(p));
  t.deepEqual(late, []);
  t.true([...all].filter((p) => p.startsWith('/ac/')).length >= 2 * 38, 'a result and a manifest per compile');
  t.true([...all].filter((p) => p.startsWith('/cas/')).length >= 38, 'an object per compile');
});

test.serial('during a long build, what finished 5 s ago is on the server: a teammate gets it while a compile still runs', async (t) => {
  const dir = tmpDir(t);
  const serve = await startServe(t, ['--store', path.join(dir, 'store')]);
  const a = instance(t, { VRIFT_REMOTE: serve.url });
  const src = lua(a.dir);
  // A compile that runs until the test lets it go: gcc reads a header from a FIFO. While it
  // runs the daemon knows the build is busy compiling (what used to hold everything back).
  const held = path.join(a.dir, 'held');
  fs.mkdirSync(held);
  fs.writeFileSync(path.join(held, 'held.c'), '#include "held.h"\nint held(void) { return HELD; }\n');
  age(path.join(held, 'held.c'));
  execFileSync('mkfifo', [path.join(held, 'held.h')]);
  const holding = a.cc(['-O2', '-c', 'held.c', '-o', 'held.o'], { cwd: held });
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    // The compiler waits in the FIFO's open; a plain file takes its name before the daemon
    // looks at the inputs (it never reads a FIFO). Non-blocking: no reader, nothing to wake.
    let fd: number | undefined;
    try {
      fd = fs.openSync(path.join(held, 'held.h'), fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
    } catch {
      // the compiler is not there (yet): it finds the plain file
    }
    fs.renameSync(path.join(held, 'plain.h'), path.join(held, 'held.h'));
    if (fd !== undefined) {
      fs.writeSync(fd, '#define HELD 7\n');
      fs.closeSync(fd);
    }
  };
  fs.writeFileSync(path.join(held, 'plain.h'), '#define HELD 7\n');
  t.teardown(release);
  // (`vrift stats` on A writes and uploads what waits: asked only before A's build and after B's.)
  await waitFor(async () => (await a.stats()).daemon.pending >= 1, "the held compile to reach A's daemon", { everyMs: 25 });

  const fromA = await make(t, a, src);
  await sleepUntil(lastCompile(src) + 5000);
  const b = instance(t, { VRIFT_REMOTE: serve.url, ...PATIENT });
  const srcB = lua(b.dir);
  t.deepEqual(await make(t, b, srcB), fromA);
  const s = (await b.stats()) as RStats;
  t.is(s.misses, 0, JSON.stringify(s.remote));
  t.is(s.hits, 38);
  t.is((await a.stats()).daemon.pending, 1, "A's build was still compiling all along");

  release();
  const r = await holding;
  t.is(r.code, 0, r.err);
});
