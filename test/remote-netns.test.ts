import fs from 'node:fs';
import path from 'node:path';
import test from './helpers/test.js';
import type { ExecutionContext } from 'ava';
import { SHIM } from './helpers/instance.js';
import { netLab, netnsOf, nsInstance, type Machine, type NsInstance, type RemoteStats } from './helpers/netns.js';
import { startServe, tmpDir } from './helpers/remote.js';
import { objects, workloadTree } from './helpers/workloads.js';

// Two machines sharing one `vrift serve`, for real: each is a network namespace with its
// own VRIFT_HOME, daemon (started by the shim inside the namespace) and checkout directory;
// the server listens on a veth address in the root namespace. The project is libuv 1.44.2
// from Debian's source package (library only, RelWithDebInfo). Like two CI runners, each
// machine sees its own checkout at the same path (a bind mount in its private mount
// namespace): -g objects embed that path, and so do gcc's warnings, which vrift replays, so
// a checkout elsewhere would rightly miss on the files that warn.

function differing(want: Map<string, Buffer>, got: Map<string, Buffer>): string[] {
  const bad = [...want].filter(([rel, buf]) => !got.get(rel)?.equals(buf)).map(([rel]) => rel);
  return [...bad, ...[...got.keys()].filter((k) => !want.has(k)).map((k) => `extra ${k}`)];
}

/** `build`: where the machine sees it; `real`: the same directory from the root namespace. */
interface Checkout {
  build: string;
  real: string;
}

async function configure(t: ExecutionContext, m: Machine, v: NsInstance, at: string): Promise<Checkout> {
  workloadTree('libuv', path.join(v.dir, 'libuv'));
  m.view = { from: v.dir, at };
  const src = path.join(at, 'libuv');
  const build = path.join(src, 'build');
  const cfg = await m.exec(
    'cmake',
    [
      '-S',
      src,
      '-B',
      build,
      '-DCMAKE_BUILD_TYPE=RelWithDebInfo',
      '-DLIBUV_BUILD_TESTS=OFF',
      '-DBUILD_TESTING=OFF',
      '-DCMAKE_C_COMPILER=gcc',
      `-DCMAKE_C_COMPILER_LAUNCHER=${SHIM}`,
    ],
    { env: v.env },
  );
  t.is(cfg.code, 0, cfg.err);
  return { build, real: path.join(v.dir, 'libuv', 'build') };
}

const make = (m: Machine, v: NsInstance, c: Checkout) => m.exec('make', ['-j2'], { cwd: c.build, env: v.env });

async function nsId(m: Machine): Promise<string> {
  const r = await m.exec('readlink', ['/proc/self/ns/net']);
  if (r.code !== 0 || r.out.trim() === netnsOf(process.pid)) throw new Error(`${m.ns} is not a namespace of its own: ${r.err}`);
  return r.out.trim();
}

// Counters of the build alone: CMake's configure-time checks (try_compile in temp projects
// named per checkout) go through the launcher too.
function since(before: RemoteStats, after: RemoteStats): RemoteStats {
  const d = { ...after, remote: { ...after.remote } };
  for (const k of ['hits', 'misses', 'compile_failed', 'requests'] as const) d[k] = after[k] - before[k];
  for (const [k, v] of Object.entries(after.remote ?? {})) if (typeof v === 'number') d.remote[k] = v - Number(before.remote?.[k] ?? 0);
  return d;
}

const num = (s: RemoteStats, k: string) => Number(s.remote?.[k] ?? NaN);

test('two machines in network namespaces share one vrift serve: B builds libuv with 0 compiles; the server killed mid-build costs B nothing but local compiles', async (t) => {
  t.timeout(20 * 60_000);
  const lab = netLab(t);
  const store = tmpDir(t);
  const at = path.join(tmpDir(t, 'vrift-netns-co-'), 'proj');
  fs.mkdirSync(at);
  const serve = await startServe(t, ['--store', path.join(store, 'store'), '--host', lab.serverIp]);
  t.is(new URL(serve.url).hostname, lab.serverIp);
  const remote = { VRIFT_REMOTE: serve.url };
  const logOf = (from: string) =>
    serve.accessLog.map((l) => JSON.parse(l) as { method: string; path: string; status: number; ip: string }).filter((l) => l.ip === from);

  // Machine A: compiles everything and uploads; its daemon drains the upload queue when stopped.
  const a = nsInstance(t, lab.a, remote);
  const ca = await configure(t, lab.a, a, at);
  const builtA = await make(lab.a, a, ca);
  t.is(builtA.code, 0, builtA.err);
  const sa = await a.stats();
  t.is(netnsOf(sa.daemon.pid), await nsId(lab.a), "A's daemon runs in A's namespace");
  const fromA = objects(ca.real);
  t.true(fromA.size >= 60, `${fromA.size} objects`);
  t.is(sa.hits, 0);
  t.true(sa.misses >= fromA.size, `A: ${sa.misses} misses`);
  await a.stop();
  t.true(num(sa, 'errors') === 0 && num(sa, 'timeouts') === 0, JSON.stringify(sa.remote));
  const putsA = logOf(lab.a.ip).filter((l) => l.method === 'PUT' && l.status === 200).length;
  t.true(putsA >= 2 * fromA.size, `A uploaded ${putsA} objects and entries over its veth`);

  // Machine B: another checkout directory, empty local store, same server.
  const b = nsInstance(t, lab.b, remote);
  const cb = await configure(t, lab.b, b, at);
  t.not(cb.real, ca.real);
  t.deepEqual(fs.readdirSync(at), [], "the machines' views stay in their own mount namespaces");
  const configured = await b.stats();
  const builtB = await make(lab.b, b, cb);
  t.is(builtB.code, 0, builtB.err);
  const sb = since(configured, await b.stats());
  t.is(netnsOf(sb.daemon.pid), await nsId(lab.b), "B's daemon runs in B's namespace");
  t.is(sb.misses, 0, `B compiled nothing`);
  t.is(sb.compile_failed, 0);
  t.true(sb.hits >= fromA.size, `B: ${sb.hits} hits`);
  // Each object came from the server: on its own, or attached to its manifest (a bundle).
  t.true(num(sb, 'hits') + num(sb, 'attached') >= 2 * fromA.size, `remote hits ${num(sb, 'hits')}, attached ${num(sb, 'attached')}`);
  // Some of them without a request of their own: in the packs A uploaded (how many a pack
  // holds depends on how fast A's build went, so only that packs were used is asserted).
  t.true(num(sb, 'packs') >= 1 && num(sb, 'from_packs') >= 1, JSON.stringify(sb.remote));
  t.is(num(sb, 'errors'), 0);
  t.is(num(sb, 'timeouts'), 0);
  t.true(num(sb, 'bytes_down') > 0);
  t.deepEqual(differing(fromA, objects(cb.real)), [], "B's objects are A's, byte for byte");
  t.true(
    logOf(lab.b.ip).some((l) => l.method === 'GET' && l.status === 200),
    'B fetched over its own veth',
  );

  // B again from an empty local store (fresh daemon, fresh remote counters); the server is
  // killed once B has fetched a few objects. Without packs, so that B asks for every entry
  // on its own and the kill lands in the middle of the build.
  await b.stop();
  fs.rmSync(b.home, { recursive: true, force: true });
  b.env.VRIFT_REMOTE_PACKS = '0';
  t.is((await lab.b.exec('make', ['clean'], { cwd: cb.build, env: b.env })).code, 0);
  const getsBefore = logOf(lab.b.ip).filter((l) => l.method === 'GET').length;
  let finished = false;
  const second = make(lab.b, b, cb).finally(() => (finished = true));
  while (logOf(lab.b.ip).filter((l) => l.method === 'GET' && l.status === 200).length < getsBefore + 6 && !finished) {
    await new Promise((r) => setTimeout(r, 10));
  }
  t.false(finished, 'the server is killed while B is still building');
  const gone = new Promise((r) => serve.proc.once('exit', r));
  serve.proc.kill('SIGKILL');
  await gone;
  const builtB2 = await second;
  t.is(builtB2.code, 0, builtB2.err);
  t.deepEqual(differing(fromA, objects(cb.real)), [], "objects still A's, byte for byte");
  const s2 = await b.stats();
  t.true(s2.hits >= 1, `hits before the kill: ${s2.hits}`);
  t.true(s2.misses >= 1, `compiled locally after the kill: ${s2.misses}`);
  t.is(s2.hits + s2.misses, sb.hits, 'every cacheable call was either fetched or compiled');
  t.is(s2.compile_failed, 0);
  t.true(num(s2, 'errors') + num(s2, 'timeouts') >= 1, JSON.stringify(s2.remote));
  t.log(
    `A: ${fromA.size} objects, ${putsA} uploads; B: ${sb.hits} hits, remote ${JSON.stringify(sb.remote)}; after the kill: ${s2.hits} hits, ${s2.misses} compiled, remote ${JSON.stringify(s2.remote)}`,
  );
  t.true(num(s2, 'skipped') >= 1, `later calls skipped during the cool-down: ${JSON.stringify(s2.remote)}`);
});
