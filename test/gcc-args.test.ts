// Parser unit tests over real-world command lines (no compiler runs here; see
// gcc-real.test.ts for the derivations checked against gcc and clang).
import test from './helpers/test.js';
import { argsForMiss, parseGccArgs, type GccCompile, type GccParse, type ParseEnv } from '../daemon/frontends/gcc/index.js';

const files: Record<string, string> = {
  '/w/args.rsp': '-DFROM_RSP "-I/opt/my inc" -c\n',
  '/w/nested.rsp': '-O2 @/w/args.rsp -Wall',
  '/w/mmd.rsp': '-MMD -MF out/x.d',
  '/w/loop.rsp': '@loop.rsp',
  '/w/empty.rsp': '  \n ',
};
const penv = (over: Partial<ParseEnv> = {}): ParseEnv => ({
  cwd: '/w',
  readFile: (p) => {
    const t = files[p];
    if (t === undefined) throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
    return t;
  },
  env: {},
  ...over,
});

const parse = (cmd: string | string[], over: Partial<ParseEnv> = {}): GccParse => parseGccArgs(typeof cmd === 'string' ? cmd.split(' ') : cmd, penv(over));
const compile = (t: { fail(m: string): void }, cmd: string | string[], over: Partial<ParseEnv> = {}): GccCompile => {
  const r = parse(cmd, over);
  if (r.kind !== 'compile') {
    t.fail(`expected compile, got ${r.kind} ${r.kind === 'pass' ? `${r.reason} ${r.detail ?? ''}` : ''}`);
    throw new Error('not a compile');
  }
  return r;
};

test('CMake: -MD -MT -MF, defines and includes', (t) => {
  const r = compile(
    t,
    '-DFOO=1 -I/src/include -isystem /usr/include/glib -O2 -g -std=gnu11 -MD -MT CMakeFiles/x.dir/a.c.o -MF CMakeFiles/x.dir/a.c.o.d -o CMakeFiles/x.dir/a.c.o -c /src/a.c',
  );
  t.is(r.lang, 'c');
  t.is(r.source, '/src/a.c');
  t.is(r.output, 'CMakeFiles/x.dir/a.c.o');
  t.deepEqual(r.depfile, {
    mode: 'MD',
    file: 'CMakeFiles/x.dir/a.c.o.d',
    targets: [{ value: 'CMakeFiles/x.dir/a.c.o', quoted: false }],
    defaultTarget: 'CMakeFiles/x.dir/a.c.o',
    phony: false,
    viaWp: false,
  });
  t.deepEqual(r.keyArgs, ['-D', 'FOO=1', '-I', '/src/include', '-isystem', '/usr/include/glib', '-O2', '-g', '-std=gnu11']);
  t.deepEqual(r.pathArgs, [3, 5]);
  t.deepEqual(r.includeDirs, { quote: [], angle: ['/src/include'], system: ['/usr/include/glib'], after: [] });
  t.true(r.debug);
  t.is(r.outputKind, 'object');
  t.deepEqual(
    r.execArgs,
    '-DFOO=1 -I/src/include -isystem /usr/include/glib -O2 -g -std=gnu11 -MD -MT CMakeFiles/x.dir/a.c.o -MF CMakeFiles/x.dir/a.c.o.d -o CMakeFiles/x.dir/a.c.o -c /src/a.c'.split(
      ' ',
    ),
  );
});

test('redis: -MMD -o x -c y, derived depfile next to the object', (t) => {
  const r = compile(t, '-pedantic -DREDIS_STATIC= -std=c99 -Wall -W -O2 -g -ggdb -I../deps/hiredis -MMD -o server.o -c server.c');
  t.is(r.depfile?.mode, 'MMD');
  t.is(r.depfile?.file, 'server.d');
  t.deepEqual(r.depfile?.targets, []);
  t.is(r.depfile?.defaultTarget, 'server.o');
  t.deepEqual(r.keyArgs, ['-pedantic', '-D', 'REDIS_STATIC=', '-std=c99', '-Wall', '-W', '-O2', '-g', '-ggdb', '-I', '../deps/hiredis']);
});

test('libtool: -fPIC -DPIC -o .libs/x.o, -MT -MD -MP -MF .deps/x.Tpo', (t) => {
  const r = compile(t, '-DHAVE_CONFIG_H -I. -I.. -g -O2 -MT libfoo_la-x.lo -MD -MP -MF .deps/libfoo_la-x.Tpo -c x.c -fPIC -DPIC -o .libs/libfoo_la-x.o');
  t.is(r.output, '.libs/libfoo_la-x.o');
  t.deepEqual(r.depfile, {
    mode: 'MD',
    file: '.deps/libfoo_la-x.Tpo',
    targets: [{ value: 'libfoo_la-x.lo', quoted: false }],
    defaultTarget: '.libs/libfoo_la-x.o',
    phony: true,
    viaWp: false,
  });
  t.deepEqual(r.keyArgs, ['-D', 'HAVE_CONFIG_H', '-I', '.', '-I', '..', '-g', '-O2', '-fPIC', '-D', 'PIC']);
});

test('kernel: -Wp,-MMD,dir/.x.o.d, cc1 names the rule after the source; clang after -o', (t) => {
  const cmd = '-Wp,-MMD,drivers/.foo.o.d -nostdinc -I./arch/x86/include -include ./include/linux/kconfig.h -D__KERNEL__ -c -o drivers/foo.o drivers/foo.c';
  const r = compile(t, cmd);
  t.deepEqual(r.depfile, { mode: 'MMD', file: 'drivers/.foo.o.d', targets: [], defaultTarget: 'foo.o', phony: false, viaWp: true });
  t.deepEqual(r.keyArgs, ['-nostdinc', '-I', './arch/x86/include', '-include', './include/linux/kconfig.h', '-D', '__KERNEL__']);
  t.deepEqual(r.pathArgs, [2, 4]);
  const c = compile(t, cmd, { compiler: 'clang' });
  t.is(c.depfile?.defaultTarget, 'drivers/foo.o');
  const m = argsForMiss(r, r.execArgs, '/tmp/x.d');
  t.deepEqual(m, { argv: cmd.replace('-Wp,-MMD,', '-Wp,-MD,').split(' '), depfileToRead: 'drivers/.foo.o.d', filterSystem: true });
});

test('joined and separate forms normalize to the same key', (t) => {
  const a = compile(t, '-c a.c -Iinc -DX=1 -UY -isysroot/sdk --sysroot=/sr -include pre.h -imacros m.h -L/l -lm -xc --param=max-inline-insns-single=5');
  const b = compile(t, '-c a.c -I inc -D X=1 -U Y -isysroot /sdk --sysroot /sr -includepre.h -imacrosm.h -L /l -l m -x c --param max-inline-insns-single=5');
  t.deepEqual(a.keyArgs, b.keyArgs);
  t.deepEqual(a.pathArgs, b.pathArgs);
  t.deepEqual(
    a.pathArgs.map((i) => a.keyArgs[i]),
    ['inc', '/sdk', '/sr', 'pre.h', 'm.h', '/l'],
  );
  t.true(a.keyArgs.includes('--param=max-inline-insns-single=5'));
});

test('-o joined and separate; last -o wins; default object name in cwd', (t) => {
  t.is(compile(t, '-c dir/foo.c -obar.o').output, 'bar.o');
  t.is(compile(t, '-c dir/foo.c -o a.o -o b.o').output, 'b.o');
  t.is(compile(t, '-c dir/sub/foo.tar.c').output, 'foo.tar.o');
  t.is(compile(t, '-c dir/foo.c -MD').depfile?.file, 'foo.d');
  t.is(compile(t, '-c dir/foo.c -MD -o out/x.obj.o').depfile?.file, 'out/x.obj.d');
  t.is(compile(t, '-c dir/foo.c -MD -o out/noext').depfile?.file, 'out/noext.d');
  t.is(compile(t, '-c dir/foo.c -MD -o out.d/.o').depfile?.file, 'out.d/.d');
  t.is(compile(t, '-c foo.c -MD -MF a.d -MF b.d').depfile?.file, 'b.d');
  t.is(compile(t, '-c foo.c -MDMFjoined.d'.replace('MDMF', 'MD -MF')).depfile?.file, 'joined.d');
  t.is(compile(t, '-c foo.c -MD -MFjoined.d').depfile?.file, 'joined.d');
});

test('long option spellings', (t) => {
  const r = compile(t, ['--compile', 'a.c', '--output=x.o', '--include-directory', 'inc', '--define-macro=A', '--write-user-dependencies']);
  t.is(r.output, 'x.o');
  t.deepEqual(r.keyArgs, ['-I', 'inc', '-D', 'A']);
  t.is(r.depfile?.mode, 'MMD');
  t.deepEqual(parse('--preprocess a.c'), { kind: 'pass', reason: 'preprocess_only', detail: '-E' });
});

test('-x selects the language for later inputs; -x none resets; header means pch', (t) => {
  t.is(compile(t, '-c -x c++ foo.c').lang, 'c++');
  t.is(compile(t, '-c -x c++ -x none foo.c').lang, 'c');
  t.is(compile(t, '-c foo.c -x c++').lang, 'c');
  t.is(compile(t, '-c -xobjective-c x.m').lang, 'objective-c');
  t.is(compile(t, '-c -x objc++ x.txt').lang, 'objective-c++');
  t.is(compile(t, '-c x.S').lang, 'assembler-with-cpp');
  t.is(compile(t, '-c x.sx').lang, 'assembler-with-cpp');
  t.is(compile(t, '-c x.mm').lang, 'objective-c++');
  for (const f of ['x.cc', 'x.cpp', 'x.cxx', 'x.C', 'x.c++', 'x.cp', 'x.CPP']) t.is(compile(t, ['-c', f]).lang, 'c++', f);
  t.is(compile(t, '-c -x c noext').lang, 'c');
  t.like(parse('-c x.h'), { kind: 'pass', reason: 'pch_output' });
  t.like(parse('-c -x c-header x.c'), { kind: 'pass', reason: 'pch_output' });
  t.like(parse('-c -x c++-header x.hpp'), { kind: 'pass', reason: 'pch_output' });
  t.like(parse('-c x.s'), { kind: 'pass', reason: 'unsupported_language' });
  t.like(parse('-c x.f90'), { kind: 'pass', reason: 'unsupported_language' });
  t.like(parse('-c x.i'), { kind: 'pass', reason: 'unsupported_language' });
  t.like(parse('-c -x fortran x.c'), { kind: 'pass', reason: 'unsupported_language' });
  t.like(parse('-c x.cppm'), { kind: 'pass', reason: 'modules' });
  t.like(parse('-c noext'), { kind: 'pass', reason: 'no_source' });
});

test('pass-through reasons', (t) => {
  const cases: [string, string][] = [
    ['a.c -o a', 'link'],
    ['a.o b.o -o prog', 'link'],
    ['-E a.c', 'preprocess_only'],
    ['-c -E a.c', 'preprocess_only'],
    ['-M -MM a.c', 'preprocess_only'],
    ['-MM -MF a.d a.c -o b.d', 'preprocess_only'],
    ['-MM a.c -o -', 'preprocess_only'],
    ['-MM a.c b.cc', 'preprocess_only'],
    ['-MM -x c -', 'preprocess_only'],
    ['-c -M -MD a.c', 'preprocess_only'],
    ['-c a.c b.c', 'multiple_sources'],
    ['-c a.c b.o', 'multiple_sources'],
    ['-c', 'no_source'],
    ['-c -Wall', 'no_source'],
    ['-c a.c -o -', 'output_stdout'],
    ['-c -x c -', 'stdin_source'],
    ['-c a.c -o out/', 'output_to_dir'],
    ['-c a.c -save-temps', 'unsupported_option'],
    ['-c a.c -save-temps=obj', 'unsupported_option'],
    ['-c a.c --coverage', 'unsupported_option'],
    ['-c a.c -ftest-coverage', 'unsupported_option'],
    ['-c a.c -fprofile-arcs', 'unsupported_option'],
    ['-c a.c -fprofile-generate=/tmp/p', 'unsupported_option'],
    ['-c a.c -fprofile-use=/tmp/p', 'unsupported_option'],
    ['-c a.c -fprofile-use', 'unsupported_option'],
    ['-c a.c -gsplit-dwarf', 'unsupported_option'],
    ['-c a.c -fdump-tree-all', 'unsupported_option'],
    ['-c a.c -fdump-rtl-expand', 'unsupported_option'],
    ['-c a.c -fstack-usage', 'unsupported_option'],
    ['-c a.c -fcallgraph-info', 'unsupported_option'],
    ['-c a.c -fcallgraph-info=su', 'unsupported_option'],
    ['-c a.c -Xpreprocessor -DX', 'unsupported_option'],
    ['-c a.c -Wp,-DX', 'unsupported_option'],
    ['-c a.c -Wp,-MD,a.d,-DX', 'unsupported_option'],
    ['-c a.c -Wp,-MD,a.d -MD', 'unsupported_option'],
    ['-c a.c -MD -MG', 'unsupported_option'],
    ['-c a.c -Wa,-adhln=a.lst', 'unsupported_option'],
    ['-c a.c -Wa,--MD,x.d', 'unsupported_option'],
    ['-c a.cc -fmodules-ts', 'modules'],
    ['-c a.cc -fmodules', 'modules'],
    ['-c a.cc -fmodule-file=x.pcm', 'modules'],
    ['-c a.c -include-pch x.pch', 'unsupported_option'],
    ['-c a.c -aux-info x.aux', 'unsupported_option'],
    ['-c a.c -v', 'informational'],
    ['-c a.c -###', 'informational'],
    ['-c a.c --version', 'informational'],
    ['-print-file-name=libc.so', 'informational'],
    ['-c a.c -dumpmachine', 'informational'],
    ['-c a.c -fsyntax-only', 'unsupported_option'],
    ['-c a.c -ftime-trace', 'unsupported_option'],
    ['-c a.c -dA', 'unsupported_option'],
    ['-c a.c @/w/missing.rsp', 'bad_response_file'],
    ['-c a.c @/w/loop.rsp', 'bad_response_file'],
    ['-c a.c -o', 'unsupported_option'],
  ];
  for (const [cmd, reason] of cases) t.is((parse(cmd) as { reason?: string }).reason, reason, cmd);
});

test('DEPENDENCIES_OUTPUT / SUNPRO_DEPENDENCIES make the call uncacheable', (t) => {
  t.like(parse('-c a.c', { env: { DEPENDENCIES_OUTPUT: 'a.d' } }), { kind: 'pass', reason: 'env_depfile' });
  t.like(parse('-c a.c', { env: { SUNPRO_DEPENDENCIES: 'a.d x' } }), { kind: 'pass', reason: 'env_depfile' });
  t.is(parse('-c a.c', { env: { DEPENDENCIES_OUTPUT: '' } }).kind, 'compile');
});

test('options that take a separate value do not swallow or misread the source', (t) => {
  const r = compile(
    t,
    '-c a.c -Xlinker --no-undefined -Xassembler --noexecstack -arch x86_64 -target x86_64-linux-gnu -u sym -z defs -T x.ld -G 8 -dumpbase a.c -dumpdir d/ -e start -mllvm -x86-asm-syntax=intel -Xclang -fno-pch-timestamp',
  );
  t.is(r.source, 'a.c');
  t.deepEqual(r.keyArgs, [
    '-Xlinker',
    '--no-undefined',
    '-Xassembler',
    '--noexecstack',
    '-arch',
    'x86_64',
    '-target',
    'x86_64-linux-gnu',
    '-u',
    'sym',
    '-z',
    'defs',
    '-T',
    'x.ld',
    '-G',
    '8',
    '-dumpbase',
    'a.c',
    '-dumpdir',
    'd/',
    '-e',
    'start',
    '-mllvm',
    '-x86-asm-syntax=intel',
    '-Xclang',
    '-fno-pch-timestamp',
  ]);
  t.deepEqual(r.pathArgs, [13]);
  // `-undef` is a flag, not -u with "ndef"; unknown options are kept.
  t.deepEqual(compile(t, '-c a.c -undef -fsomething-new -mavx2').keyArgs, ['-undef', '-fsomething-new', '-mavx2']);
  t.like(parse('-c a.c -Xclang -load -Xclang plugin.so'), { kind: 'pass', reason: 'unsupported_option' });
});

test('include directories, -I- and environment include paths', (t) => {
  const r = compile(t, '-c a.c -Iq1 -iquote q0 -I- -Ia1 -isystem s1 -idirafter f1 -Ia2', {
    env: { CPATH: '/cp1::/cp2', C_INCLUDE_PATH: '/ci', CPLUS_INCLUDE_PATH: '/cpp' },
  });
  t.deepEqual(r.includeDirs, { quote: ['q0', 'q1'], angle: ['a1', 'a2', '/cp1', '.', '/cp2'], system: ['s1', '/ci'], after: ['f1'] });
  t.true(r.keyArgs.includes('-I-'));
  const cxx = compile(t, '-c a.cc -Ia', { env: { C_INCLUDE_PATH: '/ci', CPLUS_INCLUDE_PATH: '/cpp' } });
  t.deepEqual(cxx.includeDirs.system, ['/cpp']);
});

test('response files: expanded in place in keyArgs, kept in execArgs, nested, quotes', (t) => {
  const r = compile(t, ['a.c', '@nested.rsp', '-o', 'a.o']);
  t.deepEqual(r.keyArgs, ['-O2', '-D', 'FROM_RSP', '-I', '/opt/my inc', '-Wall']);
  t.deepEqual(r.execArgs, ['a.c', '@nested.rsp', '-o', 'a.o']);
  t.deepEqual(r.expandedArgs, ['a.c', '-O2', '-DFROM_RSP', '-I/opt/my inc', '-c', '-Wall', '-o', 'a.o']);
  t.deepEqual(compile(t, ['-c', 'a.c', '@empty.rsp']).keyArgs, []);
});

test('-MMD inside a response file: the miss runs the expanded list with -MD', (t) => {
  const r = compile(t, ['-c', 'a.c', '@mmd.rsp']);
  t.is(r.depfile?.mode, 'MMD');
  t.is(r.depfile?.file, 'out/x.d');
  t.deepEqual(argsForMiss(r, r.execArgs, '/tmp/t.d'), { argv: ['-c', 'a.c', '-MD', '-MF', 'out/x.d'], depfileToRead: 'out/x.d', filterSystem: true });
});

test('argsForMiss: none, -MD, -MMD (every occurrence)', (t) => {
  const none = compile(t, '-c a.c -o a.o');
  t.deepEqual(argsForMiss(none, none.execArgs, '/tmp/v.d'), {
    argv: ['-c', 'a.c', '-o', 'a.o', '-MD', '-MF', '/tmp/v.d'],
    depfileToRead: '/tmp/v.d',
    filterSystem: false,
  });
  const md = compile(t, '-c a.c -MD -MF a.dep');
  t.deepEqual(argsForMiss(md, md.execArgs, '/tmp/v.d'), { argv: md.execArgs, depfileToRead: 'a.dep', filterSystem: false });
  const mmd = compile(t, '-c a.c -MMD -MD -MMD');
  t.is(mmd.depfile?.mode, 'MMD');
  t.deepEqual(argsForMiss(mmd, mmd.execArgs, '/tmp/v.d'), { argv: ['-c', 'a.c', '-MD', '-MD', '-MD'], depfileToRead: 'a.d', filterSystem: true });
});

test('-MT/-MQ keep command-line order; -MP; -S output', (t) => {
  const r = compile(t, ['-c', 'a.c', '-MD', '-MQ', 'q 1', '-MT', 't1', '-MTt2', '-MQq2', '-MP']);
  t.deepEqual(r.depfile?.targets, [
    { value: 'q 1', quoted: true },
    { value: 't1', quoted: false },
    { value: 't2', quoted: false },
    { value: 'q2', quoted: true },
  ]);
  t.true(r.depfile?.phony);
  const s = compile(t, '-S dir/a.c -MMD');
  t.is(s.outputKind, 'assembly');
  t.is(s.output, 'a.s');
  t.is(s.depfile?.defaultTarget, 'a.o');
  t.is(compile(t, '-S -c a.c').outputKind, 'assembly');
});

test('debug levels, colour, prefix maps, extra inputs', (t) => {
  const dbg = (s: string): boolean => compile(t, `-c a.c ${s}`).debug;
  t.true(dbg('-g'));
  t.true(dbg('-g3'));
  t.true(dbg('-ggdb'));
  t.true(dbg('-gdwarf-4'));
  t.true(dbg('-gline-tables-only'));
  t.false(dbg('-g0'));
  t.false(dbg('-g -g0'));
  t.true(dbg('-g0 -g2'));
  t.false(dbg('-gz'));
  t.false(dbg('-gno-column-info'));
  t.false(dbg('-O2'));
  t.is(compile(t, '-c a.c').colorDiagnostics, 'auto');
  t.is(compile(t, '-c a.c -fdiagnostics-color').colorDiagnostics, 'always');
  t.is(compile(t, '-c a.c -fdiagnostics-color=never').colorDiagnostics, 'never');
  t.is(compile(t, '-c a.c -fcolor-diagnostics -fno-color-diagnostics').colorDiagnostics, 'never');
  t.is(compile(t, '-c a.c -fdiagnostics-color=always -fdiagnostics-color=auto').colorDiagnostics, 'auto');
  t.false(compile(t, '-c a.c').hasPrefixMap);
  t.true(compile(t, '-c a.c -fdebug-prefix-map=/a=/b').hasPrefixMap);
  t.true(compile(t, '-c a.c -ffile-prefix-map=/a=.').hasPrefixMap);
  t.true(compile(t, '-c a.c -fmacro-prefix-map=/a=.').hasPrefixMap);
  const x = compile(t, '-c a.c -specs=my.specs -fplugin=./p.so -fsanitize-ignorelist=ign.txt -frecord-gcc-switches');
  t.deepEqual(x.extraInputs, ['my.specs', './p.so', 'ign.txt']);
  t.deepEqual(x.keyArgs, ['-specs', 'my.specs', '-fplugin=', './p.so', '-fsanitize-ignorelist=', 'ign.txt', '-frecord-gcc-switches']);
  t.deepEqual(x.pathArgs, [1, 3, 5]);
});
