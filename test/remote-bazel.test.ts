import fs from 'node:fs';
import path from 'node:path';
import test from './helpers/test.js';
import { run } from './helpers/instance.js';
import { noneLeft } from './helpers/procs.js';
import { ensureTool, startServe, tmpDir } from './helpers/remote.js';

// Bazel (Debian bazel-bootstrap 4.2.3, offline) as a real client: SHA-256 CAS uploads are
// verified by vrift serve, the ActionResult in /ac/ is opaque. A genrule calls gcc, since
// cc_binary would need downloads.
test('Bazel --remote_cache against vrift serve: after bazel clean the action is a remote cache hit', async (t) => {
  const bazel = ensureTool('bazel', 'bazel-bootstrap');
  const dir = tmpDir(t, 'vrift-bazel-');
  const ws = path.join(dir, 'ws');
  fs.mkdirSync(ws);
  fs.writeFileSync(path.join(ws, 'WORKSPACE'), '');
  fs.writeFileSync(path.join(ws, 't.c'), 'int f(void) { return 3; }\n');
  fs.writeFileSync(path.join(ws, 'BUILD'), 'genrule(name = "obj", srcs = ["t.c"], outs = ["t.o"], cmd = "gcc -c $(location t.c) -o $@")\n');
  const serve = await startServe(t, ['--store', path.join(dir, 'store')]);
  const startup = [`--output_user_root=${path.join(dir, 'root')}`];
  const env = { ...process.env, HOME: dir };
  const bz = (args: string[]) => run(bazel, [...startup, ...args], { cwd: ws, env });
  t.teardown(async () => {
    const r = await bz(['shutdown']);
    if (r.code !== 0) throw new Error(`bazel shutdown exited ${r.code}: ${r.err}`);
    await noneLeft('the Bazel server', (p) => p.cmdline.includes(startup[0]!.split('=')[1]!));
  });
  const remote = `--remote_cache=${serve.url}/inst`;
  const first = await bz(['build', '//:obj', remote]);
  t.is(first.code, 0, first.err);
  const obj = fs.readFileSync(path.join(ws, 'bazel-bin', 't.o'));
  const log = await serve.logged((ls) => ls.some((l) => l.method === 'PUT' && /^\/inst\/ac\//.test(String(l.path))));
  const puts = log.filter((l) => l.method === 'PUT');
  t.true(puts.some((l) => /^\/inst\/ac\//.test(l.path)));
  t.true(puts.filter((l) => /^\/inst\/cas\//.test(l.path)).length >= 1);
  t.true(
    puts.every((l) => l.status === 200),
    JSON.stringify(puts),
  );
  t.is((await bz(['clean'])).code, 0);
  const second = await bz(['build', '//:obj', remote]);
  t.is(second.code, 0, second.err);
  t.regex(second.err, /1 remote cache hit/);
  t.deepEqual(fs.readFileSync(path.join(ws, 'bazel-bin', 't.o')), obj);
});
