import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import test from './helpers/test.js';
import { instance } from './helpers/instance.js';
import { cargo, copyWorkspace, counted } from './helpers/rust.js';

// `RUSTC=wrapper.sh`, a script that execs the compiler an environment variable names (as CI
// setups and build systems do), under vrift as RUSTC_WRAPPER: test/fixtures/rust-ws (two
// Debian crates, two workspace libraries, a proc-macro, a build script, a binary) cold, after
// `cargo clean` warm, then with the variable pointed at another rustc.

const CRATES = 7;

function sysroot(): string {
  return execFileSync('rustc', ['--print', 'sysroot'], { encoding: 'utf8' }).trim();
}

// Another rustc that runs: the toolchain's bin/rustc and a copy of its driver library with
// one byte changed in the commit date it prints with -vV; the rest of the toolchain linked.
function patchedToolchain(dest: string, real: string): string {
  fs.mkdirSync(path.join(dest, 'bin'), { recursive: true });
  fs.mkdirSync(path.join(dest, 'lib'));
  fs.copyFileSync(path.join(real, 'bin', 'rustc'), path.join(dest, 'bin', 'rustc'));
  fs.chmodSync(path.join(dest, 'bin', 'rustc'), 0o755);
  const date = /^commit-date: (\S+)$/m.exec(execFileSync(path.join(real, 'bin', 'rustc'), ['-vV'], { encoding: 'utf8' }))![1];
  const other = date.slice(0, -1) + (date.endsWith('9') ? '8' : String(Number(date.slice(-1)) + 1));
  for (const n of fs.readdirSync(path.join(real, 'lib'))) {
    const from = path.join(real, 'lib', n);
    const to = path.join(dest, 'lib', n);
    if (!/^librustc_driver-.*\.so$/.test(n)) {
      fs.symlinkSync(from, to);
      continue;
    }
    const bytes = fs.readFileSync(from);
    const needle = Buffer.from(date);
    for (let i = bytes.indexOf(needle); i !== -1; i = bytes.indexOf(needle, i + 1)) bytes.write(other, i, 'latin1');
    fs.writeFileSync(to, bytes);
  }
  return path.join(dest, 'bin', 'rustc');
}

test.serial(
  'a RUSTC wrapper that execs the rustc a variable names: cold, clean, warm all hit and the binary runs; another rustc behind the variable misses',
  async (t) => {
    const v = instance(t);
    const c = cargo(v);
    const ws = copyWorkspace(path.join(v.dir, 'ws'));
    const wrapper = path.join(v.dir, 'bin', 'wrapper.sh');
    fs.mkdirSync(path.dirname(wrapper));
    fs.writeFileSync(wrapper, '#!/bin/sh\nexec "$REAL_RUSTC" "$@"\n', { mode: 0o755 });
    const real = sysroot();
    const env = { RUSTC: wrapper, REAL_RUSTC: path.join(real, 'bin', 'rustc') };

    const cold = await counted(v, () => c.build(ws, [], env));
    t.is(cold.value.code, 0, cold.value.err);
    t.deepEqual(cold.uncacheable.rustc_identity ?? 0, 0);
    t.is(cold.misses, CRATES, JSON.stringify(cold.uncacheable));
    t.is(cold.hits, 0);
    t.deepEqual(cold.notStored, {});
    t.is(await c.app(ws), 'quiet:126 note=unset greeting=hello');

    await c.clean(ws);
    const warm = await counted(v, () => c.build(ws, [], env));
    t.is(warm.value.code, 0, warm.value.err);
    t.is(warm.hits, CRATES);
    t.is(warm.misses, 0);
    t.is(await c.app(ws), 'quiet:126 note=unset greeting=hello');

    // The same wrapper, the variable pointed at a rustc whose -vV differs by one byte.
    const other = patchedToolchain(path.join(v.dir, 'other-rustc'), real);
    const vv = (exe: string) => execFileSync(exe, ['-vV'], { encoding: 'utf8' });
    t.not(vv(other), vv(env.REAL_RUSTC));
    await c.clean(ws);
    const moved = await counted(v, () => c.build(ws, [], { ...env, REAL_RUSTC: other }));
    t.is(moved.value.code, 0, moved.value.err);
    t.is(moved.hits, 0, 'nothing the other rustc made is served');
    t.is(moved.misses, CRATES);
    t.is(await c.app(ws), 'quiet:126 note=unset greeting=hello');

    // And back: the first rustc's entries are still there.
    await c.clean(ws);
    const back = await counted(v, () => c.build(ws, [], env));
    t.is(back.value.code, 0, back.value.err);
    t.is(back.hits, CRATES);
  },
);
