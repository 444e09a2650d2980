import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import test from './helpers/test.js';
import { CLI, instance, run, type RunResult } from './helpers/instance.js';
import { request, startServe, tmpDir } from './helpers/remote.js';

// Every command that cannot go on says why on one line, without a stack trace, and exits non-zero.
function oneLine(t: { is: (a: unknown, b: unknown, m?: string) => void; notRegex: (s: string, r: RegExp, m?: string) => void }, r: RunResult, what: string) {
  t.is(r.err.trim().split('\n').length, 1, `${what}: ${r.err}`);
  t.notRegex(r.err, /\n\s+at |node:internal|^\s*\^/m, what);
}

const cli = (args: string[], env: NodeJS.ProcessEnv, cwd?: string) => run(process.execPath, [CLI, ...args], { env, cwd });

test('vrift config | head: the closed pipe ends the command quietly', async (t) => {
  const dir = tmpDir(t);
  const env = { ...process.env, VRIFT_HOME: path.join(dir, 'home') };
  for (const args of [['config'], ['config', '--json'], ['--help'], ['serve', '--help']]) {
    // The reader is gone before the first write: every write gets EPIPE.
    const r = await new Promise<{ code: number | null; err: string }>((resolve) => {
      const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout.destroy();
      let err = '';
      child.stderr.on('data', (d) => (err += d));
      child.on('close', (code) => resolve({ code, err }));
    });
    t.is(r.err, '', args.join(' '));
    t.is(r.code, 0, args.join(' '));
  }
});

test('VRIFT_HOME a file, under a file, or not writable: shims-dir, clean and verify say so on one line', async (t) => {
  const dir = tmpDir(t);
  const file = path.join(dir, 'file');
  fs.writeFileSync(file, 'not a directory');
  for (const home of [file, path.join(file, 'sub')]) {
    const env = { ...process.env, VRIFT_HOME: home };
    for (const cmd of [['shims-dir'], ['clean', '--all'], ['verify']]) {
      const r = await cli(cmd, env);
      t.not(r.code, 0, cmd[0]);
      oneLine(t, r, `${cmd[0]} with VRIFT_HOME=${home}`);
      t.true(r.err.includes(`VRIFT_HOME=${home}`), r.err);
      t.is(fs.readFileSync(file, 'utf8'), 'not a directory');
    }
  }
  // Not writable: run as nobody (root may write anywhere).
  const ro = path.join(dir, 'ro');
  fs.mkdirSync(ro, { mode: 0o755 });
  fs.chmodSync(dir, 0o755);
  for (const cmd of [['shims-dir'], ['clean', '--all'], ['verify']]) {
    const r = await run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, CLI, ...cmd], {
      env: { ...process.env, VRIFT_HOME: ro, HOME: ro },
    });
    t.not(r.code, 0, cmd[0]);
    oneLine(t, r, `${cmd[0]} with an unwritable VRIFT_HOME`);
    t.regex(r.err, /VRIFT_HOME=.*ro is not writable by you/);
  }
});

test('vrift run of a command that does not exist: 127 and "command not found", no summary line', async (t) => {
  const v = instance(t);
  const r = await v.vrift(['run', '--', 'nosuchcmd-vrift', '-x']);
  t.is(r.code, 127);
  t.is(r.err, 'vrift run: nosuchcmd-vrift: command not found\n');
});

test('masquerade without a real compiler on PATH says the real gcc was not found; the shims directory has rustc too', async (t) => {
  const v = instance(t);
  const r = await v.vrift(['shims-dir']);
  t.is(r.code, 0, r.err);
  const shims = r.out.trim();
  for (const name of ['gcc', 'cc', 'g++', 'c++', 'clang', 'clang++', 'rustc']) t.true(fs.existsSync(path.join(shims, name)), name);
  const gcc = await run(path.join(shims, 'gcc'), ['-c', 'a.c'], { cwd: v.dir, env: { ...v.env, PATH: shims } });
  t.is(gcc.code, 127);
  t.is(gcc.err, "vrift-shim: the real gcc was not found on PATH (vrift's own shims are skipped)\n");
});

test('vrift serve refuses what it cannot use before it listens, marks required options, counts 413s as rejected uploads', async (t) => {
  const dir = tmpDir(t);
  const help = await cli(['serve', '--help'], process.env);
  t.regex(help.out, /--port <n>\s+\(required\)/);
  t.regex(help.out, /--store <dir\|s3:\/\/bucket\/prefix>\s+\(required\)/);
  const bad: [string[], RegExp][] = [
    [['--store', 's3:/garbage'], /--store: "s3:\/garbage" is neither a directory nor an s3:\/\/bucket\/prefix URL/],
    [['--store', 'http://x/y'], /--store: "http:\/\/x\/y" is neither/],
    [
      ['--store', 'store', '--access-log', '/nonexistent-vrift/dir/x.log'],
      /--access-log: cannot open \/nonexistent-vrift\/dir\/x\.log: no such file or directory/,
    ],
    [['--store', 'store', '--max-blob-size', '0'], /--max-blob-size/],
    [['--store', 'store', '--tls-cert', 'x.pem'], /--tls-cert and --tls-key go together/],
  ];
  for (const [args, msg] of bad) {
    const r = await run(process.execPath, [CLI, 'serve', '--port', '0', ...args], { cwd: dir });
    t.not(r.code, 0, args.join(' '));
    oneLine(t, r, args.join(' '));
    t.regex(r.err, msg);
    t.notRegex(r.err, /listening/);
  }
  t.deepEqual(fs.readdirSync(dir), [], 'nothing created (no "s3:" directory)');
  for (const args of [
    ['--port', ''],
    ['--store', 'x'],
  ]) {
    const r = await run(process.execPath, [CLI, 'serve', ...args], { cwd: dir });
    t.not(r.code, 0);
    oneLine(t, r, args.join(' '));
  }

  const s = await startServe(t, ['--store', path.join(dir, 'store'), '--max-blob-size', '1k', '--access-log', 'off']);
  t.is((await request(`${s.url}/ac/${'a'.repeat(64)}`, { method: 'PUT', body: Buffer.alloc(4096) })).status, 413);
  t.is((await request(`${s.url}/cas/${'b'.repeat(64)}`, { method: 'PUT', body: 'x' })).status, 400);
  const st = JSON.parse((await request(`${s.url}/status`)).body.toString());
  t.is(st.rejected_uploads, 2);
  t.is(st.too_large_uploads, 1);
  for (const k of Object.keys(st)) t.regex(k, /^[a-z0-9_]+$/, `/status key ${k}`);
  t.regex((await request(`${s.url}/metrics`)).body.toString(), /vrift_serve_rejected_uploads_total\{reason="too_large"\} 1/);
});
