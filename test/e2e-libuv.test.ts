import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from './helpers/test.js';
import { CLI, instance, ROOT, run, SHIM } from './helpers/instance.js';
import { objects } from './helpers/workloads.js';

// End to end on a real project nobody here wrote: libuv 1.44.2 from Debian's source package
// (CMake, tests on: ~440 compiles). Built plain, then cold and warm through vrift in the same
// build directory (compiles and links through the shim); the warm build must compile and
// link nothing and produce the same objects and binaries.

test('libuv from Debian sources: warm rebuild compiles nothing and objects are identical to plain gcc', async (t) => {
  t.timeout(20 * 60_000);
  const srcCache = process.env.VRIFT_SRC_CACHE || path.join(os.homedir(), '.cache', 'vrift', 'src');
  const fetch = await run('bash', [path.join(ROOT, 'scripts', 'fetch-sources.sh'), srcCache]);
  t.is(fetch.code, 0, fetch.err);
  const tree = fs.readdirSync(srcCache).find((n) => n.startsWith('libuv-'));
  t.truthy(tree, 'libuv source tree');
  const v = instance(t);
  const src = path.join(v.dir, 'libuv');
  fs.cpSync(path.join(srcCache, tree!), src, { recursive: true });
  const build = path.join(src, 'build');
  const cfg = await run(
    'cmake',
    [
      '-S',
      src,
      '-B',
      build,
      '-DCMAKE_BUILD_TYPE=RelWithDebInfo',
      '-DLIBUV_BUILD_TESTS=ON',
      `-DCMAKE_C_COMPILER_LAUNCHER=${SHIM}`,
      `-DCMAKE_C_LINKER_LAUNCHER=${SHIM}`,
    ],
    { env: v.env },
  );
  t.is(cfg.code, 0, cfg.err);

  const plain = await run('make', ['-j2'], { cwd: build, env: { ...v.env, VRIFT_DISABLE: '1' } });
  t.is(plain.code, 0, plain.err);
  const want = objects(build);
  t.true(want.size > 300, `${want.size} objects`);
  // What the links wrote: the test runners and the shared library.
  const LINKED = ['uv_run_tests', 'uv_run_tests_a', 'libuv.so.1.0.0'];
  const linked = LINKED.map((f) => fs.readFileSync(path.join(build, f)));

  t.is((await run('make', ['clean'], { cwd: build })).code, 0);
  const cold = await run(process.execPath, [CLI, 'run', '--', 'make', '-j2'], { cwd: build, env: v.env });
  t.is(cold.code, 0, cold.err);
  t.regex(cold.err, /vrift: [\d.]+ s, \d+ hits, \d+ misses/);

  t.is((await run('make', ['clean'], { cwd: build })).code, 0);
  const warm = await run(process.execPath, [CLI, 'run', '--', 'make', '-j2'], { cwd: build, env: v.env });
  t.is(warm.code, 0, warm.err);
  const m = /vrift: [\d.]+ s, (\d+) hits, (\d+) misses/.exec(warm.err);
  t.truthy(m, warm.err);
  t.is(Number(m![2]), 0, 'warm build compiles nothing cacheable');
  t.true(Number(m![1]) >= want.size, `hits ${m![1]}`);

  const got = objects(build);
  t.is(got.size, want.size);
  let differ = 0;
  for (const [rel, buf] of want) if (!got.get(rel)?.equals(buf)) differ++;
  t.is(differ, 0, 'objects byte-identical to the plain build');
  t.deepEqual(
    LINKED.map((f) => fs.readFileSync(path.join(build, f))),
    linked,
    'linked files byte-identical to the plain build',
  );
  const s = await v.stats();
  t.is(s.not_stored.input_too_new ?? 0, 0);
});
