// Depfile reading/writing and response-file splitting, without a compiler.
import test from 'ava';
import { gccTargetOrder, parseDepfile, splitResponseFile, writeDepfile } from '../daemon/frontends/gcc/index.js';

test('parseDepfile: escapes, continuations, phony rules, CRLF', (t) => {
  const text = 'out/a.o  t\\#x: src/a.c inc/sp\\ ace.h \\\n  lit$$dollar.h h\\#ash.h two\\\\\\ back.h \\\r\n trail\\\\ end.h\ninc/sp\\ ace.h:\n\nlit$$dollar.h:\n';
  t.deepEqual(parseDepfile(text), {
    targets: ['out/a.o', 't#x'],
    deps: ['src/a.c', 'inc/sp ace.h', 'lit$dollar.h', 'h#ash.h', 'two\\ back.h', 'trail\\', 'end.h'],
  });
  t.deepEqual(parseDepfile('# comment\na.o: a.c # not a comment? no: mid-line hash\n').deps, ['a.c', '#', 'not', 'a', 'comment?', 'no:', 'mid-line', 'hash']);
  t.deepEqual(parseDepfile('c:\\x.o: a.c b.h'), { targets: ['c:\\x.o'], deps: ['a.c', 'b.h'] });
  t.deepEqual(parseDepfile(''), { targets: [], deps: [] });
  t.deepEqual(parseDepfile('x.o:\\\n a.h\n'), { targets: ['x.o'], deps: ['a.h'] });
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
  t.deepEqual(splitResponseFile(`  -DA1="x y" -DA2=a\\ b '-DA3=\\q' "-DA4=\\"z\\"" -DA6=\\\\w ''  "" x''y\n`), ['-DA1=x y', '-DA2=a b', '-DA3=q', '-DA4="z"', '-DA6=\\w', '', '', 'xy']);
  // A backslash-newline keeps the newline inside the argument (checked with gcc -### and clang -###).
  t.deepEqual(splitResponseFile('-Da\\\nb "-Dc\\\nd"\n# -De\n'), ['-Da\nb', '-Dc\nd', '#', '-De']);
  t.deepEqual(splitResponseFile(' \t\r\n'), []);
});
