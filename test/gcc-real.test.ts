// The parser's derivations and the depfile writer, checked against what the real gcc,
// g++, cc, c++, clang and clang++ do in temp dirs.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from './helpers/test.js';
import type { ExecutionContext } from 'ava';
import {
  argsForMiss,
  compilerFlavor,
  filterSystemDeps,
  parseDepfile,
  parseGccArgs,
  sysdirFlags,
  systemIncludeDirs,
  writeDepfile,
  type GccCompile,
} from '../daemon/frontends/gcc/index.js';

const DRIVERS = ['gcc', 'g++', 'cc', 'c++', 'clang', 'clang++'] as const;
const isCxx = (exe: string): boolean => exe.endsWith('++');

function tmpdir(t: ExecutionContext): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'vrift-gcc-'));
  t.teardown(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

function write(dir: string, rel: string, text: string): void {
  fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
  fs.writeFileSync(path.join(dir, rel), text);
}

/** A small project: a system header, a user header found through -I, a header whose path has a space. */
function project(t: ExecutionContext, ext: string): string {
  const d = tmpdir(t);
  write(d, `src/foo.${ext}`, '#include <stdio.h>\n#include "a.h"\n#include "sp ace/b.h"\nint f(void) { return A; }\n');
  write(d, 'inc/a.h', '#define A 0\n');
  write(d, 'sp ace/b.h', '\n');
  fs.mkdirSync(path.join(d, 'out'));
  return d;
}

function parseIn(t: ExecutionContext, dir: string, exe: string, args: string[]): GccCompile {
  const r = parseGccArgs(args, { cwd: dir, env: {}, readFile: (p) => fs.readFileSync(p, 'utf8'), compiler: compilerFlavor(exe) });
  if (r.kind !== 'compile') throw new Error(`${exe} ${args.join(' ')}: ${r.kind} ${r.kind === 'pass' ? `${r.reason} ${r.detail ?? ''}` : ''}`);
  t.pass();
  return r;
}

/** Files under dir, relative, recursively. */
function filesIn(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true }) as string[]).filter((f) => fs.statSync(path.join(dir, f)).isFile());
}

const run = (exe: string, args: string[], cwd: string): void => {
  execFileSync(exe, args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
};

/** Runs the real compiler and checks the files the parser predicted, byte for byte for the depfile. */
function checkDerivation(t: ExecutionContext, exe: string, args: string[]): void {
  const ext = isCxx(exe) ? 'cc' : 'c';
  const dir = project(t, ext);
  const a = args.map((x) => x.replace('SRC', `src/foo.${ext}`));
  const parsed = parseIn(t, dir, exe, a);
  const before = new Set(filesIn(dir));
  run(exe, a, dir);
  const label = `${exe} ${a.join(' ')}`;
  t.true(fs.existsSync(path.join(dir, parsed.output)), `${label}: output ${parsed.output}`);
  // Every file the compiler created, in subdirectories too (-MF out/x.d, -Wp,-MD,out/x.d).
  const created = filesIn(dir).filter((f) => !before.has(f));
  const expectCreated = [parsed.output, parsed.depfile?.file]
    .filter((f): f is string => !!f)
    .map((f) => path.normalize(f))
    .sort();
  t.deepEqual(created.sort(), expectCreated, `${label}: files created`);
  if (!parsed.depfile) return;
  const depPath = path.join(dir, parsed.depfile.file);
  t.true(fs.existsSync(depPath), `${label}: depfile ${parsed.depfile.file}`);
  const real = fs.readFileSync(depPath, 'utf8');
  const targets = parsed.depfile.targets.length ? parsed.depfile.targets : [{ value: parsed.depfile.defaultTarget, quoted: true }];
  const mine = writeDepfile(targets, parseDepfile(real).deps, parsed.depfile.phony, { compiler: parsed.compiler });
  t.is(mine, real, label);
}

const DERIVATIONS: string[][] = [
  ['-c', 'SRC', '-Iinc', '-I.', '-MD'],
  ['-c', 'SRC', '-Iinc', '-I.', '-MMD'],
  ['-c', 'SRC', '-Iinc', '-I.', '-MMD', '-o', 'out/x.obj.o'],
  ['-c', 'SRC', '-Iinc', '-I.', '-MD', '-oout/noext'],
  ['-c', 'SRC', '-Iinc', '-I.', '-MD', '-o', 'out/.o'],
  ['-c', 'SRC', '-Iinc', '-I.', '-MD', '-MF', 'out/custom.d', '-MP'],
  ['-c', 'SRC', '-Iinc', '-I.', '-MMD', '-MFout/joined.d', '-MT', 'explicit.o'],
  ['-c', 'SRC', '-Iinc', '-I.', '-MMD', '-MP', '-MQ', 'q$1 a#b', '-MT', 't$1 c#d', '-MQ', 'z\\ y', '-MT', 'last', '-o', 'out/o$x.o'],
  ['-c', 'SRC', '-Iinc', '-I.', '-MD', '-MQ', 'q1', '-MQ', 'q2', '-MT', 't1', '-MQ', 'q3', '-MT', 't2'],
  ['-c', 'SRC', '-Iinc', '-I.', '-Wp,-MD,out/wp.d', '-o', 'out/wp.o'],
  ['-c', 'SRC', '-Iinc', '-I.', '-Wp,-MMD,out/.wp2.o.d', '-o', 'out/wp2.o'],
  ['-S', 'SRC', '-Iinc', '-I.', '-MMD'],
  ['-S', 'SRC', '-Iinc', '-I.', '-MMD', '-o', 'out/x.s'],
  ['-c', './SRC', '-I./inc', '-I.', '-MMD', '-o', './out/dot.o'],
  ['-c', 'SRC', '-Iinc', '-I.', '-MD', '-MT', './out/./t.o'],
  ['-c', 'SRC', '-Iinc', '-I.'],
];

for (const exe of DRIVERS) {
  test(`${exe}: default output and depfile names, depfile bytes`, (t) => {
    for (const args of DERIVATIONS) checkDerivation(t, exe, args);
  });
}

test('writeDepfile wraps long paths exactly like gcc and clang', (t) => {
  for (const exe of ['gcc', 'clang']) {
    const dir = tmpdir(t);
    const long = 'a-rather-long-directory-name-that-forces-wrapping/and-then-some-more-of-it';
    // clang writes a tab unescaped, which no make parser can read back: gcc only.
    const hdrs = ['x.h', 'a$dollar.h', 'h#ash.h', 'two  spaces.h', `${'y'.repeat(80)}.h`, ...(exe === 'gcc' ? ['tab\there.h'] : [])];
    write(dir, 'main.c', hdrs.map((h) => `#include "${long}/${h}"\n`).join('') + 'int x;\n');
    for (const h of hdrs) write(dir, `${long}/${h}`, '\n');
    for (const extra of [[], ['-MP'], ['-MT', `${'t'.repeat(70)}.o`, '-MQ', 'second target.o'], ['-MQ', 'x', '-MT', 'y'.repeat(40), '-MT', 'z'.repeat(40)]]) {
      const args = ['-c', 'main.c', '-MD', '-o', `${long}/obj.o`, ...extra];
      const parsed = parseIn(t, dir, exe, args);
      run(exe, args, dir);
      const real = fs.readFileSync(path.join(dir, parsed.depfile!.file), 'utf8');
      const targets = parsed.depfile!.targets.length ? parsed.depfile!.targets : [{ value: parsed.depfile!.defaultTarget, quoted: true }];
      const parsedDeps = parseDepfile(real).deps;
      t.deepEqual(
        parsedDeps.filter((d) => !d.startsWith('/')).slice(1),
        hdrs.map((h) => `${long}/${h}`),
        `${exe} ${extra.join(' ')}: parse`,
      );
      t.is(writeDepfile(targets, parsedDeps, parsed.depfile!.phony, { compiler: parsed.compiler }), real, `${exe} ${extra.join(' ')}`);
    }
  }
});

test('systemIncludeDirs: what -v prints, per language and flags; memo injected', async (t) => {
  const c = await systemIncludeDirs('gcc', 'c', []);
  t.true(c.includes('/usr/include'));
  t.true(c.some((d) => /gcc\/x86_64-linux-gnu\/\d+\/include$/.test(d)));
  const cxx = await systemIncludeDirs('g++', 'c++', []);
  t.true(cxx.some((d) => /c\+\+\/\d+$/.test(d)));
  t.false(c.some((d) => /c\+\+\/\d+$/.test(d)));
  t.deepEqual(await systemIncludeDirs('gcc', 'c', ['-nostdinc']), []);
  const clang = await systemIncludeDirs('clang', 'c', []);
  t.true(clang.some((d) => d.includes('/clang/')));
  const memo = new Map<string, Promise<string[]>>();
  let calls = 0;
  const runProbe = async (): Promise<string> => {
    calls++;
    return '#include "..." search starts here:\n#include <...> search starts here:\n /x\n /y (framework directory)\nEnd of search list.\n';
  };
  const [p1, p2] = await Promise.all([systemIncludeDirs('cc', 'c', [], { memo, run: runProbe }), systemIncludeDirs('cc', 'c', [], { memo, run: runProbe })]);
  t.deepEqual(p1, ['/x', '/y']);
  t.is(p1, p2);
  t.is(calls, 1);
  await t.throwsAsync(systemIncludeDirs('cc', 'c', ['-m32'], { memo, run: async () => 'garbage' }), { message: /search starts here/ });
  t.false(memo.has(['cc', '-m32', '-x', 'c', '-E', '-v', '/dev/null'].join('\0')));
  await t.throwsAsync(systemIncludeDirs('/nonexistent/cc', 'c', []));
});

/**
 * The -MMD path of a miss: run argsForMiss's argv (-MD instead of -MMD), filter the full list
 * with the built-in include dirs, and compare with what -MMD itself writes.
 */
test("-MMD via -MD plus system-header filtering equals the compiler's own -MMD depfile", async (t) => {
  for (const exe of DRIVERS) {
    const dir = tmpdir(t);
    const ext = isCxx(exe) ? 'cc' : 'c';
    write(
      dir,
      `src/main.${ext}`,
      [
        '#include <stdio.h>',
        '#include <stdlib.h>',
        '#include "local.h"',
        '#include <lib.h>',
        '#include <sys_lib.h>',
        '#include <subhdr.h>',
        '#include <after.h>',
        '#include "sp ace.h"',
        'int main(void) { return LOCAL + LIB + SYS + SUB + AFTER; }',
        '',
      ].join('\n'),
    );
    write(dir, 'src/local.h', '#include "local2.h"\n#define LOCAL 1\n');
    write(dir, 'src/local2.h', '\n');
    write(dir, 'src/sp ace.h', '\n');
    write(dir, 'inc/lib.h', '#include <string.h>\n#define LIB 2\n');
    // A system directory whose subdirectory is also given as a user -I directory.
    write(dir, 'sysinc/sys_lib.h', '#include "sys_helper.h"\n#define SYS 3\n');
    write(dir, 'sysinc/sys_helper.h', '\n');
    write(dir, 'sysinc/sub/subhdr.h', '#define SUB 4\n');
    write(dir, 'afterinc/after.h', '#define AFTER 5\n');
    const args = ['-c', `src/main.${ext}`, '-Iinc', '-isystem', 'sysinc', '-Isysinc/sub', '-idirafter', 'afterinc', '-MMD', '-MP', '-o', 'out/main.o'];
    fs.mkdirSync(path.join(dir, 'out'));
    const parsed = parseIn(t, dir, exe, args);
    run(exe, args, dir);
    const reference = fs.readFileSync(path.join(dir, 'out/main.d'), 'utf8');
    fs.rmSync(path.join(dir, 'out'), { recursive: true });
    fs.mkdirSync(path.join(dir, 'out'));

    const miss = argsForMiss(parsed, parsed.execArgs, path.join(dir, 'unused.d'));
    t.true(miss.filterSystem);
    t.false(miss.argv.includes('-MMD'));
    run(exe, miss.argv, dir);
    const full = parseDepfile(fs.readFileSync(path.join(dir, miss.depfileToRead), 'utf8')).deps;
    t.true(
      full.some((d) => d.endsWith('/stdio.h')),
      `${exe}: the miss depfile lists system headers`,
    );
    const sysdirs = await systemIncludeDirs(exe, parsed.lang, sysdirFlags(parsed));
    const { user, system } = filterSystemDeps(full, parsed.includeDirs, sysdirs);
    t.true(system.length > 5);
    t.true(user.includes('sysinc/sub/subhdr.h'), `${exe}: a -I dir inside an -isystem dir is a user dir`);
    t.is(writeDepfile([{ value: parsed.depfile!.defaultTarget, quoted: true }], user, true, { compiler: parsed.compiler }), reference, exe);
  }
});

test('response files: gcc and clang see the same arguments as splitResponseFile', (t) => {
  const dir = tmpdir(t);
  const text = [`-DA1="x y" -DA2=a\\ b '-DA3=\\q' "-DA4=\\"z\\"" -DA6=\\\\w`, `-DA7='it''s' "-DA8=dq'sq'" -DA9=""tail`, `-DB1=a\\\\b @nested.rsp`].join('\n');
  write(dir, 'args.rsp', text);
  write(dir, 'nested.rsp', '\t-DNESTED=1\r\n');
  write(dir, 'src.c', 'int x;\n');
  for (const exe of ['gcc', 'clang']) {
    const parsed = parseIn(t, dir, exe, ['-c', 'src.c', '@args.rsp']);
    const defines: string[] = [];
    for (let i = 0; i < parsed.keyArgs.length; i++) if (parsed.keyArgs[i] === '-D') defines.push(parsed.keyArgs[++i]!);
    t.deepEqual(
      defines.map((d) => d.split('=')[0]),
      ['A1', 'A2', 'A3', 'A4', 'A6', 'A7', 'A8', 'A9', 'B1', 'NESTED'],
    );
    const out = execFileSync(exe, ['-E', '-dM', '-x', 'c', '/dev/null', '@args.rsp'], { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    for (const d of defines) {
      const eq = d.indexOf('=');
      const line = `#define ${d.slice(0, eq)} ${d.slice(eq + 1)}`;
      t.true(out.split('\n').includes(line), `${exe}: ${JSON.stringify(line)}`);
    }
  }
});
