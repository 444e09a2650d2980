import test from './helpers/test.js';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { encode } from '../ipc/codec.js';
import { BUILD_ID, PROTOCOL_VERSION } from '../ipc/version.js';
import { FakeDaemon, RawRouter, socketPath, type Msg } from './helpers/fake-daemon.js';
import { waitFor } from './helpers/wait.js';

// The native shim (native/build/vrift-shim) against real libzmq ROUTER sockets, real
// compilers and real child processes. Build it first: make -C native.

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const SHIM = path.join(ROOT, 'native', 'build', 'vrift-shim');
const FAKE_DAEMON_JS = path.join(ROOT, 'dist', 'test', 'helpers', 'fake-daemon.js');
const SYS_PATH = '/usr/local/bin:/usr/bin:/bin';

// A compiler stand-in that shows exactly what it was given: argv (NUL-separated, into
// $DUMP), "ran <argv0>" on stdout, "ran-err" on stderr, optional $PRINT_BYTES bytes of
// 'x' on stdout, exit $EXIT_CODE. A binary, because a #! script never sees its argv[0].
const DUMPARGS_C = `
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(int argc, char **argv) {
  const char *d = getenv("DUMP");
  if (d) { FILE *f = fopen(d, "ab"); for (int i = 0; i < argc; i++) fwrite(argv[i], 1, strlen(argv[i]) + 1, f); fclose(f); }
  printf("ran %s\\n", argv[0]); fflush(stdout);
  fprintf(stderr, "ran-err\\n");
  const char *n = getenv("PRINT_BYTES");
  for (long i = 0, m = n ? atol(n) : 0; i < m; i++) putchar('x');
  const char *a = getenv("VRIFT_ADDED");
  if (a) printf("added=%s marker=%s\\n", a, getenv("MARKER"));
  return getenv("EXIT_CODE") ? atoi(getenv("EXIT_CODE")) : 0;
}
`;

let toolsDir = '';

test.before(() => {
  if (!fs.existsSync(SHIM)) throw new Error(`${SHIM} missing: run make -C native`);
  toolsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vrift-tools-'));
  fs.writeFileSync(path.join(toolsDir, 'dumpargs.c'), DUMPARGS_C);
  execFileSync('gcc', ['-O1', '-o', path.join(toolsDir, 'dumpargs'), path.join(toolsDir, 'dumpargs.c')]);
});

test.after.always(() => {
  if (toolsDir) fs.rmSync(toolsDir, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: Buffer;
  pid?: number;
}

function run(cmd: string, args: string[], opts: { env: NodeJS.ProcessEnv; cwd: string }): Promise<Run> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { env: opts.env, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    p.stdout.on('data', (b: Buffer) => out.push(b));
    p.stderr.on('data', (b: Buffer) => err.push(b));
    p.on('error', reject);
    p.on('close', (code, signal) => resolve({ code, signal, stdout: Buffer.concat(out), stderr: Buffer.concat(err), pid: p.pid! }));
  });
}

// One isolated world per test: its own VRIFT_HOME (so its own socket and lock), a
// work dir, and a daemon command that exits at once unless the test says otherwise.
function world(t: { teardown: (fn: () => void) => void }) {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'vrift-ns-')));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const home = path.join(dir, 'home');
  const work = path.join(dir, 'work');
  fs.mkdirSync(work);
  const dump = path.join(dir, 'argv.dump');
  const env: NodeJS.ProcessEnv = {
    PATH: `${toolsDir}:${SYS_PATH}`,
    HOME: dir,
    VRIFT_HOME: home,
    VRIFT_DAEMON: '/bin/false',
    DUMP: dump,
  };
  const shim = (args: string[], extra: NodeJS.ProcessEnv = {}) => run(SHIM, args, { env: { ...env, ...extra }, cwd: work });
  const dumped = (): string[][] => {
    if (!fs.existsSync(dump)) return [];
    // argv lists are appended one after another; each starts with the program name.
    const parts = fs.readFileSync(dump, 'latin1').split('\0').slice(0, -1);
    const calls: string[][] = [];
    for (const p of parts) {
      if (p === 'dumpargs' || p.endsWith('/dumpargs') || p === 'gcc') calls.push([p]);
      else calls[calls.length - 1].push(p);
    }
    return calls;
  };
  return { dir, home, work, env, shim, dumped };
}

const DUMPARGS = () => path.join(toolsDir, 'dumpargs');

function envList(env: NodeJS.ProcessEnv): string[] {
  return Object.entries(env).map(([k, v]) => `${k}=${v}`);
}

function asBuf(v: unknown): Buffer {
  return Buffer.from(v as Uint8Array);
}

test('proto.h carries the protocol version and build id of ipc/version.ts', async (t) => {
  const h = fs.readFileSync(path.join(ROOT, 'native', 'proto.h'), 'utf8');
  t.regex(h, new RegExp(`^#define VRIFT_PROTOCOL_VERSION ${PROTOCOL_VERSION}$`, 'm'));
  t.regex(h, new RegExp(`^#define VRIFT_BUILD_ID "${BUILD_ID.replace(/\./g, '\\.')}"$`, 'm'));
  const w = world(t);
  const r = await w.shim(['--version']);
  t.is(r.code, 0);
  t.is(r.stdout.toString(), `vrift-shim ${BUILD_ID}\n`);
  const help = await w.shim(['--help']);
  t.is(help.code, 0);
  t.regex(help.stdout.toString(), /usage: vrift-shim <compiler>/);
});

test('handshake and round trip with a libzmq ROUTER: the compile request, then a hit replayed byte for byte', async (t) => {
  const w = world(t);
  const out = Buffer.from([0x00, 0xff, 0x0a, 0x41, 0xc1, 0x80]);
  const err = Buffer.from('warning: \u00e9t\u00e9\n\0tail');
  const d = await FakeDaemon.start(w.home, () => ({ t: 'hit', out, err, code: 7 }));
  t.teardown(() => d.close());
  const r = await w.shim(['dumpargs', '-c', 'a b.c', '-o', 'a.o', ''], { MARKER: 'm=1' });
  t.is(r.code, 7);
  t.deepEqual(r.stdout, out);
  t.deepEqual(r.stderr, err);
  t.deepEqual(w.dumped(), [], 'a hit must not run the compiler');
  t.is(d.requests.length, 1);
  const m = d.requests[0];
  t.deepEqual(m, {
    t: 'compile',
    v: PROTOCOL_VERSION,
    build: BUILD_ID,
    cwd: w.work,
    exe: DUMPARGS(),
    argv: ['dumpargs', '-c', 'a b.c', '-o', 'a.o', ''],
    env: envList({ ...w.env, MARKER: 'm=1' }),
    tty: false,
    wf: true,
    sp: true,
    ow: true,
    sx: true,
    pid: r.pid,
  });
});

test('split: each command a call of its own through the shim (the private directory in place of \\u0001, named in VRIFT_SPLIT_DIR, never split again), in order, the link after them; a failed compile: no link, exit 1', async (t) => {
  const w = world(t);
  const d = await FakeDaemon.start(w.home, (m) =>
    m.sx
      ? {
          t: 'split',
          cmds: [
            ['-c', 'a.c'],
            ['-c', 'b.c', '-o', '\u0001b.o'],
          ],
          link: ['\u0001b.o', '-o', 'prog'],
        }
      : { t: 'pass', reason: 'test' },
  );
  t.teardown(() => d.close());
  const tmp = path.join(w.dir, 'tmp');
  fs.mkdirSync(tmp);
  const r = await w.shim(['dumpargs', 'a.c', 'b.c', '-o', 'prog'], { TMPDIR: tmp });
  t.is(r.code, 0);
  const calls = w.dumped();
  t.is(calls.length, 3);
  const dir = calls[2][1].slice(0, -'/b.o'.length);
  t.regex(dir, new RegExp(`^${tmp}/vrift-split-`));
  t.deepEqual(calls, [
    [DUMPARGS(), '-c', 'a.c'],
    [DUMPARGS(), '-c', 'b.c', '-o', `${dir}/b.o`],
    [DUMPARGS(), `${dir}/b.o`, '-o', 'prog'],
  ]);
  t.is(r.stdout.toString(), `ran ${DUMPARGS()}\n`.repeat(3));
  t.is(d.requests.length, 4);
  for (const m of d.requests.slice(1)) {
    t.is(m.sx, undefined, 'a split call never splits again');
    t.true((m.env as string[]).includes(`VRIFT_SPLIT_DIR=${dir}`));
  }
  t.deepEqual(fs.readdirSync(tmp), [], 'private directory removed');

  fs.rmSync(path.join(w.dir, 'argv.dump'));
  const f = await w.shim(['dumpargs', 'a.c', 'b.c', '-o', 'prog'], { TMPDIR: tmp, EXIT_CODE: '1' });
  t.is(f.code, 1);
  t.is(w.dumped().length, 2, 'no link after a failed compile');
  t.deepEqual(fs.readdirSync(tmp), []);
});

test('split: a malformed split reply runs the original command', async (t) => {
  const w = world(t);
  const d = await FakeDaemon.start(w.home, () => ({ t: 'split', cmds: ['-c', 'a.c'] }));
  t.teardown(() => d.close());
  const r = await w.shim(['dumpargs', '-c', 'a.c', 'b.c']);
  t.is(r.code, 0);
  t.deepEqual(w.dumped(), [['dumpargs', '-c', 'a.c', 'b.c']]);
});

test('hit with files: the shim writes each output fresh, then replays; a missing directory runs the compiler', async (t) => {
  const w = world(t);
  const big = Buffer.alloc(200_000, 7);
  const objPath = path.join(w.work, 'out.o');
  fs.writeFileSync(objPath, 'stale');
  fs.linkSync(objPath, path.join(w.work, 'hardlink.o'));
  const d = await FakeDaemon.start(w.home, (_m, nth) =>
    nth === 0
      ? {
          t: 'hit',
          out: Buffer.alloc(0),
          err: Buffer.from('warn\n'),
          code: 0,
          files: [
            [objPath, big],
            [path.join(w.work, 'out.d'), Buffer.from('out.o: a.c\n')],
          ],
        }
      : { t: 'hit', out: Buffer.alloc(0), err: Buffer.alloc(0), code: 0, files: [[path.join(w.work, 'nodir', 'x.o'), big]] },
  );
  t.teardown(() => d.close());
  const r = await w.shim(['dumpargs', '-c', 'a.c', '-o', 'out.o']);
  t.is(r.code, 0);
  t.is(r.stderr.toString(), 'warn\n');
  t.deepEqual(fs.readFileSync(objPath), big);
  t.is(fs.readFileSync(path.join(w.work, 'out.d'), 'utf8'), 'out.o: a.c\n');
  t.is(fs.readFileSync(path.join(w.work, 'hardlink.o'), 'utf8'), 'stale', 'a fresh inode: a hard link to the old output is untouched');
  t.deepEqual(w.dumped(), [], 'a hit must not run the compiler');
  // An output in a directory that does not exist: the compiler runs (and decides).
  const r2 = await w.shim(['dumpargs', '-c', 'a.c', '-o', 'nodir/x.o']);
  t.is(r2.code, 0);
  t.deepEqual(w.dumped(), [['dumpargs', '-c', 'a.c', '-o', 'nodir/x.o']]);
});

test("hit with spares: the shim writes into the daemon's spare and renames it into place; a spare it cannot trust is removed, never used", async (t) => {
  const w = world(t);
  const spares = path.join(w.dir, 'spares');
  fs.mkdirSync(spares);
  const spare = (name: string, content?: string) => {
    const f = path.join(spares, name);
    fs.writeFileSync(f, content ?? '', { mode: 0o600 });
    return f;
  };
  const good = spare('good');
  const full = spare('full', 'someone wrote here');
  const linked = spare('linked');
  fs.linkSync(linked, path.join(w.dir, 'second-link'));
  const target = path.join(w.dir, 'target');
  fs.writeFileSync(target, 'not a spare');
  const symlink = path.join(spares, 'symlink');
  fs.symlinkSync(target, symlink);
  const gone = path.join(spares, 'gone');
  const obj = Buffer.alloc(70_000, 3);
  const objPath = path.join(w.work, 'out.o');
  fs.writeFileSync(objPath, 'stale');
  fs.linkSync(objPath, path.join(w.work, 'hardlink.o'));
  const outs = ['a', 'b', 'c', 'd'].map((n) => path.join(w.work, `${n}.o`));
  const requests: Msg[] = [];
  const d = await FakeDaemon.start(w.home, (m) => {
    requests.push(m);
    return {
      t: 'hit',
      out: Buffer.alloc(0),
      err: Buffer.alloc(0),
      code: 0,
      files: [
        [objPath, obj, good],
        [outs[0], Buffer.from('A'), full],
        [outs[1], Buffer.from('B'), linked],
        [outs[2], Buffer.from('C'), symlink],
        [outs[3], Buffer.from('D'), gone],
      ],
    };
  });
  t.teardown(() => d.close());
  const r = await w.shim(['dumpargs', '-c', 'a.c', '-o', 'out.o']);
  t.is(r.code, 0, r.stderr.toString());
  t.is(requests[0].sp, true, 'the shim asks for spares');
  t.deepEqual(fs.readFileSync(objPath), obj);
  t.is(fs.statSync(objPath).mode & 0o777, 0o666 & ~process.umask(), "the compiler's mode, not the spare's 0600");
  t.is(fs.readFileSync(path.join(w.work, 'hardlink.o'), 'utf8'), 'stale', "the old output's other links are untouched");
  t.false(fs.existsSync(good), 'the spare became the output');
  for (const [i, c] of ['A', 'B', 'C', 'D'].entries()) t.is(fs.readFileSync(outs[i], 'utf8'), c, `output ${i} written the usual way`);
  t.false(fs.existsSync(full), 'a non-empty spare is removed');
  t.false(fs.existsSync(linked), 'a spare with another link is removed');
  t.is(fs.readFileSync(path.join(w.dir, 'second-link'), 'utf8'), '', '... and its other link never written');
  t.false(fs.existsSync(symlink), 'a symlink spare is removed');
  t.is(fs.readFileSync(target, 'utf8'), 'not a spare', '... and what it pointed to never written');
  t.deepEqual(w.dumped(), [], 'a hit must not run the compiler');
});

test('pass: the real gcc runs with the exact argv and produces its object', async (t) => {
  const w = world(t);
  fs.writeFileSync(path.join(w.work, 'a.c'), 'int answer(void) { return 42; }\n');
  const d = await FakeDaemon.start(w.home, () => ({ t: 'pass', reason: 'test' }));
  t.teardown(() => d.close());
  const r = await w.shim(['gcc', '-c', 'a.c', '-o', 'out file.o', '-DX="a b"']);
  t.is(r.code, 0, r.stderr.toString());
  t.true(fs.existsSync(path.join(w.work, 'out file.o')));
  t.deepEqual(d.requests[0].argv, ['gcc', '-c', 'a.c', '-o', 'out file.o', '-DX="a b"']);
  t.is(d.requests[0].exe, '/usr/bin/gcc');

  const args = ['dumpargs', '-c', 'x y.c', '', '-o', 'a.o', '--weird=\u00fc'];
  const r2 = await w.shim(args);
  t.is(r2.code, 0);
  t.is(r2.stdout.toString(), 'ran dumpargs\n');
  t.deepEqual(w.dumped(), [args.map((a) => Buffer.from(a).toString('latin1'))]);
});

test('run: output passes through, env is merged, and done carries the captured bytes and status', async (t) => {
  const w = world(t);
  const d = await FakeDaemon.start(w.home, (m) =>
    m.t === 'compile' ? { t: 'run', id: 'job-1', argv: [DUMPARGS(), '-c', 'a.c', '-fextra'], env: ['VRIFT_ADDED=yes', 'MARKER=over'] } : { t: 'ok' },
  );
  t.teardown(() => d.close());
  const r = await w.shim(['dumpargs', '-c', 'a.c'], { MARKER: 'orig', EXIT_CODE: '0' });
  t.is(r.code, 0);
  const expectedOut = `ran ${DUMPARGS()}\nadded=yes marker=over\n`;
  t.is(r.stdout.toString(), expectedOut);
  t.is(r.stderr.toString(), 'ran-err\n');
  t.deepEqual(w.dumped(), [[DUMPARGS(), '-c', 'a.c', '-fextra']]);
  const done = d.of('done');
  t.is(done.length, 1);
  t.like(done[0], { t: 'done', v: PROTOCOL_VERSION, build: BUILD_ID, id: 'job-1', code: 0 });
  t.is(asBuf(done[0].out).toString(), expectedOut);
  t.is(asBuf(done[0].err).toString(), 'ran-err\n');
  t.false('nocache' in done[0]);
  t.false('signal' in done[0]);
});

test('run with col: done goes one-way with the files as the compiler left them; a file it cannot read makes it wait for ok', async (t) => {
  const w = world(t);
  // A "compiler" that writes an object and a depfile, then says something.
  const cc = path.join(w.dir, 'cc.sh');
  fs.writeFileSync(cc, "#!/bin/sh\nprintf 'OBJ\\000BYTES' > a.o\nprintf 'a.o: a.c\\n' > a.d\necho said\n", { mode: 0o755 });
  const obj = path.join(w.work, 'a.o');
  const dep = path.join(w.work, 'a.d');
  let col = [obj, dep];
  // done is never answered: a shim that waited for it would hang until its timeout.
  const d = await FakeDaemon.start(w.home, (m) => (m.t === 'compile' ? { t: 'run', id: 'ow-1', argv: [cc], env: [], col } : 'hang'));
  t.teardown(() => d.close());
  const before = Date.now();
  const r = await w.shim([cc], { VRIFT_DONE_TIMEOUT_MS: '20000' });
  t.is(r.code, 0);
  t.is(r.stdout.toString(), 'said\n');
  t.true(Date.now() - before < 10_000, 'the shim did not wait for an answer to done');
  t.like(d.of('compile')[0], { ow: true });
  await waitFor(() => d.of('done').length >= 1, "the shim's done #1");
  const done = d.of('done')[0];
  t.like(done, { id: 'ow-1', code: 0, nr: true });
  t.is(asBuf(done.out).toString(), 'said\n');
  const files = done.files as [string, Uint8Array, number][];
  t.deepEqual(
    files.map((f) => f[0]),
    [obj, dep],
  );
  t.deepEqual(asBuf(files[0][1]), Buffer.from('OBJ\0BYTES'));
  t.is(asBuf(files[1][1]).toString(), 'a.o: a.c\n');
  t.is(files[0][2], Math.floor(fs.statSync(obj).mtimeMs));
  t.deepEqual(fallbackReasons(w.home), []);

  // A named file the compile did not write: the shim sends no files and waits for `ok`
  // (here until its timeout, recorded as a fallback; the build still gets the compiler's status).
  col = [obj, path.join(w.work, 'missing.d')];
  const r2 = await w.shim([cc], { VRIFT_DONE_TIMEOUT_MS: '300' });
  t.is(r2.code, 0);
  await waitFor(() => d.of('done').length >= 2, "the shim's done #2");
  t.false('files' in d.of('done')[1]);
  t.false('nr' in d.of('done')[1]);
  t.deepEqual(fallbackReasons(w.home), ['done']);
});

test("run with mmd: the shim writes -MMD's depfile from the full one before its one-way done; one it cannot write makes it wait", async (t) => {
  const w = world(t);
  // The "compiler" writes the full -MD list: a user header, a system one, one under a user
  // dir inside a system dir (the longer user dir wins), continuation lines.
  const full = 'out.o: a.c /sys/x.h \\\n ./inc/u.h /sys/sub/y.h /sys/subx/z.h\n';
  const cc = path.join(w.dir, 'cc.sh');
  fs.writeFileSync(cc, `#!/bin/sh\nprintf 'OBJ' > out.o\nprintf '%s' '${full}' > out.d\n`, { mode: 0o755 });
  const obj = path.join(w.work, 'out.o');
  const dep = path.join(w.work, 'out.d');
  let target = dep;
  const d = await FakeDaemon.start(w.home, (m) =>
    m.t === 'compile'
      ? { t: 'run', id: 'mmd-1', argv: [cc], env: [], col: [obj, dep], mmd: [dep, target, true, ['out.o'], ['0inc', '1/sys', '0/sys/sub']] }
      : 'hang',
  );
  t.teardown(() => d.close());
  const trace = path.join(w.dir, 'trace.txt');
  t.is((await w.shim([cc], { VRIFT_DONE_TIMEOUT_MS: '20000', VRIFT_SHIM_TRACE: trace })).code, 0);
  t.is(fs.readFileSync(dep, 'utf8'), 'out.o: a.c inc/u.h /sys/sub/y.h\ninc/u.h:\n/sys/sub/y.h:\n');
  // VRIFT_SHIM_TRACE: start, connected, answered, ran, end, kind, encoded, sent; in order.
  const [line, ...more] = fs.readFileSync(trace, 'utf8').trim().split('\n');
  t.deepEqual(more, []);
  const f = line!.split(' ');
  t.is(f[5], 'run1');
  const at = [f[1], f[2], f[3], f[6], f[7], f[4]].map(Number);
  t.true(
    at.every((x, i) => x > 0 && (i === 0 || x >= at[i - 1]!)),
    line,
  );
  await waitFor(() => d.of('done').length >= 1, "the shim's done #1");
  const done = d.of('done')[0];
  t.like(done, { id: 'mmd-1', nr: true });
  // The daemon gets the full list, as the compiler wrote it.
  t.is(asBuf((done.files as [string, Uint8Array, number][])[1][1]).toString(), full);

  // A depfile it cannot write (no such directory): two-way, the daemon writes it.
  target = path.join(w.work, 'missing-dir', 'out.d');
  t.is((await w.shim([cc], { VRIFT_DONE_TIMEOUT_MS: '300' })).code, 0);
  await waitFor(() => d.of('done').length >= 2, "the shim's done #2");
  t.false('nr' in d.of('done')[1]);
  t.false(fs.existsSync(path.dirname(target)));
  t.deepEqual(fallbackReasons(w.home), ['done']);
});

test('a failing compiler: its exit status reaches the build through run and through pass', async (t) => {
  const w = world(t);
  fs.writeFileSync(path.join(w.work, 'bad.c'), 'int f(void) { return }\n');
  let mode: 'run' | 'pass' = 'run';
  const d = await FakeDaemon.start(w.home, (m) =>
    m.t === 'done' ? { t: 'ok' } : mode === 'run' ? { t: 'run', id: 'j', argv: m.argv as string[], env: [] } : { t: 'pass', reason: 'x' },
  );
  t.teardown(() => d.close());
  const r = await w.shim(['dumpargs'], { EXIT_CODE: '3' });
  t.is(r.code, 3);
  t.like(d.of('done')[0], { code: 3 });

  const g = await w.shim(['gcc', '-c', 'bad.c']);
  t.is(g.code, 1);
  t.regex(g.stderr.toString(), /error/);
  t.is(asBuf(d.of('done')[1].err).toString(), g.stderr.toString());
  t.like(d.of('done')[1], { code: 1 });

  mode = 'pass';
  const p = await w.shim(['gcc', '-c', 'bad.c']);
  t.is(p.code, 1);
  t.regex(p.stderr.toString(), /error/);
});

test('run: a compiler killed by a signal kills the shim with it, and done says so', async (t) => {
  const w = world(t);
  const script = path.join(w.dir, 'dies.sh');
  fs.writeFileSync(script, '#!/bin/sh\necho before\nkill -TERM $$\n', { mode: 0o755 });
  const d = await FakeDaemon.start(w.home, (m) => (m.t === 'done' ? { t: 'ok' } : { t: 'run', id: 'sig', argv: [script], env: [] }));
  t.teardown(() => d.close());
  const r = await w.shim([script]);
  t.is(r.signal, 'SIGTERM');
  t.is(r.stdout.toString(), 'before\n');
  t.like(d.of('done')[0], { id: 'sig', code: 128 + 15, signal: 15 });
});

test('run: output streams through while the compiler runs, and a SIGTERM to the shim reaches the compiler', async (t) => {
  const w = world(t);
  const script = path.join(w.dir, 'slow.sh');
  fs.writeFileSync(script, "#!/bin/sh\ntrap 'echo got-term; exit 42' TERM\necho started\nn=0; while [ $n -lt 600 ]; do sleep 0.05; n=$((n+1)); done\n", {
    mode: 0o755,
  });
  const d = await FakeDaemon.start(w.home, (m) => (m.t === 'done' ? { t: 'ok' } : { t: 'run', id: 'slow', argv: [script], env: [] }));
  t.teardown(() => d.close());
  const r = await new Promise<Run>((resolve, reject) => {
    const p = spawn(SHIM, [script], { env: w.env, cwd: w.work, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    p.stdout.on('data', (b: Buffer) => {
      out.push(b);
      // Only a live passthrough shows this before the compiler exits (it never does on its own).
      if (Buffer.concat(out).toString() === 'started\n') p.kill('SIGTERM');
    });
    p.on('error', reject);
    // A shim that died of the signal leaves the compiler holding the pipe: no 'close'.
    p.on('exit', (code, signal) => signal && resolve({ code, signal, stdout: Buffer.concat(out), stderr: Buffer.alloc(0) }));
    p.on('close', (code, signal) => resolve({ code, signal, stdout: Buffer.concat(out), stderr: Buffer.alloc(0) }));
  });
  t.is(r.signal, null);
  t.is(r.code, 42);
  t.is(r.stdout.toString(), 'started\ngot-term\n');
  t.like(d.of('done')[0], { id: 'slow', code: 42 });
});

test('run: output past the 64 MiB capture cap still reaches the build, and done is marked nocache', async (t) => {
  const w = world(t);
  const n = 64 * 1024 * 1024 + 10;
  const d = await FakeDaemon.start(w.home, (m) => (m.t === 'done' ? { t: 'ok' } : { t: 'run', id: 'big', argv: [DUMPARGS()], env: [] }));
  t.teardown(() => d.close());
  const r = await w.shim(['dumpargs'], { PRINT_BYTES: String(n) });
  t.is(r.code, 0);
  t.is(r.stdout.length, `ran ${DUMPARGS()}\n`.length + n);
  const done = d.of('done')[0];
  t.is(done.nocache, true);
  t.is(asBuf(done.out).length, 0);
});

test('fail open: no daemon can start (the daemon command exits, or does not exist)', async (t) => {
  const w = world(t);
  for (const daemon of ['/bin/false', path.join(w.dir, 'no-such-daemon')]) {
    const r = await w.shim(['dumpargs', '-x'], { VRIFT_DAEMON: daemon, EXIT_CODE: '5' });
    t.is(r.code, 5, daemon);
    t.is(r.stdout.toString(), 'ran dumpargs\n');
    t.is(r.stderr.toString(), 'ran-err\n', 'the shim adds nothing of its own');
  }
  t.deepEqual(w.dumped(), [
    ['dumpargs', '-x'],
    ['dumpargs', '-x'],
  ]);
  t.true(fs.existsSync(path.join(w.home, 'run', 'vriftd.lock')), 'the shim tried to start a daemon');
  t.is(fs.statSync(path.join(w.home, 'run')).mode & 0o777, 0o700);
});

test('fail open: a daemon that accepts but never answers (after the request, and during the handshake)', async (t) => {
  const w = world(t);
  const d = await FakeDaemon.start(w.home, () => 'hang');
  const r = await w.shim(['dumpargs', 'a'], { VRIFT_TIMEOUT_MS: '200' });
  t.is(r.code, 0);
  t.is(r.stdout.toString(), 'ran dumpargs\n');
  t.is(d.requests.length, 1, 'the request did reach the daemon');
  await d.close();
  t.deepEqual(fallbackReasons(w.home), ['timeout'], 'the bypass is recorded for vrift stats');

  // A plain unix listener: accepts, never speaks ZMTP.
  const w2 = world(t);
  fs.mkdirSync(path.join(w2.home, 'run'), { recursive: true });
  let accepted = 0;
  const conns: net.Socket[] = [];
  const srv = net.createServer((c) => {
    accepted++;
    conns.push(c);
  });
  await new Promise<void>((res) => srv.listen(socketPath(w2.home), res));
  t.teardown(() => {
    conns.forEach((c) => c.destroy());
    srv.close();
  });
  const r2 = await w2.shim(['dumpargs', 'b'], { VRIFT_CONNECT_TIMEOUT_MS: '200' });
  t.is(r2.code, 0);
  t.is(r2.stdout.toString(), 'ran dumpargs\n');
  t.is(accepted, 1);
  t.deepEqual(w2.dumped(), [['dumpargs', 'b']]);
  t.deepEqual(fallbackReasons(w2.home), ['connect']);
});

function fallbackReasons(home: string): string[] {
  const f = path.join(home, 'log', 'fallback.ndjson');
  if (!fs.existsSync(f)) return [];
  return fs
    .readFileSync(f, 'utf8')
    .trim()
    .split('\n')
    .map((l) => (JSON.parse(l) as { reason: string }).reason);
}

test('autostart: 8 concurrent first calls start exactly one daemon, which holds the lock', async (t) => {
  const w = world(t);
  const daemon = path.join(w.dir, 'fake-vriftd');
  fs.writeFileSync(daemon, `#!/bin/sh\nexec ${process.execPath} ${FAKE_DAEMON_JS}\n`, { mode: 0o755 });
  const starts = path.join(w.home, 'starts.ndjson');
  t.teardown(() => {
    if (!fs.existsSync(starts)) return;
    for (const l of fs.readFileSync(starts, 'utf8').trim().split('\n')) {
      try {
        process.kill(JSON.parse(l).pid, 'SIGTERM');
      } catch {
        // already gone
      }
    }
  });
  const extra = { VRIFT_DAEMON: daemon, FAKE_BIND_DELAY_MS: '400', VRIFT_START_TIMEOUT_MS: '60000', VRIFT_CONNECT_TIMEOUT_MS: '30000' };
  const rs = await Promise.all(Array.from({ length: 8 }, (_, i) => w.shim(['dumpargs', `n${i}`], extra)));
  for (const r of rs) {
    t.is(r.code, 0);
    t.is(r.stdout.toString(), 'ran dumpargs\n');
  }
  const lines = fs
    .readFileSync(starts, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  t.is(lines.length, 1, 'exactly one daemon start');
  t.is(lines[0].lockFd, 3);
  t.is(lines[0].lockFdIno, lines[0].lockIno, 'the daemon inherited the lock file as VRIFT_LOCK_FD');
  t.is(lines[0].cwd, '/');
  t.is(lines[0].disable, '1', 'compilers the daemon runs bypass the shim');
  const reqs = fs
    .readFileSync(path.join(w.home, 'requests.ndjson'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  t.deepEqual(reqs.map((r) => (r.argv as string[])[1]).sort(), Array.from({ length: 8 }, (_, i) => `n${i}`).sort());

  // With the daemon up, later calls start nothing.
  const again = await w.shim(['dumpargs', 'later'], extra);
  t.is(again.code, 0);
  t.is(fs.readFileSync(starts, 'utf8').trim().split('\n').length, 1);
});

test('masquerade: a symlink named gcc first on PATH runs the real gcc, not itself', async (t) => {
  const w = world(t);
  const shims = path.join(w.dir, 'shims');
  fs.mkdirSync(shims);
  fs.symlinkSync(SHIM, path.join(shims, 'gcc'));
  fs.writeFileSync(path.join(w.work, 'a.c'), 'int main(void) { return 0; }\n');
  const d = await FakeDaemon.start(w.home, () => ({ t: 'pass', reason: 'test' }));
  t.teardown(() => d.close());
  const env = { ...w.env, PATH: `${shims}:${SYS_PATH}` };
  const r = await run('gcc', ['-c', 'a.c', '-o', 'a.o'], { env, cwd: w.work });
  t.is(r.code, 0, r.stderr.toString());
  t.true(fs.existsSync(path.join(w.work, 'a.o')));
  t.is(d.requests.length, 1, 'the shim asked once and did not call itself');
  t.like(d.requests[0], { exe: '/usr/bin/gcc', argv: ['gcc', '-c', 'a.c', '-o', 'a.o'] });

  // Called by a path to the symlink: still the real gcc, argv[0] untouched.
  const r2 = await run(path.join(shims, 'gcc'), ['-c', 'a.c', '-o', 'b.o'], { env, cwd: w.work });
  t.is(r2.code, 0, r2.stderr.toString());
  t.true(fs.existsSync(path.join(w.work, 'b.o')));
  t.like(d.requests[1], { exe: '/usr/bin/gcc', argv: [path.join(shims, 'gcc'), '-c', 'a.c', '-o', 'b.o'] });

  // The daemon sees the call as named; the compiler sees its own path as argv[0]
  // (gcc locates cc1 from it: the symlink's directory would break it).
  fs.symlinkSync(SHIM, path.join(shims, 'dumpargs'));
  const r3 = await run(path.join(shims, 'dumpargs'), ['-v'], { env: { ...env, PATH: `${shims}:${toolsDir}:${SYS_PATH}` }, cwd: w.work });
  t.is(r3.code, 0);
  t.deepEqual(w.dumped(), [[DUMPARGS(), '-v']]);
  t.like(d.requests[2], { exe: DUMPARGS(), argv: [path.join(shims, 'dumpargs'), '-v'] });
});

test('a wrapper script compiler stays in the loop (found on PATH after the shim; run on pass and on run)', async (t) => {
  const w = world(t);
  const shims = path.join(w.dir, 'shims');
  const wrap = path.join(w.dir, 'wrap');
  fs.mkdirSync(shims);
  fs.mkdirSync(wrap);
  fs.symlinkSync(SHIM, path.join(shims, 'gcc'));
  const marker = path.join(w.dir, 'wrapper.log');
  fs.writeFileSync(path.join(wrap, 'gcc'), `#!/bin/sh\necho "$@" >> ${marker}\nexec /usr/bin/gcc "$@"\n`, { mode: 0o755 });
  fs.writeFileSync(path.join(w.work, 'a.c'), 'int main(void) { return 0; }\n');
  let mode: 'pass' | 'run' = 'pass';
  const d = await FakeDaemon.start(w.home, (m) =>
    m.t === 'done'
      ? { t: 'ok' }
      : mode === 'pass'
        ? { t: 'pass', reason: 'x' }
        : { t: 'run', id: 'w', argv: [m.exe as string, ...(m.argv as string[]).slice(1)], env: [] },
  );
  t.teardown(() => d.close());
  const env = { ...w.env, PATH: `${shims}:${wrap}:${SYS_PATH}` };
  const r = await run('gcc', ['-c', 'a.c', '-o', 'a.o'], { env, cwd: w.work });
  t.is(r.code, 0, r.stderr.toString());
  t.is(d.requests[0].exe, path.join(wrap, 'gcc'));
  mode = 'run';
  const r2 = await run('gcc', ['-c', 'a.c', '-o', 'b.o'], { env, cwd: w.work });
  t.is(r2.code, 0, r2.stderr.toString());
  t.is(fs.readFileSync(marker, 'utf8'), '-c a.c -o a.o\n-c a.c -o b.o\n');
  t.true(fs.existsSync(path.join(w.work, 'b.o')));
  t.like(d.of('done')[0], { id: 'w', code: 0 });
});

test('long frames both ways: a >255-byte and a >64 KiB body, request and reply', async (t) => {
  const w = world(t);
  const small = 'a'.repeat(300);
  const bigEnv = 'B'.repeat(100 * 1024);
  const out300 = Buffer.alloc(300, 0x6f);
  const err200k = Buffer.alloc(200 * 1024);
  for (let i = 0; i < err200k.length; i++) err200k[i] = (i * 7) & 0xff;
  let reply: 'small' | 'big' = 'small';
  const d = await FakeDaemon.start(w.home, () =>
    reply === 'small' ? { t: 'hit', out: out300, err: Buffer.from('e'), code: 0 } : { t: 'hit', out: Buffer.alloc(0), err: err200k, code: 2 },
  );
  t.teardown(() => d.close());
  // Request of ~400 bytes (long frame, <64 KiB), reply 300+ bytes.
  const r1 = await run(SHIM, ['dumpargs', small], { env: { PATH: w.env.PATH, VRIFT_HOME: w.home, VRIFT_DAEMON: '/bin/false' }, cwd: w.work });
  t.is(r1.code, 0);
  t.deepEqual(r1.stdout, out300);
  t.is(encode(d.requests[0]).length > 255 && encode(d.requests[0]).length < 65536, true);
  t.deepEqual(d.requests[0].argv, ['dumpargs', small]);
  // Request of >100 KiB, reply of 200 KiB.
  reply = 'big';
  const r2 = await w.shim(['dumpargs'], { BIG: bigEnv });
  t.is(r2.code, 2);
  t.deepEqual(r2.stderr, err200k);
  t.true((d.requests[1].env as string[]).includes(`BIG=${bigEnv}`));
});

test('done with a >64 KiB body', async (t) => {
  const w = world(t);
  const d = await FakeDaemon.start(w.home, (m) => (m.t === 'done' ? { t: 'ok' } : { t: 'run', id: 'l', argv: [DUMPARGS()], env: [] }));
  t.teardown(() => d.close());
  const r = await w.shim(['dumpargs'], { PRINT_BYTES: String(150 * 1024) });
  t.is(r.code, 0);
  const done = d.of('done')[0];
  t.deepEqual(asBuf(done.out), r.stdout);
  t.is(r.stdout.length, `ran ${DUMPARGS()}\n`.length + 150 * 1024);
});

const MALFORMED: Array<[string, Buffer]> = [
  ['not msgpack', Buffer.from([0xc1, 0xc1, 0xc1])],
  ['empty body', Buffer.alloc(0)],
  ['an array, not a map', encode(['hit', 1] as unknown as object)],
  ['a map without t', encode({ out: Buffer.from('x'), code: 0 })],
  ['hit with a string code', encode({ t: 'hit', out: Buffer.from('x'), err: Buffer.alloc(0), code: 'zero' })],
  ['truncated hit', encode({ t: 'hit', out: Buffer.from('should not appear'), err: Buffer.alloc(0), code: 0 }).subarray(0, 12)],
  ['run without argv', encode({ t: 'run', id: 'x', env: [] })],
  ['unknown reply type', encode({ t: 'teleport' })],
  ['deeply nested junk', Buffer.concat([Buffer.from([0x81, 0xa1, 0x74]), Buffer.alloc(100000, 0x91)])],
];

for (const [name, body] of MALFORMED) {
  test(`fail open on a malformed reply: ${name}`, async (t) => {
    const w = world(t);
    const d = await RawRouter.start(w.home, body);
    t.teardown(() => d.close());
    const r = await w.shim(['dumpargs', 'm'], { EXIT_CODE: '4' });
    t.is(r.code, 4);
    t.is(r.stdout.toString(), 'ran dumpargs\n');
    t.is(r.stderr.toString(), 'ran-err\n');
    t.is(d.requests.length, 1);
    t.deepEqual(w.dumped(), [['dumpargs', 'm']]);
  });
}

test('EVERSION: the old daemon is asked to shut down on a new connection, the compile still runs', async (t) => {
  const w = world(t);
  const d = await FakeDaemon.start(w.home, (m) => (m.t === 'compile' ? { t: 'error', code: 'EVERSION', message: 'daemon is 0.0.9' } : { t: 'ok' }));
  t.teardown(() => d.close());
  const r = await w.shim(['dumpargs', 'v']);
  t.is(r.code, 0);
  t.is(r.stdout.toString(), 'ran dumpargs\n');
  t.deepEqual(
    d.requests.map((m) => m.t),
    ['compile', 'shutdown'],
  );
  t.deepEqual(d.requests[1], { t: 'shutdown', v: PROTOCOL_VERSION, build: BUILD_ID });
});

test('VRIFT_HOME defaults to $HOME/.vrift', async (t) => {
  const w = world(t);
  const d = await FakeDaemon.start(path.join(w.dir, '.vrift'), () => ({ t: 'hit', out: Buffer.from('from-home\n'), err: Buffer.alloc(0), code: 0 }));
  t.teardown(() => d.close());
  const env = { ...w.env };
  delete env.VRIFT_HOME;
  const r = await run(SHIM, ['dumpargs'], { env, cwd: w.work });
  t.is(r.stdout.toString(), 'from-home\n');
  t.is(d.requests.length, 1);
});

test('an error reply other than EVERSION just fails open', async (t) => {
  const w = world(t);
  const d = await FakeDaemon.start(w.home, () => ({ t: 'error', code: 'ESTORE', message: 'disk full' }));
  t.teardown(() => d.close());
  const r = await w.shim(['dumpargs', 'e']);
  t.is(r.code, 0);
  t.deepEqual(
    d.requests.map((m) => m.t),
    ['compile'],
  );
  t.deepEqual(w.dumped(), [['dumpargs', 'e']]);
});

test('VRIFT_DISABLE=1 runs the compiler without asking; VRIFT_DEBUG=1 logs to shim.log, not stderr', async (t) => {
  const w = world(t);
  const d = await FakeDaemon.start(w.home, () => ({ t: 'pass', reason: 'x' }));
  t.teardown(() => d.close());
  const r = await w.shim(['dumpargs', 'off'], { VRIFT_DISABLE: '1' });
  t.is(r.code, 0);
  t.deepEqual(w.dumped(), [['dumpargs', 'off']]);
  t.is(d.requests.length, 0);

  await d.close();
  const dbg = await w.shim(['dumpargs', 'dbg'], { VRIFT_DEBUG: '1' });
  t.is(dbg.stderr.toString(), 'ran-err\n');
  const log = fs
    .readFileSync(path.join(w.home, 'log', 'shim.log'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Msg);
  t.true(log.length > 0);
  t.true(log.every((l) => l.ch === 'shim' && typeof l.msg === 'string'));
});
