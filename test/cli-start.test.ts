import fs from 'node:fs';
import path from 'node:path';
import test from './helpers/test.js';
import { instance, ROOT, run, SHIM, type Instance } from './helpers/instance.js';

// A daemon that cannot start: the reason reaches the user at once, a build pays for the
// failed start once (counted: every start attempt runs a wrapper that appends a line), and
// the shim says so only on a terminal.

const DAEMON_MAIN = path.join(ROOT, 'dist', 'daemon', 'main.js');

function countingDaemon(v: Instance): { env: NodeJS.ProcessEnv; starts: () => number } {
  const count = path.join(path.dirname(v.dir), 'starts');
  const script = path.join(path.dirname(v.dir), 'vriftd.sh');
  fs.writeFileSync(script, `#!/bin/sh\necho start >> '${count}'\nexec '${process.execPath}' --max-semi-space-size=4 '${DAEMON_MAIN}'\n`, { mode: 0o755 });
  return { env: { VRIFT_DAEMON: script }, starts: () => (fs.existsSync(count) ? fs.readFileSync(count, 'utf8').split('\n').filter(Boolean).length : 0) };
}

const sh = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

// cli: start attempts of each CLI command (a configuration error is caught before any);
// shim: of a whole build (0 when the home cannot hold a socket: nothing is started).
interface Cause {
  name: string;
  setup(v: Instance): NodeJS.ProcessEnv;
  reason: RegExp;
  cli: number;
  shim: number;
}
const causes: Cause[] = [
  {
    name: 'an unknown key in config.toml',
    setup: (v) => (fs.mkdirSync(v.home, { recursive: true }), fs.writeFileSync(path.join(v.home, 'config.toml'), '[l2_cache]\nmax_sise = "5GB"\n'), {}),
    reason: /config\.toml: unknown key max_sise/,
    cli: 0,
    shim: 1,
  },
  {
    name: 'broken TOML',
    setup: (v) => (fs.mkdirSync(v.home, { recursive: true }), fs.writeFileSync(path.join(v.home, 'config.toml'), '[l2_cache\nenabled = true\n'), {}),
    reason: /config\.toml: .*(Invalid|invalid|unexpected|Unexpected)/,
    cli: 0,
    shim: 1,
  },
  { name: 'VRIFT_LOG_LEVEL=loud', setup: () => ({ VRIFT_LOG_LEVEL: 'loud' }), reason: /VRIFT_LOG_LEVEL: invalid value "loud" for log_level/, cli: 0, shim: 1 },
  {
    // Only the daemon finds this one: its reason comes from the record it leaves.
    name: 'a store directory that cannot be made',
    setup: (v) => {
      fs.writeFileSync(`${v.home}-file`, '');
      fs.mkdirSync(v.home, { recursive: true });
      fs.writeFileSync(path.join(v.home, 'config.toml'), `[l2_cache]\nlocal_path = "${v.home}-file/l2"\n`);
      return {};
    },
    reason: /home-file\/l2.*(ENOTDIR|not a directory)|(ENOTDIR|not a directory).*home-file\/l2/,
    cli: 1,
    shim: 1,
  },
  {
    // The kernel refuses a directory in /proc with ENOENT although /proc exists: Node's own
    // recursive mkdir then retries forever (the daemon never answered, nor exited).
    name: 'a store directory the kernel refuses with ENOENT',
    setup: () => ({ VRIFT_LOCAL_PATH: '/proc/vrift-no-such-dir/l2' }),
    reason: /cannot create store at \/proc\/vrift-no-such-dir\/l2: ENOENT/,
    cli: 1,
    shim: 1,
  },
  {
    name: 'VRIFT_HOME a file',
    setup: (v) => (fs.writeFileSync(`${v.home}-file`, ''), { VRIFT_HOME: `${v.home}-file` }),
    reason: /cannot use VRIFT_HOME .*home-file: it, or a directory above it, is a file/,
    cli: 0,
    shim: 0,
  },
  {
    name: 'VRIFT_HOME unwritable',
    setup: (v) => {
      // root writes anywhere a mode allows nothing: /sys refuses it a directory.
      if (process.getuid?.() === 0) return { VRIFT_HOME: `/sys/vrift-test-${path.basename(path.dirname(v.home))}` };
      fs.mkdirSync(v.home, { mode: 0o500 });
      return {};
    },
    reason: /cannot use VRIFT_HOME .*: (it is not writable|Operation not permitted|Permission denied)/,
    cli: 0,
    shim: 0,
  },
  {
    name: 'VRIFT_HOME too long for a socket path',
    setup: (v) => ({ VRIFT_HOME: path.join(v.home, 'x'.repeat(120)) }),
    reason: /cannot use VRIFT_HOME .*socket path .*(too long|more than a unix socket takes)/,
    cli: 0,
    shim: 0,
  },
];

for (const c of causes) {
  test(`daemon cannot start (${c.name}): the CLI says why at once, a build pays once, compiles pass through`, async (t) => {
    const v = instance(t);
    const counter = countingDaemon(v);
    Object.assign(v.env, counter.env, c.setup(v));

    // CLI: the reason itself, not a timeout pointing at a log.
    for (const cmd of [['daemon', 'start'], ['stats']]) {
      const r = await v.vrift(cmd);
      t.not(r.code, 0, cmd.join(' '));
      t.regex(r.err, c.reason, cmd.join(' '));
      t.notRegex(r.err, /did not answer/, cmd.join(' '));
    }
    t.is(counter.starts(), 2 * c.cli, 'each CLI command tried at most once');

    // The shim, no terminal: 5 compiles, one start attempt between them, nothing printed.
    for (let i = 0; i < 5; i++) v.write(`s${i}.c`, `int s${i}(void) { return ${i}; }\n`);
    for (let i = 0; i < 5; i++) {
      const r = await v.cc(['-c', `s${i}.c`, '-o', `s${i}.o`]);
      t.is(r.code, 0, r.err);
      t.is(r.err, '', "nothing of our own in a compiler's output");
      t.true(fs.existsSync(path.join(v.dir, `s${i}.o`)));
    }
    t.is(counter.starts(), 2 * c.cli + c.shim, 'the shims of a build start the daemon once, not per compile');
  });
}

test('the shim says why once on a terminal, never without one', async (t) => {
  const v = instance(t);
  const counter = countingDaemon(v);
  Object.assign(v.env, counter.env, { VRIFT_LOG_LEVEL: 'loud' });
  for (const n of ['a', 'b', 'c']) v.write(`${n}.c`, `int ${n}(void) { return 1; }\n`);
  const calls = ['a', 'b', 'c'].map((n) => `${sh(SHIM)} gcc -c ${n}.c -o ${n}.o`).join('; ');
  // script(1) gives the calls a pseudo-terminal and a session of their own.
  const tty = await run('script', ['-qec', calls, '/dev/null'], { cwd: v.dir, env: v.env });
  t.is(tty.code, 0, tty.out + tty.err);
  const said = tty.out.split('\n').filter((l) => /vrift: compiling without the cache: VRIFT_LOG_LEVEL: invalid value "loud" for log_level/.test(l));
  t.is(said.length, 1, tty.out);
  t.is(counter.starts(), 1);
  for (const n of ['a', 'b', 'c']) t.true(fs.existsSync(path.join(v.dir, `${n}.o`)));
  // Another build (a new session) is told again, without another start attempt.
  const again = await run('script', ['-qec', `${sh(SHIM)} gcc -c a.c -o a.o`, '/dev/null'], { cwd: v.dir, env: v.env });
  t.regex(again.out, /compiling without the cache/);
  t.is(counter.starts(), 1);
  // Fixed configuration: the next compile starts the daemon and uses it.
  delete v.env.VRIFT_LOG_LEVEL;
  const fixed = await v.cc(['-c', 'b.c', '-o', 'b.o']);
  t.is(fixed.code, 0, fixed.err);
  t.is(counter.starts(), 2);
  t.is((await v.stats()).misses, 1);
});

test('vrift run with a daemon that cannot start: the reason once, the build without the cache', async (t) => {
  const v = instance(t);
  const counter = countingDaemon(v);
  fs.mkdirSync(v.home, { recursive: true });
  fs.writeFileSync(path.join(v.home, 'config.toml'), 'max_local_size = "5GB"\n');
  Object.assign(v.env, counter.env);
  for (let i = 0; i < 4; i++) v.write(`m${i}.c`, `int m${i}(void) { return ${i}; }\n`);
  // The build names the shim itself as well: it must not try to start the daemon again.
  v.write('Makefile', `CC = ${SHIM} gcc\nall: m0.o m1.o m2.o m3.o\n`);
  const r = await v.vrift(['run', '--', 'make', '-j2']);
  t.is(r.code, 0, r.err);
  t.is(r.err.split('\n').filter((l) => l.includes('max_local_size')).length, 1, r.err);
  t.regex(r.err, /vrift: cache unavailable, building without it: the daemon cannot start: .*config\.toml: unknown key max_local_size at the top level/);
  t.is(counter.starts(), 0, 'nothing tried to start it: vrift run read the configuration first, the shims were told');
  for (let i = 0; i < 4; i++) t.true(fs.existsSync(path.join(v.dir, `m${i}.o`)));
});
