import fs from 'node:fs';
import path from 'node:path';
import test from './helpers/test.js';
import { instance, run } from './helpers/instance.js';
import { isMounted, mountFor, tree, treeDiff } from './helpers/overlay.js';
import { cargo, copyWorkspace, counted } from './helpers/rust.js';

// cargo with target/ under the overlay (passthrough, docs/overlay.md): cargo hard-links its
// outputs from deps/ to the profile dir, sets dep-info mtimes, and compares mtimes for
// freshness; all of it goes through the mount. Workspace: test/fixtures/rust-ws (seven crates).

const CRATES = 7;

/** The libraries and the binary a build leaves (cargo's own bookkeeping, with its timestamps, aside). */
const outputs = (ws: string) => new Map([...tree(path.join(ws, 'target', 'debug'))].filter(([k]) => /^deps\/.*\.(rlib|rmeta)$|^wsapp$/.test(k)));

test.serial(
  'cargo with target/ mounted: cold, cargo clean, warm (all hits), the binary runs, then every crate is fresh; after unmount target/ is what a plain cargo build leaves',
  async (t) => {
    const v = instance(t);
    const c = cargo(v);
    // A plain build first, at the same path (workspace crates carry their paths), kept aside.
    const ws = copyWorkspace(path.join(v.dir, 'ws'));
    const target = path.join(ws, 'target');
    const plain = await c.build(ws, [], { RUSTC_WRAPPER: '' });
    t.is(plain.code, 0, plain.err);
    const plainOutputs = outputs(ws);
    t.true(plainOutputs.size >= 9, `${plainOutputs.size} outputs`);
    fs.rmSync(target, { recursive: true });
    await mountFor(t, v, target);
    const cold = await counted(v, () => c.build(ws));
    t.is(cold.value.code, 0, cold.value.err);
    t.is(cold.misses, CRATES);
    // cargo clean empties target/, then cannot remove the mount point itself: it says EBUSY and
    // exits 101 (README, "Lazy outputs"). What it removed is gone beneath too.
    const clean = await run('cargo', ['clean'], { cwd: ws, env: c.env });
    t.regex(clean.err, /failed to remove directory .*target.*\n[\s\S]*Device or resource busy/);
    t.deepEqual(fs.readdirSync(target), [], 'target/ emptied');
    const warm = await counted(v, () => c.build(ws));
    t.is(warm.value.code, 0, warm.value.err);
    t.is(warm.hits, CRATES);
    t.is(warm.misses, 0);
    t.is(await c.app(ws), 'quiet:126 note=unset greeting=hello');
    const again = await counted(v, () => c.build(ws, ['-v']));
    t.is(again.value.code, 0);
    t.is(again.hits + again.misses, 0);
    t.notRegex(again.value.err, /Compiling/);
    t.regex(again.value.err, /Fresh wsapp/);

    t.is((await v.vrift(['unmount', target])).code, 0);
    t.false(isMounted(target));
    t.is(await c.app(ws), 'quiet:126 note=unset greeting=hello');
    const after = await counted(v, () => c.build(ws));
    t.notRegex(after.value.err, /Compiling/, 'still fresh after the unmount');
    t.deepEqual(treeDiff(plainOutputs, outputs(ws)), [], 'the same outputs as the plain build');
  },
);
