import test from './helpers/test.js';
import { argsForMiss, parseRustcArgs, type RustCompile } from '../daemon/frontends/rust/args.js';
import { escapeEnvValue, parseDepInfo } from '../daemon/frontends/rust/depinfo.js';
import { KeyForms } from '../daemon/frontends/relativize.js';
import { RustPaths, TDIR_MARK, targetDirOf, WS_MARK, workspaceOf } from '../daemon/frontends/rust/paths.js';

const forms = new KeyForms();

// rustc command lines as cargo 1.95 writes them (copied from a real build).
const LIB = [
  '--crate-name',
  'wscore',
  '--edition=2021',
  'crates/core/src/lib.rs',
  '--error-format=json',
  '--json=diagnostic-rendered-ansi,artifacts,future-incompat',
  '--crate-type',
  'lib',
  '--emit=dep-info,metadata,link',
  '-C',
  'embed-bitcode=no',
  '-C',
  'debuginfo=2',
  '--check-cfg',
  'cfg(docsrs,test)',
  '--check-cfg',
  'cfg(feature, values("shout"))',
  '-C',
  'metadata=56463015b73ecdf1',
  '-C',
  'extra-filename=-ae47a01ac2734cb5',
  '--out-dir',
  '/w/target/debug/deps',
  '-L',
  'dependency=/w/target/debug/deps',
  '--extern',
  'cfg_if=/w/target/debug/deps/libcfg_if-4a49.rmeta',
  '--extern',
  'itoa=/w/target/debug/deps/libitoa-0fcf.rmeta',
];

test('a cargo library compile parses into crate, outputs and key items', (t) => {
  const p = parseRustcArgs(LIB) as RustCompile;
  t.is(p.kind, 'compile');
  t.is(p.crateName, 'wscore');
  t.is(p.source, 'crates/core/src/lib.rs');
  t.is(p.outDir, '/w/target/debug/deps');
  t.is(p.extraFilename, '-ae47a01ac2734cb5');
  t.deepEqual(p.emits, ['dep-info', 'metadata', 'link']);
  t.deepEqual(
    p.items.filter((i) => i.k === 'extern'),
    [
      { k: 'extern', opt: '--extern=cfg_if', name: 'cfg_if', path: '/w/target/debug/deps/libcfg_if-4a49.rmeta' },
      { k: 'extern', opt: '--extern=itoa', name: 'itoa', path: '/w/target/debug/deps/libitoa-0fcf.rmeta' },
    ],
  );
  t.deepEqual(
    p.items.filter((i) => i.k === 'path'),
    [
      { k: 'path', opt: '--out-dir=', path: '/w/target/debug/deps' },
      { k: 'path', opt: '-Ldependency=', path: '/w/target/debug/deps' },
    ],
  );
  t.true(p.items.some((i) => i.k === 'plain' && i.s === '-Cmetadata=56463015b73ecdf1'));
  t.deepEqual(argsForMiss(p, LIB, '/tmp/x.d'), { argv: LIB, depInfoOwn: false });
});

test('glued and joined spellings parse the same', (t) => {
  const a = parseRustcArgs(['--crate-name=x', 'src/lib.rs', '--crate-type=rlib', '-Cmetadata=1', '-Ldependency=/d', '--out-dir=/o']) as RustCompile;
  const b = parseRustcArgs([
    '--crate-name',
    'x',
    'src/lib.rs',
    '--crate-type',
    'rlib',
    '-C',
    'metadata=1',
    '-L',
    'dependency=/d',
    '--out-dir',
    '/o',
  ]) as RustCompile;
  t.deepEqual(a, b);
});

test("what is not cacheable passes with sccache's reasons (linked crates are cached, unless the link is changed)", (t) => {
  const reason = (extra: string[], base = ['--crate-name', 'x', 'src/lib.rs', '--crate-type', 'lib', '--out-dir', '/o']) => {
    const p = parseRustcArgs([...base, ...extra]);
    return p.kind === 'pass' ? p.reason : 'compile';
  };
  t.is(reason([]), 'compile');
  t.is(reason(['--crate-type', 'bin']), 'compile');
  t.is(reason(['--crate-type', 'proc-macro']), 'compile');
  t.is(reason(['--crate-type', 'bin', '-C', 'link-arg=-fuse-ld=lld']), 'link_args');
  t.is(reason(['--crate-type', 'bin', '-Clink-args=-Wl,-O1']), 'link_args');
  t.is(reason(['--crate-type', 'proc-macro', '-C', 'linker-flavor=ld.lld']), 'link_args');
  t.is(reason(['-C', 'link-arg=-Wl,-O1']), 'compile', 'a library is not linked: link args do not matter');
  t.is(reason(['--crate-type', 'dylib']), 'crate_type_dylib');
  t.is(reason(['--crate-type', 'cdylib']), 'crate_type_cdylib');
  t.is(reason(['--crate-type', 'staticlib']), 'crate_type_staticlib');
  t.is(reason(['--crate-type', 'sdylib']), 'crate_type_other', 'a crate type vrift does not know: one registered name');
  t.is(reason(['-C', 'incremental=/w/target/debug/incremental']), 'incremental');
  t.is(reason(['-Cincremental=/i']), 'incremental');
  t.is(reason(['--emit=metadata=-']), 'emit_stdout');
  t.is(reason(['--emit', 'link=/elsewhere/x.rlib']), 'emit_path');
  t.is(reason(['-o', '-']), 'output_stdout');
  t.is(reason(['-o', 'x.rlib']), 'output_file');
  t.is(reason(['--test']), 'test_harness');
  t.is(reason(['-vV'], []), 'probe');
  t.is(reason(['-', '--crate-name', '___', '--print=file-names', '--crate-type', 'lib'], []), 'probe');
  t.is(reason(['--print', 'sysroot'], []), 'probe');
  t.is(reason(['--crate-name', 'x', '-', '--crate-type', 'lib', '--out-dir', '/o'], []), 'stdin_input');
  t.is(reason(['--crate-name', 'x', 'src/lib.rs', '--crate-type', 'lib'], []), 'no_out_dir');
  t.is(reason(['--crate-name', 'x', 'src/lib.rs', '--out-dir', '/o'], []), 'crate_type_implicit');
  t.is(reason(['@args.txt']), 'response_file');
  t.is(reason(['other.rs']), 'multiple_inputs');
});

test('a dep-info emission is added when the build asked for none', (t) => {
  const base = ['--crate-name', 'x', 'src/lib.rs', '--crate-type', 'lib', '--out-dir', '/o'];
  const none = parseRustcArgs(base) as RustCompile;
  t.deepEqual(argsForMiss(none, base, '/t/a.d').argv.at(-1), '--emit=link,dep-info=/t/a.d');
  const meta = parseRustcArgs([...base, '--emit=metadata']) as RustCompile;
  t.deepEqual(argsForMiss(meta, [...base, '--emit=metadata'], '/t/a.d').argv.at(-1), '--emit=dep-info=/t/a.d');
  // A linked crate also asks ld for the list of what it read; a library never does.
  const binArgs = ['--crate-name', 'x', 'src/main.rs', '--crate-type', 'bin', '--emit=dep-info,link', '--out-dir', '/o'];
  const bin = parseRustcArgs(binArgs) as RustCompile;
  t.deepEqual(argsForMiss(bin, binArgs, '/t/a.d', '/t/a.ld.d').argv, [...binArgs, '-Clink-arg=-Wl,--dependency-file=/t/a.ld.d']);
  t.is(argsForMiss(none, base, '/t/a.d', '/t/a.ld.d').argv.filter((a) => a.includes('dependency-file')).length, 0);
});

test('dep-info: inputs once each, escaped spaces, env-deps set and unset', (t) => {
  const d = parseDepInfo(
    [
      '/w/target/debug/deps/x-1.d: src/lib.rs src/my\\ mod.rs /w/target/debug/build/x-2/out/gen.rs',
      '',
      '/w/target/debug/deps/libx-1.rlib: src/lib.rs src/my\\ mod.rs /w/target/debug/build/x-2/out/gen.rs',
      '',
      'src/lib.rs:',
      'src/my\\ mod.rs:',
      '',
      '# env-dep:GREETING=a\\nb',
      '# env-dep:MISSING',
      '',
    ].join('\n'),
  );
  t.deepEqual(d.deps, ['src/lib.rs', 'src/my mod.rs', '/w/target/debug/build/x-2/out/gen.rs']);
  t.deepEqual(d.envs, [
    ['GREETING', 'a\\nb'],
    ['MISSING', null],
  ]);
  t.is(escapeEnvValue('a\nb\\c'), 'a\\nb\\\\c');
});

test('paths under the target directory are keyed relative to it; text round-trips', (t) => {
  const tdir = targetDirOf('/w/one/target/debug/deps');
  t.is(tdir, '/w/one/target/debug');
  const p = new RustPaths('/usr/share/cargo/registry/itoa-1.0.1', '/', tdir, forms);
  const q = new RustPaths('/usr/share/cargo/registry/itoa-1.0.1', '/', '/w/two/target/debug', forms);
  t.is(p.key('/w/one/target/debug/deps'), TDIR_MARK + 'deps');
  t.is(p.key('/w/one/target/debug/deps'), q.key('/w/two/target/debug/deps'));
  t.is(p.envValue('/w/one/target/debug/build/x/out'), q.envValue('/w/two/target/debug/build/x/out'));
  t.is(p.key('/w/one/target/debugger'), WS_MARK + 'target/debugger', 'not in the target directory, only in the workspace');
  const text = Buffer.from('{"artifact":"/w/one/target/debug/deps/libitoa.rmeta","emit":"metadata"}\n/w/one/target/debugger\n');
  const stored = p.toStored(text)!;
  t.is(stored.indexOf('/w/one/target/debug/'), -1);
  t.true(stored.includes('/w/one/target/debugger'), 'a longer name is not a target-dir path');
  t.is(q.fromStored(stored).toString(), '{"artifact":"/w/two/target/debug/deps/libitoa.rmeta","emit":"metadata"}\n/w/one/target/debugger\n');
  t.deepEqual(p.fromStored(stored), text);
});

test('paths in the workspace above target/ are keyed relative to it', (t) => {
  t.is(workspaceOf('/w/one/target/debug'), '/w/one');
  t.is(workspaceOf('/w/one/target/x86_64-unknown-linux-gnu/release'), '/w/one');
  t.is(workspaceOf('/w/out/debug'), null);
  const p = new RustPaths('/usr/share/cargo/registry/itoa-1.0.1', '/', '/w/one/target/debug', forms);
  const q = new RustPaths('/usr/share/cargo/registry/itoa-1.0.1', '/', '/w/two/target/debug', forms);
  t.is(p.key('/w/one'), WS_MARK + '.');
  t.is(p.key('/w/one/src/x.rs'), q.key('/w/two/src/x.rs'));
  t.is(p.toAbs(p.key('/w/one/src/x.rs')), '/w/one/src/x.rs');
  t.is(p.key('/w/onex/y'), '/w/onex/y');
  t.is(p.key('/usr/share/cargo/registry/itoa-1.0.1/src/lib.rs'), '\u0000rel:src/lib.rs');
});
