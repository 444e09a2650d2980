import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import type { ExecutionContext } from 'ava';
import test from './helpers/test.js';
import { redirectOutputs } from '../daemon/live/redirect.js';
import { Journal } from '../daemon/live/journal.js';
import { childCpuMs } from '../daemon/live/run-idle.js';
import { memoryLogger } from '../daemon/log.js';
import { Live, type WarmFrontend } from '../daemon/live/live.js';
import { FileHashes } from '../daemon/hot/file-hashes.js';
import type { WatchListener } from '../daemon/hot/watcher.js';
import type { CompileRequest } from '../ipc/messages/compile.js';

// Live mode's redirect rules (daemon/live/redirect.ts), its journal (journal.ts) and its rescan
// after lost events, on their own: what a warm run may write, what a restart keeps, what a lost
// event cannot hide.

function tmp(t: ExecutionContext): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'vrift-live-'));
  t.teardown(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

const GCC = '/usr/bin/gcc';

test('the object and every depfile spelling go to the private directory; nothing else changes', (t) => {
  const cwd = tmp(t);
  const dir = path.join(cwd, 'priv');
  const cases: [string[], string[]][] = [
    [
      ['-c', 'a.c', '-o', 'obj/a.o'],
      ['-c', 'a.c', '-o', `${dir}/a.o`],
    ],
    [
      ['-c', 'a.c', '-oobj/a.o'],
      ['-c', 'a.c', '-o', `${dir}/a.o`],
    ],
    [
      ['-c', 'a.c', '--output=obj/a.o'],
      ['-c', 'a.c', '-o', `${dir}/a.o`],
    ],
    [
      ['-O2', '-c', 'a.c'],
      ['-O2', '-c', 'a.c', '-o', `${dir}/a.o`],
    ],
    [
      ['-MD', '-MT', 'obj/a.o', '-MF', 'obj/a.o.d', '-c', 'a.c', '-o', 'obj/a.o'],
      ['-MD', '-MT', 'obj/a.o', '-MF', `${dir}/a.o.d`, '-c', 'a.c', '-o', `${dir}/a.o`],
    ],
    [
      ['-MMD', '-MFdeps/a.d', '-c', 'a.c', '-o', 'a.o'],
      ['-MMD', '-MF', `${dir}/a.d`, '-c', 'a.c', '-o', `${dir}/a.o`],
    ],
    [
      ['-Wp,-MD,.a.o.d', '-c', 'a.c', '-o', 'a.o'],
      ['-Wp,-MD,' + `${dir}/.a.o.d`, '-c', 'a.c', '-o', `${dir}/a.o`],
    ],
    // -MD without -MF: the depfile follows -o into the directory.
    [
      ['-MD', '-c', 'a.c', '-o', 'obj/a.o'],
      ['-MD', '-c', 'a.c', '-o', `${dir}/a.o`],
    ],
  ];
  for (const [args, want] of cases) {
    const r = redirectOutputs(args, cwd, GCC, {}, dir);
    t.false('skip' in r, args.join(' '));
    if ('skip' in r) continue;
    t.deepEqual(r.args, want, args.join(' '));
    t.is(r.output, `${dir}/a.o`);
    if (args.some((a) => a.includes('MD'))) t.is(path.dirname(r.depfile!), dir, args.join(' '));
    else t.is(r.depfile, null);
  }
});

test('an -o inside a response file is rewritten in the expanded arguments', (t) => {
  const cwd = tmp(t);
  fs.writeFileSync(path.join(cwd, 'args.rsp'), '-O2 -c a.c -o build/a.o\n');
  const r = redirectOutputs(['@args.rsp'], cwd, GCC, {}, path.join(cwd, 'p'));
  t.deepEqual('args' in r && r.args, ['-O2', '-c', 'a.c', '-o', path.join(cwd, 'p', 'a.o')]);
});

test('calls whose outputs embed their own paths or write other files are not warmed, each with its reason', (t) => {
  const cwd = tmp(t);
  const skip = (args: string[]) => {
    const r = redirectOutputs(['-c', 'a.c', '-o', 'a.o', ...args], cwd, GCC, {}, path.join(cwd, 'p'));
    return 'skip' in r ? r.skip : 'warmed';
  };
  t.is(skip(['-gsplit-dwarf']), 'split_dwarf');
  t.is(skip(['--coverage']), 'coverage');
  t.is(skip(['-fprofile-arcs']), 'coverage');
  t.is(skip(['-fprofile-generate']), 'profile');
  t.is(skip(['-fprofile-use=x.prof']), 'profile');
  t.is(skip(['-save-temps']), 'extra_outputs');
  t.is(skip(['-fdump-tree-all']), 'extra_outputs');
  t.is(skip(['-fplugin=./p.so']), 'extra_outputs');
  t.is(skip(['-fdiagnostics-format=sarif-file']), 'extra_outputs');
  t.is(skip(['-Wa,-adhln=a.lst']), 'extra_outputs');
  t.is(skip(['-O2', '-g', '-Wall', '-DX=1', '-Iinc']), 'warmed');
  // Not a single compile: nothing to warm.
  const link = redirectOutputs(['a.o', '-o', 'app'], cwd, GCC, {}, path.join(cwd, 'p'));
  t.is('skip' in link && link.skip, 'uncacheable');
});

test('the redirected call makes the same object as the original (real gcc)', (t) => {
  const cwd = tmp(t);
  fs.writeFileSync(path.join(cwd, 'a.c'), '#include <stdio.h>\nint main(void){puts("hi");return 0;}\n');
  fs.mkdirSync(path.join(cwd, 'obj'));
  const args = ['-g', '-O1', '-MD', '-MF', 'obj/a.d', '-c', 'a.c', '-o', 'obj/a.o'];
  execFileSync(GCC, args, { cwd });
  const dir = path.join(cwd, 'priv');
  fs.mkdirSync(dir);
  const r = redirectOutputs(args, cwd, GCC, {}, dir);
  if ('skip' in r) return t.fail(r.detail);
  execFileSync(GCC, r.args, { cwd });
  t.deepEqual(fs.readFileSync(r.output), fs.readFileSync(path.join(cwd, 'obj/a.o')));
  t.deepEqual(fs.readdirSync(dir).sort(), ['a.d', 'a.o']);
});

test('the journal survives a restart; a corrupt one starts empty and says so', (t) => {
  const d = tmp(t);
  const file = path.join(d, 'live', 'journal.json');
  const lines: string[] = [];
  const j = new Journal(file, memoryLogger(lines).child('live'));
  j.load();
  j.record({ cwd: d, exe: GCC, args: ['-c', 'a.c'], env: { PATH: '/usr/bin' }, seen: 1 }, [
    [path.join(d, 'a.c'), 'h1'],
    [path.join(d, 'a.h'), 'h2'],
  ]);
  j.record({ cwd: d, exe: GCC, args: ['-c', 'b.c'], env: {}, seen: 2 }, [
    [path.join(d, 'b.c'), 'h3'],
    [path.join(d, 'a.h'), 'h2'],
  ]);
  j.close();
  const k = new Journal(file, memoryLogger(lines).child('live'));
  k.load();
  t.is(k.size, 2);
  t.is(k.usersOf(path.join(d, 'a.h'))?.size, 2);
  t.deepEqual(new Map(k.recorded()).get(path.join(d, 'b.c')), 'h3');
  t.deepEqual(k.get(`${d}\0${GCC}\0-c\0a.c`)?.env, { PATH: '/usr/bin' });

  for (const bad of ['{"v":1,"files":[["x"]],"commands":[]}', 'not json', '{"v":1,"files":[],"commands":[{"cwd":1}]}']) {
    fs.writeFileSync(file, bad);
    const before = lines.length;
    const c = new Journal(file, memoryLogger(lines).child('live'));
    c.load();
    t.is(c.size, 0, bad);
    t.regex(lines.slice(before).join(''), /live journal corrupt: starting empty/, bad);
  }
});

test('the journal keeps the most recently seen compiles when full', (t) => {
  const d = tmp(t);
  const j = new Journal(path.join(d, 'j.json'), memoryLogger().child('live'), 2);
  for (const n of ['a', 'b', 'c']) j.record({ cwd: d, exe: GCC, args: [`${n}.c`], env: {}, seen: 0 }, [[path.join(d, `${n}.c`), n]]);
  t.is(j.size, 2);
  t.is(j.usersOf(path.join(d, 'a.c')), undefined);
  t.is(j.usersOf(path.join(d, 'c.c'))?.size, 1);
  j.close();
});

test("a warm run's CPU time is read from the shell's `times`", (t) => {
  t.is(childCpuMs('0m0.010000s 0m0.002000s\n0m1.230000s 0m0.120000s\n'), 1350);
  t.is(childCpuMs('0m0.001s 0m0.000s\n1m2.000s 0m0.500s\n'), 62_500);
  t.is(childCpuMs(''), 0);
});

test('lost events (an inotify overflow) mean a rescan: an input changed meanwhile is warmed, one that did not is not', async (t) => {
  const d = tmp(t);
  const src = path.join(d, 'a.c');
  fs.writeFileSync(src, 'int a;\n');
  let listener: WatchListener | undefined;
  const lookups: CompileRequest[] = [];
  const cc: WarmFrontend = {
    name: 'cc',
    handles: () => true,
    lookup: async (req) => {
      lookups.push(req);
      return { kind: 'hit', out: Buffer.alloc(0), err: Buffer.alloc(0), code: 0, bytes: 0 };
    },
    finish: async () => ({ stored: false, reason: 'compile_failed' }),
    close: async () => {},
    settle: async () => {},
  };
  const hashes = new FileHashes();
  const live = new Live({
    cc,
    watcher: { listen: (l) => void (listener = l), ensure: () => 1 },
    hashes,
    pending: new Map(),
    journalFile: path.join(d, 'journal.json'),
    tmpDir: path.join(d, 'tmp'),
    home: d,
    log: memoryLogger().child('live'),
    debounceMs: 10,
  });
  live.start();
  t.true(await live.wait(10_000));
  live.observe({
    kind: 'stored',
    cwd: d,
    exe: GCC,
    args: ['-c', 'a.c', '-o', 'a.o'],
    env: {},
    output: 'a.o',
    directKey: 'k',
    result: 'r',
    inputs: [[src, hashes.get(src)!.hash]],
  });
  listener!.reset();
  t.true(await live.wait(10_000));
  t.is(lookups.length, 0, 'nothing changed: nothing warmed');
  fs.writeFileSync(src, 'int b;\n'); // no event reaches live mode
  listener!.reset();
  t.true(await live.wait(10_000));
  t.is(lookups.length, 1);
  t.is(lookups[0].argv[lookups[0].argv.length - 1], path.join(d, 'tmp', path.basename(path.dirname(lookups[0].argv.at(-1)!)), 'a.o'));
  t.is(live.status().fresh, 1);
  await live.close();
});
