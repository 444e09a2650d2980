// Depfile reading/writing and response-file splitting, without a compiler.
import test from './helpers/test.js';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseMake } from '../daemon/frontends/gcc/depfile.js';
import { gccTargetOrder, parseDepfile, splitResponseFile, writeDepfile } from '../daemon/frontends/gcc/index.js';

test('parseDepfile: escapes, continuations, phony rules, CRLF', (t) => {
  const text =
    'out/a.o  t\\#x: src/a.c inc/sp\\ ace.h \\\n  lit$$dollar.h h\\#ash.h two\\\\\\ back.h \\\r\n trail\\\\ end.h\ninc/sp\\ ace.h:\n\nlit$$dollar.h:\n';
  t.deepEqual(parseDepfile(text), {
    targets: ['out/a.o', 't#x'],
    deps: ['src/a.c', 'inc/sp ace.h', 'lit$dollar.h', 'h#ash.h', 'two\\ back.h', 'trail\\', 'end.h'],
  });
  t.deepEqual(parseDepfile('# comment\na.o: a.c # not a comment? no: mid-line hash\n').deps, ['a.c', '#', 'not', 'a', 'comment?', 'no:', 'mid-line', 'hash']);
  t.deepEqual(parseDepfile('c:\\x.o: a.c b.h'), { targets: ['c:\\x.o'], deps: ['a.c', 'b.h'] });
  t.deepEqual(parseDepfile(''), { targets: [], deps: [] });
  t.deepEqual(parseDepfile('x.o:\\\n a.h\n'), { targets: ['x.o'], deps: ['a.h'] });
});

test('the plain-depfile path reads what make syntax reads: real gcc depfiles and random text', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vrift-depfile-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.writeFileSync(path.join(dir, 'a.c'), '#include <stdio.h>\n#include <sys/socket.h>\n#include "b.h"\n');
  fs.writeFileSync(path.join(dir, 'b.h'), '#include <string.h>\n');
  const real = [
    ['-MD', '-MP'],
    ['-MMD', '-MT', 'x.o y.o', '-MQ', 'z$.o'],
    ['-MD', '-MT', 'long/' + 'd'.repeat(90) + '.o'],
  ].map((flags) => {
    execFileSync('gcc', ['-c', 'a.c', '-o', 'a.o', ...flags, '-MF', 'a.d'], { cwd: dir });
    return fs.readFileSync(path.join(dir, 'a.d'), 'utf8');
  });
  for (const text of real) t.deepEqual(parseDepfile(text), parseMake(text), text);
  t.true(parseDepfile(real[0]).deps.includes('/usr/include/stdio.h'));
  // Random text over the characters that matter to either path (fixed seed: reproducible).
  const alphabet = ['a', 'b.h', ' ', '\t', '\n', '\\', '\\\n', ':', ': ', '$', '#', '\r\n', 'c:', '/'];
  let seed = 42;
  const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
  for (let i = 0; i < 3000; i++) {
    const text = Array.from({ length: 1 + rnd(30) }, () => alphabet[rnd(alphabet.length)]).join('');
    t.deepEqual(parseDepfile(text), parseMake(text), JSON.stringify(text));
  }
});

test('writeDepfile then parseDepfile round-trips odd names', (t) => {
  const deps = ['src/a.c', 'a b.h', 'x$y.h', 'h#.h', 'back\\ slash.h', 'dir/' + 'z'.repeat(100) + '.h', 'tab\there.h'];
  const back = parseDepfile(writeDepfile([{ value: 'o u t.o', quoted: true }], deps, true));
  t.deepEqual(back, { targets: ['o u t.o'], deps });
});

test('gcc moves -MT targets in front of -MQ ones by swapping, as mkdeps does', (t) => {
  const order = gccTargetOrder([
    { value: 'q1', quoted: true },
    { value: 'q2', quoted: true },
    { value: 't1', quoted: false },
    { value: 'q3', quoted: true },
    { value: './t2', quoted: false },
  ]);
  t.deepEqual(order, { list: ['t1', 't2', 'q3', 'q1', 'q2'], quoteFrom: 2 });
  t.is(writeDepfile([{ value: 'a', quoted: true }], [], false), '');
});

test('splitResponseFile follows libiberty buildargv', (t) => {
  t.deepEqual(splitResponseFile(`  -DA1="x y" -DA2=a\\ b '-DA3=\\q' "-DA4=\\"z\\"" -DA6=\\\\w ''  "" x''y\n`), [
    '-DA1=x y',
    '-DA2=a b',
    '-DA3=q',
    '-DA4="z"',
    '-DA6=\\w',
    '',
    '',
    'xy',
  ]);
  // A backslash-newline keeps the newline inside the argument (checked with gcc -### and clang -###).
  t.deepEqual(splitResponseFile('-Da\\\nb "-Dc\\\nd"\n# -De\n'), ['-Da\nb', '-Dc\nd', '#', '-De']);
  t.deepEqual(splitResponseFile(' \t\r\n'), []);
});
