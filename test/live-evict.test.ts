import fs from 'node:fs';
import path from 'node:path';
import test from './helpers/test.js';
import { cold, edit, liveStatus, readers, wait } from './helpers/live.js';

// Live mode and a full store: what warm runs stored and no build used yet goes before
// anything a build used (docs/live.md), for the daemon's own limit and for `vrift clean`.

// Every file of the store (blobs and entries) with its size.
function storeFiles(home: string): Map<string, number> {
  const out = new Map<string, number>();
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) {
        if (e.name !== 'tmp') walk(p);
      } else if (/^(ac|cas)-v\d+$/.test(path.relative(path.join(home, 'l2'), p).split(path.sep)[0])) out.set(p, fs.statSync(p).size);
    }
  };
  walk(path.join(home, 'l2'));
  return out;
}

test.serial('vrift clean --max-size: the entries warmed and never used by a build go first, the build-used ones stay', async (t) => {
  t.timeout(15 * 60_000);
  const { v, src } = await cold(t);
  await v.stats(); // writes what the daemon holds
  const built = storeFiles(v.home);
  t.true(built.size >= 2 * 38, `${built.size} files after the build`);

  const affected = readers(src, 'luaconf.h');
  const s0 = await liveStatus(v);
  edit(path.join(src, 'luaconf.h'), '#define LUA_IDSIZE\t60', '#define LUA_IDSIZE\t61');
  const s = await wait(t, v);
  t.is(s.warmed - s0.warmed, affected, JSON.stringify(s));
  await v.stats();
  const all = storeFiles(v.home);
  const warmed = [...all.keys()].filter((f) => !built.has(f));
  t.true(warmed.length >= affected, `${warmed.length} files the warm runs wrote`);
  const oldest = Math.min(...[...built.keys()].map((f) => fs.statSync(f).mtimeMs));
  for (const f of warmed) t.true(fs.statSync(f).mtimeMs < oldest, `${f} stamped before the build's oldest use`);

  // Room for all but half of what warming wrote: only warmed files go.
  const total = [...all.values()].reduce((a, b) => a + b, 0);
  const warmedBytes = warmed.reduce((a, f) => a + all.get(f)!, 0);
  const r = await v.vrift(['clean', '--max-size', String(total - Math.floor(warmedBytes / 2))]);
  t.is(r.code, 0, r.err);
  const after = storeFiles(v.home);
  const gone = [...all.keys()].filter((f) => !after.has(f));
  t.true(gone.length > 0, r.out);
  t.deepEqual(
    gone.filter((f) => built.has(f)),
    [],
    "none of the build's files evicted while warmed ones were left",
  );
});
