import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import test from './helpers/test.js';
import type { ExecutionContext } from 'ava';
import { processAlive } from '../daemon/sent-reports.js';
import { PROBE_DIGEST } from '../daemon/tiers/types.js';
import { age, instance, type Instance, type Stats } from './helpers/instance.js';
import { fakeServer, startServe, tmpDir } from './helpers/remote.js';
import { missingOnServer, storeKeys } from './helpers/store-keys.js';
import { waitFor } from './helpers/wait.js';

// A daemon that is stopped right after a build (a restart by `vrift run --cache-remote`,
// `vrift daemon stop`, SIGTERM, SIGINT) leaves every entry and object of that build on the
// server, also when the server was slow to answer one upload: on a loaded machine an answer
// can come after remote_timeout; the daemon then takes the remote for gone (a cool-down), and
// what waited behind that upload used to be dropped, so the server had the object and no
// entry naming it.

/** Passes a request on to the server at `up`; its answer `lateMs` after the server gave it. */
function forward(up: URL, req: http.IncomingMessage, res: http.ServerResponse, lateMs = 0): void {
  res.on('error', () => {}); // the client gave up on a late answer
  const fwd = http.request({ host: up.hostname, port: up.port, path: req.url, method: req.method, headers: req.headers }, (answer) => {
    const send = () => {
      if (res.destroyed) return answer.resume();
      res.writeHead(answer.statusCode!, answer.headers);
      answer.pipe(res);
    };
    if (lateMs > 0) setTimeout(send, lateMs).unref();
    else send();
  });
  fwd.on('error', () => res.destroy());
  req.pipe(fwd);
}

/** `vrift serve` behind a proxy that answers the first PUT (or the first request) `lateMs` after the server did. */
async function slowFirstAnswer(
  t: ExecutionContext,
  lateMs: number,
  which: 'PUT' | 'any' = 'PUT',
): Promise<{ url: string; served: string; requests: string[] }> {
  const dir = tmpDir(t);
  const serve = await startServe(t, ['--store', path.join(dir, 'store'), '--access-log', 'off']);
  const up = new URL(serve.url);
  let slowed = false;
  const proxy = await fakeServer(t, (req, res) => {
    const late = (which === 'any' || req.method === 'PUT') && !slowed;
    if (late) slowed = true;
    forward(up, req, res, late ? lateMs : 0);
  });
  return { url: proxy.url, served: serve.url, requests: proxy.requests };
}

function project(inst: Instance) {
  fs.writeFileSync(path.join(inst.dir, 'a.c'), '#include <stdio.h>\nint main(void) { puts("a"); return 0; }\n');
  age(path.join(inst.dir, 'a.c'));
}

async function daemonPid(inst: Instance): Promise<number> {
  const st = JSON.parse((await inst.vrift(['daemon', 'status', '--json'])).out) as { pid?: number };
  if (!st.pid) throw new Error('no daemon running');
  return st.pid;
}

async function remoteStats(inst: Instance): Promise<Record<string, unknown>> {
  const s = (await inst.stats()) as Stats & { remote?: Record<string, unknown> };
  if (!s.remote) throw new Error(`no remote in the stats: ${JSON.stringify(s)}`);
  return s.remote;
}

type Stop = 'restart' | 'daemon stop' | 'SIGTERM' | 'SIGINT';

// The answer comes 3 s late: past the 1 s remote_timeout whatever the machine's load.
const LATE_MS = 3000;

for (const how of ['restart', 'daemon stop', 'SIGTERM', 'SIGINT'] as Stop[]) {
  test(`stopped at once after its build (${how}), a daemon whose server answered an upload late leaves every entry and object of the build on the server`, async (t) => {
    const { url, served } = await slowFirstAnswer(t, LATE_MS);
    const a = instance(t, { VRIFT_REMOTE: url });
    project(a);
    const r = await a.vrift(['run', '-q', '--', 'gcc', '-c', 'a.c', '-o', 'a.o']);
    t.is(r.code, 0, r.err);
    const pid = await daemonPid(a);
    // The stop comes while the late answer has the remote switched off (on a loaded machine
    // the upload may start only after the build): what the build offered is held, not sent.
    const logFile = path.join(a.home, 'log', 'vriftd.ndjson');
    const log = () => (fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : '');
    await waitFor(() => /"msg":"remote failed, cooling down","method":"PUT"/.test(log()), 'the late answer to switch the remote off');
    if (how === 'restart') {
      const other = await fakeServer(t, (_req, res) => res.writeHead(404).end());
      const o = await a.vrift(['run', '-q', '--cache-remote', `${other.url}/x`, '--', 'true']);
      t.is(o.code, 0, o.err);
      t.true(o.err.includes('restarted the daemon to use remote'), o.err);
    } else if (how === 'daemon stop') {
      const o = await a.vrift(['daemon', 'stop']);
      t.is(o.code, 0, o.err);
      t.is(o.out, `vriftd ${pid} stopped\n`);
    } else {
      process.kill(pid, how);
      await waitFor(() => !processAlive(pid), `daemon ${pid} to exit after ${how}`);
    }
    t.false(processAlive(pid));
    t.notRegex(log(), /uploads still queued at close/);
    // What the build stored, by key: its object, its result and its manifest.
    const keys = storeKeys(a.home);
    t.true(keys.cas.length >= 1 && keys.ac.length >= 2, JSON.stringify(keys));
    t.deepEqual(await missingOnServer(served, keys), []);
  });
}

// The daemon's check at start is answered late (a loaded machine, the server fine): the
// remote cools down for 30 s, and the build right after offers its uploads meanwhile. They
// are held, not dropped, and a daemon stopped at once sends them before it exits.
test('a build right after a check at start that was answered late: a daemon stopped at once leaves every entry and object on the server', async (t) => {
  const { url, served, requests } = await slowFirstAnswer(t, LATE_MS, 'any');
  const a = instance(t, { VRIFT_REMOTE: url });
  project(a);
  const s = await a.vrift(['daemon', 'start']);
  t.is(s.code, 0, s.err);
  const logFile = path.join(a.home, 'log', 'vriftd.ndjson');
  await waitFor(
    () => fs.existsSync(logFile) && fs.readFileSync(logFile, 'utf8').includes('"msg":"remote does not answer, cooling down"'),
    'the check at start to time out',
  );
  const r = await a.vrift(['run', '-q', '--', 'gcc', '-c', 'a.c', '-o', 'a.o']);
  t.is(r.code, 0, r.err);
  // The build's uploads were offered while the remote was off, and are held: it is still
  // cooling down after the build (a cool-down ends only after its 30 s, or when a probe, which
  // would have reached the server, is answered), nothing but the check has reached the server,
  // and the uploads wait.
  let held: Record<string, unknown> = {};
  await waitFor(
    async () => Number((held = await remoteStats(a)).queued) >= 1,
    () => `the build's uploads to be offered: ${JSON.stringify(held)}`,
  );
  t.true(held.cooling_down, 'still cooling down after the build');
  t.deepEqual(requests, [`HEAD /cas/${PROBE_DIGEST}`], 'nothing but the check reached the server');
  const pid = await daemonPid(a);
  const o = await a.vrift(['daemon', 'stop']);
  t.is(o.code, 0, o.err);
  t.is(o.out, `vriftd ${pid} stopped\n`);
  t.false(processAlive(pid));
  t.notRegex(fs.readFileSync(logFile, 'utf8'), /uploads still queued at close/);
  const keys = storeKeys(a.home);
  t.true(keys.cas.length >= 1 && keys.ac.length >= 2, JSON.stringify(keys));
  t.deepEqual(await missingOnServer(served, keys), []);
});

// A server that fails PUTs while the daemon stops (one restarting, a proxy's hiccup): during
// the drain a failed upload is tried again, a little later each time, until it is up or the
// drain's 10 s are over; not once only.
test('a server that fails the first PUTs of the drain still gets every entry and object of the build before the daemon exits', async (t) => {
  const dir = tmpDir(t);
  const serve = await startServe(t, ['--store', path.join(dir, 'store'), '--access-log', 'off']);
  const up = new URL(serve.url);
  // Every PUT fails until the daemon is told to stop (its uploads are held for the remote);
  // then the first three fail too, and the rest go through.
  const gate = { stopping: false, failedInDrain: 0 };
  const proxy = await fakeServer(t, (req, res) => {
    if (req.method === 'PUT' && (!gate.stopping || gate.failedInDrain < 3)) {
      if (gate.stopping) gate.failedInDrain++;
      req.resume();
      req.on('end', () => res.writeHead(503, { 'content-length': 0 }).end());
      return;
    }
    forward(up, req, res);
  });
  const a = instance(t, { VRIFT_REMOTE: proxy.url });
  project(a);
  const r = await a.vrift(['run', '-q', '--', 'gcc', '-c', 'a.c', '-o', 'a.o']);
  t.is(r.code, 0, r.err);
  const logFile = path.join(a.home, 'log', 'vriftd.ndjson');
  // The remote goes off by a failed PUT, or, on a loaded machine, already by a check at start
  // answered late; either way the build's uploads are held for it.
  let held: Record<string, unknown> = {};
  await waitFor(
    async () => Boolean((held = await remoteStats(a)).cooling_down) && Number(held.queued) >= 1,
    () => `the build's uploads to wait for the remote: ${JSON.stringify(held)}`,
  );
  const pid = await daemonPid(a);
  gate.stopping = true;
  process.kill(pid, 'SIGTERM');
  await waitFor(() => !processAlive(pid), `daemon ${pid} to exit after SIGTERM`);
  t.is(gate.failedInDrain, 3, 'three PUTs of the drain failed');
  t.notRegex(fs.readFileSync(logFile, 'utf8'), /uploads still queued at close/);
  const keys = storeKeys(a.home);
  t.true(keys.cas.length >= 1 && keys.ac.length >= 2, JSON.stringify(keys));
  t.deepEqual(await missingOnServer(serve.url, keys), []);
});
