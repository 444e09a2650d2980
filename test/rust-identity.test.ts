import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from './helpers/test.js';
import { RustcIds } from '../daemon/frontends/rust/identity.js';

// A fake toolchain: a `rustc` script answering -vV and --print sysroot, a sysroot with a
// driver library and a standard library for the host.
function toolchain(t: { teardown(f: () => void): void }) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'vrift-rustc-id-'));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  const sysroot = path.join(root, 'sysroot');
  const tlib = path.join(sysroot, 'lib', 'rustlib', 'x86_64-unknown-linux-gnu', 'lib');
  fs.mkdirSync(tlib, { recursive: true });
  fs.mkdirSync(path.join(sysroot, 'bin'));
  const exe = path.join(sysroot, 'bin', 'rustc');
  const script = (release: string) =>
    `#!/bin/sh\ncase "$1" in\n -vV) printf 'rustc ${release}\\nhost: x86_64-unknown-linux-gnu\\nrelease: ${release}\\n' ;;\n --print) echo "${sysroot}" ;;\nesac\n`;
  fs.writeFileSync(exe, script('1.0.0'), { mode: 0o755 });
  fs.writeFileSync(path.join(sysroot, 'lib', 'librustc_driver-1.so'), 'driver one');
  fs.writeFileSync(path.join(tlib, 'libstd-1.rlib'), 'std one');
  const replace = (file: string, data: string, mode = 0o644) => {
    fs.writeFileSync(file + '.new', data, { mode });
    fs.renameSync(file + '.new', file);
  };
  return { root, exe, sysroot, tlib, script, replace };
}

const ENV = { PATH: process.env.PATH ?? '/usr/bin:/bin' };

test('the identity covers the executable, -vV, the driver library and the standard library', async (t) => {
  const tc = toolchain(t);
  const ids = new RustcIds(path.join(tc.root, 'ids.json'));
  const first = await ids.identity(tc.exe, null, ENV, tc.root);
  t.is(first.host, 'x86_64-unknown-linux-gnu');
  t.is((await ids.identity(tc.exe, null, ENV, tc.root)).id, first.id);

  tc.replace(path.join(tc.tlib, 'libstd-1.rlib'), 'std two');
  const std = await ids.identity(tc.exe, null, ENV, tc.root);
  t.not(std.id, first.id, 'a new standard library');

  tc.replace(path.join(tc.sysroot, 'lib', 'librustc_driver-1.so'), 'driver two');
  const driver = await ids.identity(tc.exe, null, ENV, tc.root);
  t.not(driver.id, std.id, 'a new compiler library');

  tc.replace(tc.exe, tc.script('1.0.1'), 0o755);
  const version = await ids.identity(tc.exe, null, ENV, tc.root);
  t.not(version.id, driver.id, 'a new rustc');
});

test("identities survive a daemon restart, keyed by the files' stat signatures", async (t) => {
  const tc = toolchain(t);
  const memo = path.join(tc.root, 'ids.json');
  const a = await new RustcIds(memo).identity(tc.exe, null, ENV, tc.root);
  t.deepEqual(Object.values(JSON.parse(fs.readFileSync(memo, 'utf8'))), [a.id]);
  // The saved value is what a new daemon uses (a planted value proves it was read)...
  const sig = Object.keys(JSON.parse(fs.readFileSync(memo, 'utf8')))[0];
  fs.writeFileSync(memo, JSON.stringify({ [sig]: 'planted' }));
  t.is((await new RustcIds(memo).identity(tc.exe, null, ENV, tc.root)).id, 'planted');
  // ...until a file changes, and a corrupt memo only means hashing again.
  tc.replace(path.join(tc.tlib, 'libstd-1.rlib'), 'std one');
  t.is((await new RustcIds(memo).identity(tc.exe, null, ENV, tc.root)).id, a.id);
  fs.writeFileSync(memo, '{not json');
  t.is((await new RustcIds(memo).identity(tc.exe, null, ENV, tc.root)).id, a.id);
});

// `RUSTC=wrapper.sh` execing the compiler a variable names: the probes need the compile's
// environment, and the identity must follow the compiler behind the variable.
test("a RUSTC wrapper script: probed with the compile's environment less cargo's per-crate variables, once; the rustc behind its variable is part of the identity", async (t) => {
  const tc = toolchain(t);
  const probes = path.join(tc.root, 'probes');
  // A rustc that logs its calls and takes its release from a variable the wrapper never names.
  const rustc = (comment: string) =>
    `#!/bin/sh\n# ${comment}\necho "$1" >> ${probes}\ncase "$1" in\n -vV) printf 'rustc %s\\nhost: x86_64-unknown-linux-gnu\\n' "\${FAKE_RELEASE:-1.0.0}" ;;\n --print) echo "${tc.sysroot}" ;;\nesac\n`;
  tc.replace(tc.exe, rustc('one'), 0o755);
  const wrapper = path.join(tc.root, 'wrapper.sh');
  fs.writeFileSync(wrapper, '#!/bin/sh\nexec "$REAL_RUSTC" "$@"\n', { mode: 0o755 });
  const ids = new RustcIds();
  const env = { ...ENV, REAL_RUSTC: tc.exe };
  const calls = () => fs.readFileSync(probes, 'utf8').split('\n').filter(Boolean).length;

  const first = await ids.identity(wrapper, null, env, tc.root);
  t.is(first.host, 'x86_64-unknown-linux-gnu');
  const asked = calls();
  const perCrate: Record<string, string>[] = [
    { CARGO_PKG_NAME: 'a', CARGO_CRATE_NAME: 'a', CARGO_MANIFEST_DIR: '/ws/a', OUT_DIR: '/t/a/out', CARGO_PRIMARY_PACKAGE: '1' },
    {
      CARGO_PKG_NAME: 'b',
      CARGO_PKG_VERSION: '2.0.0',
      CARGO_CRATE_NAME: 'b',
      CARGO_MANIFEST_PATH: '/ws/b/Cargo.toml',
      CARGO_MAKEFLAGS: '-j --jobserver-fds=3,4',
      VRIFT_SESSION: 'x',
    },
  ];
  for (const extra of perCrate) t.is((await ids.identity(wrapper, null, { ...env, ...extra }, tc.root)).id, first.id);
  t.is(calls(), asked, 'per-crate variables ask no new probe');

  const release = await ids.identity(wrapper, null, { ...env, FAKE_RELEASE: '1.0.1' }, tc.root);
  t.not(release.id, first.id, 'another -vV, through a variable only the compiler reads');

  const copy = path.join(tc.root, 'rustc-copy');
  fs.writeFileSync(copy, rustc('two'), { mode: 0o755 });
  const moved = await ids.identity(wrapper, null, { ...env, REAL_RUSTC: copy }, tc.root);
  t.not(moved.id, first.id, 'the variable pointed at another rustc that says the same in -vV');

  const wrapper2 = path.join(tc.root, 'wrapper2.sh');
  fs.writeFileSync(wrapper2, '#!/bin/sh\n# another wrapper\nexec "$REAL_RUSTC" "$@"\n', { mode: 0o755 });
  t.not((await ids.identity(wrapper2, null, env, tc.root)).id, first.id, 'another wrapper');

  tc.replace(tc.exe, rustc('one, rewritten'), 0o755);
  t.not((await ids.identity(wrapper, null, env, tc.root)).id, first.id, 'the rustc behind the variable rewritten in place');
});
