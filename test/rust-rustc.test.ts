import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import test from './helpers/test.js';
import { age, instance, run } from './helpers/instance.js';
import { fakeServer, startServe, tmpDir } from './helpers/remote.js';
import { rustcArgs, toolchainRustc } from './helpers/rustc.js';

// rustc called through the shim directly, the way cargo does (`vrift-shim <rustc> args`).
const RUSTC = toolchainRustc();
const PROXY = execFileSync('sh', ['-c', 'command -v rustc'], { encoding: 'utf8' }).trim();

function project(v: ReturnType<typeof instance>, lib: string) {
  const files = [v.write('src/lib.rs', lib), v.write('src/m.rs', 'pub fn m() -> u32 { 7 }\n')];
  age(...files);
  const out = path.join(v.dir, 'out');
  fs.mkdirSync(out, { recursive: true });
  return out;
}

const WARNS = 'mod m;\npub fn f(x: u32) -> u32 { let unused = 3; x + m::m() }\n';

test("JSON diagnostics and artifact notices replay byte for byte, outputs identical to rustc's", async (t) => {
  const v = instance(t);
  const out = project(v, WARNS);
  const args = rustcArgs({
    crate: 'w',
    src: 'src/lib.rs',
    flags: ['--error-format=json', '--json=diagnostic-rendered-ansi,artifacts,future-incompat'],
    type: 'lib',
    emit: 'dep-info,metadata,link',
    codegen: ['metadata=abc', 'extra-filename=-abc'],
    out,
  });
  const plain = await run(RUSTC, args, { cwd: v.dir });
  t.is(plain.code, 0);
  t.regex(plain.err, /unused variable/);
  t.regex(plain.err, /"artifact":".*libw-abc.rmeta"/);
  const files = ['libw-abc.rlib', 'libw-abc.rmeta', 'w-abc.d'];
  const want = files.map((f) => fs.readFileSync(path.join(out, f)));

  const miss = await v.cc(args, { compiler: RUSTC });
  t.is(miss.code, 0);
  t.deepEqual(miss.stderr, plain.stderr);
  t.deepEqual(miss.stdout, plain.stdout);
  for (const f of files) fs.rmSync(path.join(out, f));
  const hit = await v.cc(args, { compiler: RUSTC });
  t.is(hit.code, 0);
  t.deepEqual(hit.stderr, plain.stderr, 'stderr replayed exactly');
  t.deepEqual(hit.stdout, plain.stdout);
  t.deepEqual(
    files.map((f) => fs.readFileSync(path.join(out, f))),
    want,
  );
  const s = await v.stats();
  t.is(s.hits, 1);
  t.is(s.misses, 1);
});

test('without a dep-info emission the sources are still tracked, and no dep-info file appears', async (t) => {
  const v = instance(t);
  const out = project(v, WARNS);
  const args = ['--crate-name', 'w', 'src/lib.rs', '--crate-type', 'rlib', '--out-dir', out];
  t.is((await v.cc(args, { compiler: RUSTC })).code, 0);
  t.is((await v.cc(args, { compiler: RUSTC })).code, 0);
  t.deepEqual(fs.readdirSync(out), ['libw.rlib']);
  // m.rs is only known from the dep-info vrift asked for.
  fs.writeFileSync(path.join(v.dir, 'src/m.rs'), 'pub fn m() -> u32 { 8 }\n');
  age(path.join(v.dir, 'src/m.rs'));
  t.is((await v.cc(args, { compiler: RUSTC })).code, 0);
  const s = await v.stats();
  t.is(s.hits, 1);
  t.is(s.misses, 2);
  t.deepEqual(fs.readdirSync(out), ['libw.rlib']);
});

test('a failed compile is never cached', async (t) => {
  const v = instance(t);
  const out = project(v, 'pub fn f() -> u32 { "no" }\n');
  const args = ['--crate-name', 'w', 'src/lib.rs', '--crate-type', 'lib', '--error-format=json', '--out-dir', out];
  const a = await v.cc(args, { compiler: RUSTC });
  const b = await v.cc(args, { compiler: RUSTC });
  t.is(a.code, 1);
  t.is(b.code, 1);
  t.deepEqual(b.stderr, a.stderr);
  const s = await v.stats();
  t.is(s.hits, 0);
  t.is(s.compile_failed, 2);
});

test("rustup's proxy and a RUSTC wrapper are identified by what they run", async (t) => {
  const v = instance(t);
  const out = project(v, WARNS);
  const args = ['--crate-name', 'w', 'src/lib.rs', '--crate-type', 'lib', '--cap-lints', 'allow', '--out-dir', out];
  t.is((await v.cc(args, { compiler: PROXY })).code, 0);
  t.is((await v.cc(args, { compiler: PROXY })).code, 0);
  t.is((await v.stats()).hits, 1, 'the proxy hits its own entry');
  // Two wrapper scripts named rustc that change the code generated: never each other's hit.
  const wrap = (dir: string, extra: string) => {
    const f = v.write(`${dir}/rustc`, `#!/bin/sh\nexec "${RUSTC}" ${extra} "$@"\n`);
    fs.chmodSync(f, 0o755);
    return f;
  };
  const o1 = wrap('w1', '-Copt-level=1');
  const o3 = wrap('w3', '-Copt-level=3');
  t.is((await v.cc(args, { compiler: o1 })).code, 0);
  const one = fs.readFileSync(path.join(out, 'libw.rlib'));
  t.is((await v.cc(args, { compiler: o3 })).code, 0);
  t.is((await v.stats()).hits, 1, 'a different wrapper is a different compiler');
  t.is((await v.cc(args, { compiler: o1 })).code, 0);
  t.is((await v.stats()).hits, 2);
  t.deepEqual(fs.readFileSync(path.join(out, 'libw.rlib')), one);
});

test('a binary is cached with what its link read: a changed native library, or one appearing earlier on the search path, misses', async (t) => {
  const v = instance(t);
  const lib = async (dir: string, n: number) => {
    const src = v.write(`${dir}/num.c`, `int num(void) { return ${n}; }\n`);
    const obj = path.join(v.dir, dir, 'num.o');
    const a = path.join(v.dir, dir, 'libnum.a');
    t.is((await run('gcc', ['-c', src, '-o', obj])).code, 0);
    fs.rmSync(a, { force: true });
    t.is((await run('ar', ['rcs', a, obj])).code, 0);
    age(a);
  };
  await lib('native-b', 1);
  fs.mkdirSync(path.join(v.dir, 'native-a'));
  age(v.write('src/main.rs', '#[link(name = "num", kind = "static")]\nextern "C" { fn num() -> i32; }\nfn main() { println!("{}", unsafe { num() }); }\n'));
  const out = path.join(v.dir, 'out');
  fs.mkdirSync(out);
  const args = rustcArgs({
    crate: 'app',
    src: 'src/main.rs',
    type: 'bin',
    emit: 'dep-info,link',
    codegen: ['extra-filename=-x'],
    out,
    after: ['-L', 'native=native-a', '-L', 'native=native-b'],
  });
  const exe = path.join(out, 'app-x');
  const build = async (want: string) => {
    fs.rmSync(exe, { force: true });
    const r = await v.cc(args, { compiler: RUSTC });
    t.is(r.code, 0, r.err);
    t.is((await run(exe, [])).out, `${want}\n`);
  };
  await build('1');
  await build('1');
  t.is((await v.stats()).hits, 1, 'the same link inputs: a hit, and the binary runs');
  await lib('native-b', 2);
  await build('2');
  await lib('native-a', 3); // earlier on the search path: the linker takes this one now
  await build('3');
  await build('3');
  const s = await v.stats();
  t.is(s.misses, 3);
  t.is(s.hits, 2);
  t.deepEqual(s.not_stored, {});
});

test("an entry built at the build's pause: outputs a clean removed right after the compile are still stored, an output written in place since is refused", async (t) => {
  const v = instance(t);
  const out = project(v, WARNS);
  // A compile that keeps running (until the test writes its gate file) holds the pause, so
  // both entries wait.
  const gate = path.join(v.dir, 'gate');
  const slow = v.write('bin/slowcc', `#!/bin/sh\ni=0\nwhile [ ! -e ${gate} ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done\nexec gcc "$@"\n`);
  fs.chmodSync(slow, 0o755);
  age(slow, v.write('other.c', 'int other(void) { return 1; }\n'));
  let heldDone = false;
  const held = v.cc(['-c', 'other.c', '-o', 'other.o'], { compiler: slow }).finally(() => {
    heldDone = true;
  });
  await v.until((x) => x.daemon.pending >= 1, "the held compile's lookup at the daemon");
  const args = (name: string) => ['--crate-name', name, 'src/lib.rs', '--crate-type', 'rlib', '--emit=dep-info,metadata,link', '--out-dir', out];
  t.is((await v.cc(args('a'), { compiler: RUSTC })).code, 0);
  const want = fs.readFileSync(path.join(out, 'liba.rlib'));
  fs.rmSync(out, { recursive: true }); // cargo clean
  fs.mkdirSync(out);
  t.is((await v.cc(args('b'), { compiler: RUSTC })).code, 0);
  fs.appendFileSync(path.join(out, 'libb.rlib'), 'not what rustc wrote');
  t.false(heldDone, 'the held compile ran across both crates');
  fs.writeFileSync(gate, '');
  t.is((await held).code, 0);
  // other.o's entry also waits for the slow compiler's include search (its `-v` sleeps too).
  let s = await v.until((x) => x.stored + (x.not_stored.output_changed ?? 0) >= 3);
  t.is(s.stored, 2, 'other.o and crate a');
  t.is(s.not_stored.output_changed, 1, 'crate b');
  fs.rmSync(out, { recursive: true });
  fs.mkdirSync(out);
  t.is((await v.cc(args('a'), { compiler: RUSTC })).code, 0);
  t.deepEqual(fs.readFileSync(path.join(out, 'liba.rlib')), want);
  t.is((await v.cc(args('b'), { compiler: RUSTC })).code, 0);
  s = await v.stats();
  t.is(s.hits, 1);
  t.is(s.misses, 4);
});

test("a binary's --extern rlib linked again during the compile (cargo uplifts it) is taken as read; one written since is refused", async (t) => {
  const v = instance(t);
  const out = path.join(v.dir, 'out');
  fs.mkdirSync(out);
  age(v.write('dep/lib.rs', 'pub fn seven() -> u32 { 7 }\n'), v.write('src/main.rs', 'fn main() { println!("{}", dep::seven()); }\n'));
  t.is((await run(RUSTC, ['--crate-name', 'dep', '--edition=2021', 'dep/lib.rs', '--crate-type', 'lib', '--out-dir', out], { cwd: v.dir })).code, 0);
  const rlib = path.join(out, 'libdep.rlib');
  age(rlib);
  // Wrappers named rustc that act on the dependency while the compile runs: a second hard
  // link (a new ctime, content and mtime as before), or a touch (a new mtime).
  const wrap = (dir: string, act: string) => {
    const f = v.write(`${dir}/rustc`, `#!/bin/sh\n${act}\nexec "${RUSTC}" "$@"\n`);
    fs.chmodSync(f, 0o755);
    age(f);
    return f;
  };
  const uplift = wrap('wl', `ln -f "${rlib}" "${path.join(out, 'uplifted.rlib')}"`);
  const touch = wrap('wt', `touch "${rlib}"`);
  // A binary: what its link reads (the rlib among it) is checked when the entry is built.
  const args = (name: string) => rustcArgs({ crate: name, src: 'src/main.rs', type: 'bin', emit: 'dep-info,link', out, after: ['--extern', `dep=${rlib}`] });
  t.is((await v.cc(args('app'), { compiler: uplift })).code, 0);
  // The entry is built at the build's pause and written after: counted either way once done.
  let s = await v.until((x) => x.stored + Object.values(x.not_stored).reduce((a, b) => a + b, 0) >= 1, 'the binary stored or refused');
  t.deepEqual(s.not_stored, {}, 'stored: only the link count and ctime changed');
  t.is(s.stored, 1);
  t.true(fs.statSync(rlib).nlink > 1);
  t.is((await v.cc(args('app'), { compiler: uplift })).code, 0);
  t.is((await v.stats()).hits, 1);
  t.is((await run(path.join(out, 'app'), [])).out, '7\n');
  t.is((await v.cc(args('app2'), { compiler: touch })).code, 0);
  s = await v.until((x) => (x.not_stored.input_too_new ?? 0) >= 1, 'the touched binary refused');
  t.is(s.not_stored.input_too_new, 1, 'a new mtime during the compile: refused');
});

test("a hit from the team cache fetches a crate's outputs in parallel: rlib and rmeta of 9 MB and more, identical to rustc's", async (t) => {
  const dir = tmpDir(t);
  const serve = await startServe(t, ['--store', path.join(dir, 'store'), '--access-log', 'off']);
  // Statics of 9 MB: both the rlib and the rmeta hold them (over STREAM_MIN, so both stream).
  const lib = 'pub static DATA: [u8; 9000000] = [7; 9000000];\npub fn f() -> u8 { DATA[3] }\n';
  // A and B build in different directories: the out dir relative, the sources remapped (else
  // the outputs embed the directory, and are not shared between checkouts).
  const args = (dir: string) => [
    `--remap-path-prefix=${dir}=/src`,
    ...rustcArgs({
      crate: 'big',
      src: 'src/lib.rs',
      type: 'lib',
      emit: 'dep-info,metadata,link',
      codegen: ['metadata=abc', 'extra-filename=-abc'],
      out: 'out',
    }),
  ];
  const files = ['libbig-abc.rlib', 'libbig-abc.rmeta', 'big-abc.d'];
  // A compiles and uploads.
  const a = instance(t, { VRIFT_REMOTE: serve.url, VRIFT_REMOTE_TIMEOUT: '10s', VRIFT_REMOTE_WAIT: '10s' });
  const outA = project(a, lib);
  t.is((await a.cc(args(a.dir), { compiler: RUSTC })).code, 0);
  const sa = await a.stats();
  t.is(sa.misses, 1, JSON.stringify(sa.uncacheable));
  await a.stop();
  // B asks through a proxy that holds each object GET for 300 ms and counts how many overlap.
  let inflight = 0;
  let most = 0;
  const proxy = await fakeServer(t, (req, res) => {
    const slow = req.method === 'GET' && req.url!.includes('/cas/');
    if (slow) most = Math.max(most, ++inflight);
    setTimeout(
      () => {
        const up = http.request(`${serve.url}${req.url}`, { method: req.method, headers: req.headers }, (r) => {
          res.writeHead(r.statusCode!, r.headers);
          r.pipe(res);
          r.on('end', () => void (slow && inflight--));
        });
        req.pipe(up);
      },
      slow ? 300 : 0,
    );
  });
  const b = instance(t, { VRIFT_REMOTE: proxy.url, VRIFT_REMOTE_TIMEOUT: '10s', VRIFT_REMOTE_WAIT: '10s' });
  const outB = project(b, lib);
  const hit = await b.cc(args(b.dir), { compiler: RUSTC });
  t.is(hit.code, 0, hit.err);
  const s = await b.stats();
  t.is(s.hits, 1);
  t.is(s.misses, 0);
  for (const f of files) t.true(fs.readFileSync(path.join(outB, f)).equals(fs.readFileSync(path.join(outA, f))), `${f} is A's`);
  t.true(most >= 2, `${most} object requests at once`);
});
