import fs from 'node:fs';
import path from 'node:path';
import test from './helpers/test.js';
import { instance, run } from './helpers/instance.js';
import { objects } from './helpers/workloads.js';
import { edit, liveStatus, liveUntil, lua, make, missesSince, plainObjects, readers, wait } from './helpers/live.js';
import { PATIENT_REMOTE, startServe, tmpDir } from './helpers/remote.js';
import { waitFor } from './helpers/wait.js';

// Live mode with a team cache (`vrift serve`): when inputs change, the changed compiles' new
// keys are first looked up in the shared tiers, all of them, before anything is compiled
// (the prefetch step); what a teammate already built is fetched, only the rest compiled.

// A compile refuses to store an entry whose input was stamped in the tick it started in (it
// cannot tell whether the compiler read the old or the new bytes: input_too_new). A build
// started right after an edit is such a compile: the teammate waits until a file written now
// is stamped past the edit (on any filesystem's clock: two ticks and a bit later).
async function fsClockPast(file: string): Promise<void> {
  const edited = fs.statSync(file).mtimeMs;
  const probe = path.join(path.dirname(file), '.fs-clock-probe');
  await waitFor(
    () => {
      fs.writeFileSync(probe, '');
      return fs.statSync(probe).mtimeMs > edited + 25;
    },
    `the filesystem's clock past ${file}'s stamp`,
    { everyMs: 5 },
  );
  fs.rmSync(probe);
}

test.serial(
  'an edit a teammate already built: the prefetch step fetches it from the team cache, only the rest is compiled; the next build is all hits, objects as plain gcc',
  async (t) => {
    t.timeout(20 * 60_000);
    const dir = tmpDir(t);
    const serve = await startServe(t, ['--store', path.join(dir, 'store')]);
    const to75 = (src: string) => edit(path.join(src, 'luaconf.h'), '#define LUA_IDSIZE\t60', '#define LUA_IDSIZE\t75');

    // This machine: live mode, a cold build (its manifests are local from now on).
    const b = instance(t, { VRIFT_REMOTE: serve.url, VRIFT_LIVE: '1', ...PATIENT_REMOTE });
    const srcB = lua(b.dir);
    const cold = await make(b, srcB, 'o');
    t.is(cold.code, 0, cold.err);
    await b.stored(38);
    await liveUntil(b, (s) => s.commands === 38, '38 compiles recorded');
    const affected = readers(srcB, 'luaconf.h');

    // The teammate: the same tree with the edit, built; everything it stored goes up (its
    // daemon's stop drains the uploads).
    const a = instance(t, { VRIFT_REMOTE: serve.url, ...PATIENT_REMOTE });
    const srcA = lua(a.dir);
    to75(srcA);
    await fsClockPast(path.join(srcA, 'luaconf.h'));
    const built = await make(a, srcA, 'o');
    t.is(built.code, 0, built.err);
    const sa = await a.stats();
    t.deepEqual(sa.not_stored, {}, 'the teammate stored every compile it ran');
    t.true(sa.misses >= affected, JSON.stringify(sa));
    await a.stop();

    // The same edit here: looked up first, fetched, nothing compiled that the teammate had.
    const s0 = await liveStatus(b);
    to75(srcB);
    const s = await wait(t, b);
    const fetched = s.prefetched - s0.prefetched;
    const compiled = s.warmed - s0.warmed;
    t.log(JSON.stringify({ affected, fetched, compiled, fresh: s.fresh - s0.fresh, failed: s.failed, not_stored: s.not_stored_reasons }));
    t.is(fetched + compiled, affected, `each changed compile fetched or compiled, once: ${JSON.stringify(s)}`);
    t.true(fetched >= Math.ceil(0.9 * affected), `${fetched} of ${affected} fetched from the team cache`);
    t.is(s.failed - s0.failed, 0);

    // The build after, from clean: all hits, and its objects are plain gcc's of the edited tree.
    t.is((await run('make', ['clean'], { cwd: srcB })).code, 0);
    const before = await b.stats();
    const r = await make(b, srcB, 'o');
    t.is(r.code, 0, r.err);
    const after = await b.stats();
    t.is(missesSince(before, after), 0, 'the build after the edit compiled nothing');
    t.is(after.hits - before.hits, 38);
    const want = await plainObjects(t, b, srcB);
    const got = objects(srcB);
    t.is(got.size, 38);
    t.deepEqual(
      [...got.keys()].filter((k) => !got.get(k)!.equals(want.get(k)!)),
      [],
      'objects byte-identical to a plain gcc build of the edited tree',
    );
  },
);
