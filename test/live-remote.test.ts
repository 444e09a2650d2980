import path from 'node:path';
import test from './helpers/test.js';
import { instance, run } from './helpers/instance.js';
import { edit, liveStatus, liveUntil, lua, make, missesSince, readers, wait } from './helpers/live.js';
import { startServe, tmpDir } from './helpers/remote.js';

// Live mode with a team cache (`vrift serve`): a warm run's lookup goes through the same tiers
// as a build's, so what a teammate already built is fetched, not compiled.

// The lookups must find everything on the server; whether one gives up waiting on a loaded
// machine (remote_wait) is not what is tested here.
const PATIENT = { VRIFT_REMOTE_WAIT: '10s', VRIFT_REMOTE_TIMEOUT: '10s' };

test.serial('an edit a teammate already built: warming fetches it from the team cache and compiles nothing; the build after is all hits', async (t) => {
  t.timeout(20 * 60_000);
  const dir = tmpDir(t);
  const serve = await startServe(t, ['--store', path.join(dir, 'store')]);
  const to75 = (src: string) => edit(path.join(src, 'luaconf.h'), '#define LUA_IDSIZE\t60', '#define LUA_IDSIZE\t75');

  // The teammate builds the tree before and after the header change; both go up to the server.
  const a = instance(t, { VRIFT_REMOTE: serve.url });
  const srcA = lua(a.dir);
  t.is((await make(a, srcA, 'o')).code, 0);
  to75(srcA);
  t.is((await run('make', ['clean'], { cwd: srcA })).code, 0);
  t.is((await make(a, srcA, 'o')).code, 0);
  await a.stop(); // its uploads are sent before it exits

  const b = instance(t, { VRIFT_REMOTE: serve.url, VRIFT_LIVE: '1', ...PATIENT });
  const srcB = lua(b.dir);
  const cold = await make(b, srcB, 'o');
  t.is(cold.code, 0, cold.err);
  const first = await b.stats();
  t.log(JSON.stringify({ misses: first.misses, not_stored: first.not_stored, uncacheable: first.uncacheable, remote: (first as { remote?: unknown }).remote }));
  await liveUntil(b, (s) => s.commands === 38, '38 compiles recorded');
  const affected = readers(srcB, 'luaconf.h');
  const s0 = await liveStatus(b);

  to75(srcB);
  const s = await wait(t, b);
  t.is(s.warmed - s0.warmed, 0, `nothing compiled: ${JSON.stringify(s)}`);
  t.is(s.fresh - s0.fresh, affected, 'every affected compile found in the team cache');
  t.is(s.cpu_ms, 0);
  const before = await b.stats();
  t.is((await make(b, srcB, 'o')).code, 0);
  t.is(missesSince(before, await b.stats()), 0, 'the build after the edit compiled nothing');
});
