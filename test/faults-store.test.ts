import fs from 'node:fs';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import test from './helpers/test.js';
import { waitFor } from './helpers/wait.js';
import { digestHex } from '../daemon/hash.js';
import { AC_DIR, CAS_DIR } from '../daemon/store/layout.js';
import { CLI, instance, run, SHIM, type Instance, type RunResult, type Stats } from './helpers/instance.js';

// Store files spoiled behind a running daemon, end to end: each object (cas) and entry (ac)
// file of a compile is truncated, zeroed, replaced by a directory, a symlink (to another store
// file, to a device, to nothing) or made unreadable. The next compile must get gcc's own
// object (never a wrong one), the bad file is dropped, and the compile after that hits again
// (the store rebuilt it). Unreadable files need a user the permission bits apply to: that
// instance runs as `nobody` (tests run as root, which reads a mode-000 file anyway).

type Fault = [name: string, spoil: (file: string, other: string) => void];

const FAULTS: Fault[] = [
  ['truncated to half', (f) => fs.truncateSync(f, Math.floor(fs.statSync(f).size / 2))],
  ['truncated to 0', (f) => fs.truncateSync(f, 0)],
  ['zeroed', (f) => fs.writeFileSync(f, Buffer.alloc(fs.statSync(f).size))],
  ['a byte flipped at the end', (f) => flip(f)],
  ['a directory', (f) => replace(f, () => fs.mkdirSync(path.join(f, 'inside'), { recursive: true }))],
  ['a symlink to another store file', (f, other) => replace(f, () => fs.symlinkSync(other, f))],
  ['a symlink to /dev/zero', (f) => replace(f, () => fs.symlinkSync('/dev/zero', f))],
  ['a dangling symlink', (f) => replace(f, () => fs.symlinkSync(`${f}.gone`, f))],
];

function flip(f: string) {
  const b = fs.readFileSync(f);
  b[b.length - 1] ^= 0x20;
  fs.writeFileSync(f, b);
}

function replace(f: string, make: () => void) {
  fs.rmSync(f, { force: true });
  make();
}

function storeFiles(root: string, dir: string): Set<string> {
  const out = new Set<string>();
  const base = path.join(root, dir);
  for (const shard of fs.existsSync(base) ? fs.readdirSync(base) : []) {
    for (const name of fs.readdirSync(path.join(base, shard))) out.add(path.join(base, shard, name));
  }
  return out;
}

const SRC = (n: number) => `int g${n}(int x) { return x * ${n + 3} - ${n}; }\nconst char *name${n} = "source ${n}";\n`;

interface Runner {
  cc(args: string[]): Promise<RunResult>;
  stats(): Promise<Stats>;
  cli(args: string[]): Promise<RunResult>;
}

function rootRunner(inst: Instance): Runner {
  return { cc: (args) => inst.cc(args), stats: () => inst.stats(), cli: (args) => inst.vrift(args) };
}

// Everything of the instance (the shim, hence the daemon it starts, and the CLI) as nobody.
const NOBODY = ['--reuid=nobody', '--regid=nogroup', '--clear-groups', '--'];
function nobodyRunner(inst: Instance): Runner {
  const env = { ...inst.env, HOME: path.dirname(inst.home) };
  const cli = (args: string[]) => run('setpriv', [...NOBODY, process.execPath, CLI, ...args], { cwd: inst.dir, env });
  return {
    cc: (args) => run('setpriv', [...NOBODY, SHIM, 'gcc', ...args], { cwd: inst.dir, env }),
    cli,
    stats: async () => {
      const r = await cli(['stats', '--json']);
      if (r.code !== 0) throw new Error(`vrift stats failed: ${r.err}`);
      return JSON.parse(r.out) as Stats;
    },
  };
}

interface Compiled {
  name: string;
  plain: Buffer;
  cas: string[];
  ac: string[];
}

/** Compiles `count` sources at once, then finds each one's store files: its object's blob (by
 * its digest), the result entry naming that digest and the manifest naming that result. */
async function compileAll(t: ExecutionContext, inst: Instance, r: Runner, count: number): Promise<Compiled[]> {
  const root = path.join(inst.home, 'l2');
  const names = Array.from({ length: count }, (_, n) => `s${n}`);
  inst.files(Object.fromEntries(names.map((name, n) => [`${name}.c`, SRC(n)])));
  await Promise.all(
    names.map(async (name) => {
      const res = await r.cc(['-O2', '-c', `${name}.c`, '-o', `${name}.o`]);
      t.is(res.code, 0, res.err);
    }),
  );
  const plain = await Promise.all(
    names.map(async (name) => {
      const res = await run('gcc', ['-O2', '-c', `${name}.c`, '-o', `${name}.plain.o`], { cwd: inst.dir });
      t.is(res.code, 0, res.err);
      return fs.readFileSync(path.join(inst.dir, `${name}.plain.o`));
    }),
  );
  const digests = plain.map((b) => digestHex(b));
  const naming = (hex: string) => [...storeFiles(root, AC_DIR)].filter((f) => fs.readFileSync(f).includes(hex));
  // Manifests land last, after the result they name.
  await waitFor(() => digests.every((d) => naming(d).some((res) => naming(path.basename(res)).length > 0)), 'every compile stored', { everyMs: 50 });
  return names.map((name, n) => {
    const result = naming(digests[n]);
    return {
      name,
      plain: plain[n],
      cas: [path.join(root, CAS_DIR, digests[n].slice(0, 2), digests[n])],
      ac: [...result, ...result.flatMap((f) => naming(path.basename(f)))],
    };
  });
}

interface Tally {
  injected: number;
  wrong: number;
  healed: number;
}

/** After the files of `cs` were spoiled: the next compile of each is gcc's object; its spoiled
 * files are written again; the compile after that is a hit with the same bytes. */
async function checkSpoiled(t: ExecutionContext, inst: Instance, r: Runner, cs: Compiled[], kind: 'cas' | 'ac', what: string, tally: Tally): Promise<void> {
  // What is there now (spoiled): a file written again is a new one renamed over the name.
  const spoiled = cs.flatMap((c) => (kind === 'cas' ? c.cas : c.ac)).map((f) => [f, fs.lstatSync(f).ino] as const);
  const compile = (c: Compiled) => async () => {
    const obj = path.join(inst.dir, `${c.name}.o`);
    fs.rmSync(obj, { force: true });
    const res = await r.cc(['-O2', '-c', `${c.name}.c`, '-o', `${c.name}.o`]);
    t.is(res.code, 0, `${what} ${c.name}: ${res.err}`);
    const right = fs.existsSync(obj) && fs.readFileSync(obj).equals(c.plain);
    if (!right) tally.wrong++;
    t.true(right, `${what} ${c.name}: the object is gcc's`);
  };
  await Promise.all(cs.map((c) => compile(c)()));
  await waitFor(
    () =>
      spoiled.every(([f, ino]) => {
        const st = fs.lstatSync(f, { throwIfNoEntry: false });
        return st?.isFile() === true && st.ino !== ino;
      }),
    () =>
      `${what}: the store files written again (${spoiled.filter(([f, ino]) => fs.lstatSync(f, { throwIfNoEntry: false })?.ino === ino).map(([f]) => f)} not)`,
    { everyMs: 20 },
  );
  const mid = await r.stats();
  await Promise.all(cs.map((c) => compile(c)()));
  const after = await r.stats();
  t.is(after.hits, mid.hits + cs.length, `${what}: the store was rebuilt, every compile after hits`);
  tally.healed += Math.min(cs.length, after.hits - mid.hits);
}

// Objects are read from disk at every hit (a changed file is read and verified again), so they
// are spoiled under the running daemon. Entries are kept decoded in the daemon's memory once
// read: they are spoiled while it is stopped, and the daemon the next compile starts reads them.
test('store files truncated, zeroed, flipped, replaced by directories or symlinks: never served, dropped, rebuilt by the next compile', async (t) => {
  const inst = instance(t);
  const r = rootRunner(inst);
  const targets = FAULTS.length * 2;
  const compiled = await compileAll(t, inst, r, targets + 1);
  const spare = compiled[targets]; // another source's files: what a symlink points at
  const tally: Tally = { injected: 0, wrong: 0, healed: 0 };
  const spoilAll = (c: Compiled, kind: 'cas' | 'ac', spoil: Fault[1]) => {
    const files = kind === 'cas' ? c.cas : c.ac;
    t.true(files.length > 0, `${c.name} stored ${kind} files`);
    for (const f of files) spoil(f, (kind === 'cas' ? spare.cas : spare.ac)[0]);
    tally.injected += files.length;
  };
  FAULTS.forEach(([, spoil], i) => spoilAll(compiled[i], 'cas', spoil));
  await checkSpoiled(t, inst, r, compiled.slice(0, FAULTS.length), 'cas', 'objects', tally);
  const stop = await r.cli(['daemon', 'stop']);
  t.is(stop.code, 0, stop.err);
  FAULTS.forEach(([, spoil], i) => spoilAll(compiled[FAULTS.length + i], 'ac', spoil));
  await checkSpoiled(t, inst, r, compiled.slice(FAULTS.length, targets), 'ac', 'entries', tally);
  const s = await r.stats();
  const verify = await r.cli(['verify', '--json']);
  t.is(verify.code, 0, verify.err);
  t.log(
    `${tally.injected} store files spoiled (${FAULTS.length} faults x objects and entries): ${tally.wrong} wrong objects, ${tally.healed} of ${targets} rebuilt; ${s.local.corrupt} counted corrupt since the restart; verify afterwards: ${verify.out.trim()}`,
  );
  t.is(tally.wrong, 0);
  t.is(tally.healed, targets);
  t.true(s.local.corrupt > 0);
  t.is((JSON.parse(verify.out) as { corrupt: number }).corrupt, 0, `nothing corrupt left: ${verify.out} ${verify.err}`);
});

test('store files and a shard directory made unreadable (mode 000) under a daemon running as nobody: compiles stay right and the files are rebuilt', async (t) => {
  const inst = instance(t);
  const base = path.dirname(inst.home);
  fs.mkdirSync(inst.home, { recursive: true });
  fs.chmodSync(base, 0o755);
  const own = (p: string) => run('chown', ['-R', 'nobody:nogroup', p]);
  await own(base);
  const r = nobodyRunner(inst);
  const compiled = await compileAll(t, inst, r, 3);
  await own(base); // the sources the test wrote since
  const s0 = await r.stats();
  t.is(fs.statSync(`/proc/${s0.daemon.pid}`).uid, 65534, 'the daemon runs as nobody');
  const tally: Tally = { injected: 0, wrong: 0, healed: 0 };
  for (const f of compiled[0].cas) fs.chmodSync(f, 0);
  await checkSpoiled(t, inst, r, [compiled[0]], 'cas', 'object mode 000', tally);
  // Entries are read from disk by a daemon that has not read them yet (see above).
  t.is((await r.cli(['daemon', 'stop'])).code, 0);
  for (const f of compiled[1].ac) fs.chmodSync(f, 0);
  await checkSpoiled(t, inst, r, [compiled[1]], 'ac', 'entries mode 000', tally);
  tally.injected += compiled[0].cas.length + compiled[1].ac.length;
  // A whole shard directory the daemon cannot read: compiles are right (fail open), whether or
  // not the store can write there again.
  const shard = path.dirname(compiled[2].ac[0]);
  fs.chmodSync(shard, 0);
  tally.injected++;
  const obj = path.join(inst.dir, `${compiled[2].name}.o`);
  fs.rmSync(obj, { force: true });
  const res = await r.cc(['-O2', '-c', `${compiled[2].name}.c`, '-o', `${compiled[2].name}.o`]);
  t.is(res.code, 0, res.err);
  const right = fs.readFileSync(obj).equals(compiled[2].plain);
  if (!right) tally.wrong++;
  t.true(right, 'an unreadable shard: the object is gcc’s');
  fs.chmodSync(shard, 0o755);
  t.log(`${tally.injected} store files or directories made unreadable to the daemon's user: ${tally.wrong} wrong objects, ${tally.healed} rebuilt`);
  t.is(tally.wrong, 0);
  t.is(tally.healed, 2);
});
