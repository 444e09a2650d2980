import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import test from './helpers/test.js';
import { age, instance, run } from './helpers/instance.js';

const RUSTC = path.join(execFileSync('rustc', ['--print', 'sysroot'], { encoding: 'utf8' }).trim(), 'bin', 'rustc');

// option_env! reads a variable that may be unset: going from unset to set (or to another
// value) is another compile, whose rlib is what rustc makes with it.
test("option_env!: unset, then set, then changed: each a miss with rustc's rlib; the same again hits", async (t) => {
  const v = instance(t);
  age(v.write('src/lib.rs', 'pub fn opt() -> Option<&\'static str> { option_env!("VRIFT_T_OPT") }\n'));
  const out = path.join(v.dir, 'out');
  const plainOut = path.join(v.dir, 'plain');
  fs.mkdirSync(out);
  fs.mkdirSync(plainOut);
  const args = (dir: string) => [
    '--crate-name',
    'o',
    '--edition=2021',
    'src/lib.rs',
    '--crate-type',
    'rlib',
    '--emit=dep-info,metadata,link',
    '--out-dir',
    dir,
  ];
  const build = async (env: NodeJS.ProcessEnv) => {
    const r = await v.cc(args(out), { compiler: RUSTC, env });
    t.is(r.code, 0, r.err);
    const plainEnv = { ...v.env, ...env };
    for (const [k, x] of Object.entries(env)) if (x === undefined) delete plainEnv[k];
    const p = await run(RUSTC, args(plainOut), { cwd: v.dir, env: plainEnv });
    t.is(p.code, 0, p.err);
    for (const f of ['libo.rlib', 'libo.rmeta'])
      t.deepEqual(fs.readFileSync(path.join(out, f)), fs.readFileSync(path.join(plainOut, f)), `${f} with ${JSON.stringify(env)}`);
  };
  const unset = { VRIFT_T_OPT: undefined };
  await build(unset);
  await v.stored(1);
  await build(unset);
  t.like(await v.stats(), { hits: 1, misses: 1 });
  await build({ VRIFT_T_OPT: 'one' });
  t.like(await v.stats(), { hits: 1, misses: 2 }, 'set: a miss');
  await v.stored(2);
  await build({ VRIFT_T_OPT: 'one' });
  t.like(await v.stats(), { hits: 2, misses: 2 });
  await build({ VRIFT_T_OPT: 'two' });
  t.like(await v.stats(), { hits: 2, misses: 3 }, 'changed: a miss');
  await build(unset);
  t.like(await v.stats(), { hits: 3, misses: 3 }, 'unset again: the first entry');
});
