import fs from 'node:fs';
import path from 'node:path';
import test from './helpers/test.js';
import { age, instance, run } from './helpers/instance.js';

// Two checkouts of one project in different directories, compiled CMake-style with absolute
// paths from a build directory.
function checkouts(v: ReturnType<typeof instance>) {
  const roots = ['a/checkout-one', 'bb/second/checkout-two'].map((r) => path.join(v.dir, r));
  for (const root of roots) {
    const files = [
      ['inc/lib.h', '#pragma once\nint lib(int);\n'],
      ['src/lib.c', '#include "lib.h"\n#include <string.h>\nint lib(int x) { return x * 2 + (int)strlen("abc"); }\n'],
    ].map(([rel, text]) => {
      const f = path.join(root, rel);
      fs.mkdirSync(path.dirname(f), { recursive: true });
      fs.writeFileSync(f, text);
      return f;
    });
    age(...files);
    fs.mkdirSync(path.join(root, 'build'), { recursive: true });
  }
  const args = (root: string, extra: string[] = []) => [...extra, '-O2', `-I${root}/inc`, '-c', `${root}/src/lib.c`, '-o', 'lib.o'];
  return { roots, args };
}

test('two checkouts share hits when the object does not embed the directory', async (t) => {
  const v = instance(t);
  const { roots, args } = checkouts(v);
  t.is((await v.cc(args(roots[0]), { cwd: path.join(roots[0], 'build') })).code, 0);
  const r = await v.cc(args(roots[1]), { cwd: path.join(roots[1], 'build') });
  t.is(r.code, 0, r.err);
  const s = await v.stats();
  t.is(s.hits, 1, 'second checkout hits');
  const plain = await run('gcc', [...args(roots[1]).slice(0, -1), 'plain.o'], { cwd: path.join(roots[1], 'build') });
  t.is(plain.code, 0);
  t.deepEqual(fs.readFileSync(path.join(roots[1], 'build/lib.o')), fs.readFileSync(path.join(roots[1], 'build/plain.o')));
});

test("objects with debug info never carry another checkout's directory", async (t) => {
  const v = instance(t);
  const { roots, args } = checkouts(v);
  t.is((await v.cc(args(roots[0], ['-g']), { cwd: path.join(roots[0], 'build') })).code, 0);
  t.is((await v.cc(args(roots[1], ['-g']), { cwd: path.join(roots[1], 'build') })).code, 0);
  const obj = fs.readFileSync(path.join(roots[1], 'build/lib.o'));
  t.is(obj.indexOf(roots[0]), -1, "no path of checkout one in checkout two's object");
  t.not(obj.indexOf(roots[1]), -1, "checkout two's own directory is there");
  const _plain = await run('gcc', [...args(roots[1], ['-g']).slice(0, -1), 'plain.o'], { cwd: path.join(roots[1], 'build') });
  t.deepEqual(obj, fs.readFileSync(path.join(roots[1], 'build/plain.o')));
  // The same checkout still hits its own debug objects.
  t.is((await v.cc(args(roots[0], ['-g']), { cwd: path.join(roots[0], 'build') })).code, 0);
  const s = await v.stats();
  t.is(s.hits, 1);
  t.is(s.misses, 2);
});
