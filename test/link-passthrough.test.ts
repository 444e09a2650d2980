import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import test from './helpers/test.js';
import { age, instance, run } from './helpers/instance.js';
import { rustcArgs, toolchainRustc } from './helpers/rustc.js';

// Links vrift does not cache run as they would without it: the same exit code, stderr and
// executable as the plain driver's, counted with their reason, never stored, never served.

function project(t: Parameters<typeof instance>[0]) {
  const v = instance(t);
  v.files({ 'f.c': 'int f(void) { return 3; }\n', 'm.c': 'int f(void);\nint main(void) { return f(); }\n', 'my.specs': '' });
  for (const src of ['f.c', 'm.c']) execFileSync('gcc', ['-c', src], { cwd: v.dir });
  age(path.join(v.dir, 'f.o'), path.join(v.dir, 'm.o'));
  fs.mkdirSync(path.join(v.dir, 'bdir'));
  return v;
}

const CASES: [string, string[], string][] = [
  ['gcc', ['-fuse-ld=gold'], 'link_option'],
  ['gcc', ['-fuse-ld=lld'], 'link_option'],
  ['gcc', ['-Bbdir'], 'link_option'],
  ['gcc', ['--sysroot=/'], 'link_option'],
  ['gcc', ['-m32'], 'link_option'], // fails without 32-bit libraries: fails the same way
  ['gcc', ['-specs=my.specs'], 'link_option'],
  ['clang', ['--target=x86_64-linux-gnu'], 'link_option'],
];

for (const [driver, extra, reason] of CASES) {
  test(`${driver} ${extra.join(' ')}: a link passed through (${reason}), as plain ${driver} links it`, async (t) => {
    const v = project(t);
    const args = ['-o', 'prog', 'm.o', 'f.o', ...extra];
    const plain = await run(driver, ['-o', 'plain', ...args.slice(2)], { cwd: v.dir });
    for (let i = 0; i < 2; i++) {
      fs.rmSync(path.join(v.dir, 'prog'), { force: true });
      const r = await v.cc(args, { compiler: driver });
      t.is(r.code, plain.code, r.err);
      t.is(r.err.replaceAll('prog', 'plain'), plain.err);
      t.is(fs.existsSync(path.join(v.dir, 'prog')), plain.code === 0);
      if (plain.code === 0) {
        t.deepEqual(fs.readFileSync(path.join(v.dir, 'prog')), fs.readFileSync(path.join(v.dir, 'plain')), "the executable is plain's");
        t.is((await run(path.join(v.dir, 'prog'), [])).code, 3);
      }
    }
    const s = await v.stats();
    t.is(s.uncacheable[reason], 2, JSON.stringify(s.uncacheable));
    t.like(s, { hits: 0, misses: 0, stored: 0 });
  });
}

// A linker that cannot list what it read (binutils before 2.35): a Rust binary's link is not
// cached (linker_no_depfile) and still links. The driver rustc calls names it as its ld.
test('a Rust binary whose linker cannot write a dependency file is passed through (linker_no_depfile) and links', async (t) => {
  const v = instance(t);
  const oldLd = v.write('old/ld', '#!/bin/sh\ncase "$*" in *--help*) /usr/bin/ld "$@" | grep -v -- --dependency-file; exit 0;; esac\nexec /usr/bin/ld "$@"\n');
  const cc = v.write('old/cc', `#!/bin/sh\ncase "$*" in -print-prog-name=ld) echo ${oldLd}; exit 0;; esac\nexec gcc -B${path.dirname(oldLd)}/ "$@"\n`);
  fs.chmodSync(oldLd, 0o755);
  fs.chmodSync(cc, 0o755);
  v.files({ 'src/main.rs': 'fn main() { std::process::exit(3) }\n' });
  age(oldLd, cc);
  const out = path.join(v.dir, 'out');
  fs.mkdirSync(out);
  const rustc = toolchainRustc();
  const args = rustcArgs({ crate: 'app', src: 'src/main.rs', type: 'bin', emit: 'dep-info,link', codegen: [`linker=${cc}`], out });
  for (let i = 0; i < 2; i++) {
    fs.rmSync(path.join(out, 'app'), { force: true });
    const r = await v.cc(args, { compiler: rustc });
    t.is(r.code, 0, r.err);
    t.is((await run(path.join(out, 'app'), [])).code, 3);
  }
  const s = await v.stats();
  t.is(s.uncacheable.linker_no_depfile, 2, JSON.stringify(s.uncacheable));
  t.like(s, { hits: 0, stored: 0 });
});

// gold 2.40 and lld 14 can write a dependency file, but a Rust link told to use one
// (-C link-arg=-fuse-ld=...) carries extra link arguments: passed through as link_args,
// linked by the linker asked for, as C links with -fuse-ld are (link_option, above).
for (const ld of ['gold', 'lld']) {
  test(`a Rust binary linked with -C link-arg=-fuse-ld=${ld} is passed through (link_args) and links with ${ld}`, async (t) => {
    const v = instance(t);
    v.files({ 'src/main.rs': 'fn main() { std::process::exit(3) }\n' });
    const out = path.join(v.dir, 'out');
    fs.mkdirSync(out);
    const rustc = toolchainRustc();
    const args = rustcArgs({ crate: 'app', src: 'src/main.rs', type: 'bin', emit: 'dep-info,link', codegen: [`link-arg=-fuse-ld=${ld}`], out });
    for (let i = 0; i < 2; i++) {
      fs.rmSync(path.join(out, 'app'), { force: true });
      const r = await v.cc(args, { compiler: rustc });
      t.is(r.code, 0, r.err);
      t.is((await run(path.join(out, 'app'), [])).code, 3);
    }
    // The linker that wrote it says so in the executable's .comment / notes.
    const comment = execFileSync('readelf', ['-p', '.comment', '-n', path.join(out, 'app')], { encoding: 'utf8' });
    t.regex(comment, ld === 'gold' ? /gold/ : /LLD|lld/, comment);
    const s = await v.stats();
    t.is(s.uncacheable.link_args, 2, JSON.stringify(s.uncacheable));
    t.like(s, { hits: 0, stored: 0 });
  });
}
