import { spawn } from 'node:child_process';
import path from 'node:path';
import test from './helpers/test.js';
import { CLI, instance } from './helpers/instance.js';
import { edit, FLAGS, liveUntil, lua } from './helpers/live.js';
import { waitFor } from './helpers/wait.js';

// `vrift run --live`: the build, then a status line while changes are warmed; Enter (a line on
// stdin) runs the build again, and with --auto a warmed change does. Driven through pipes: the
// status line is printed a line at a time when stderr is not a terminal.

const SUMMARY = /vrift: [\d.]+ s, (\d+) hits, (\d+) misses/g;

function start(v: ReturnType<typeof instance>, src: string, ...flags: string[]) {
  const child = spawn(process.execPath, [CLI, 'run', '--live', ...flags, '--', 'make', '-j2', 'o', FLAGS], {
    cwd: src,
    env: v.env,
    stdio: ['pipe', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (d) => void (err += d));
  const exited = new Promise<number | null>((r) => child.on('close', r));
  return { child, exited, err: () => err, summaries: () => [...err.matchAll(SUMMARY)].map((m) => ({ hits: Number(m[1]), misses: Number(m[2]) })) };
}

test.serial('vrift run --live: an edit is warmed, the line says ready, Enter builds again with only hits; with --auto the build runs by itself', async (t) => {
  t.timeout(15 * 60_000);
  const v = instance(t);
  const src = lua(v.dir);
  const conf = path.join(src, 'luaconf.h');

  const r = start(v, src);
  await waitFor(() => r.summaries().length === 1, 'the first build', { ms: 300_000 });
  t.is(r.summaries()[0].misses, 38, r.err());
  await v.stored(38);
  await liveUntil(v, (s) => s.commands === 38, '38 compiles recorded');
  await waitFor(() => r.err().includes('live: watching'), 'the watching line');
  edit(conf, '#define LUA_IDSIZE\t60', '#define LUA_IDSIZE\t61');
  await waitFor(() => r.err().includes('live: ready'), 'the ready line', { ms: 300_000 });
  t.regex(r.err(), /live: (\d+ files changed · )?warming \d+ compiles|live: ready/);
  r.child.stdin!.write('\n');
  await waitFor(() => r.summaries().length === 2, 'the build Enter started', { ms: 300_000 });
  const second = r.summaries()[1];
  t.is(second.misses, 0, r.err());
  t.true(second.hits >= 20, r.err());
  r.child.kill('SIGINT');
  t.is(await r.exited, 0);

  const a = start(v, src, '--auto');
  await waitFor(() => a.summaries().length === 1, 'the first build', { ms: 300_000 });
  t.is(a.summaries()[0].misses, 0);
  edit(conf, '#define LUA_IDSIZE\t61', '#define LUA_IDSIZE\t62');
  await waitFor(() => a.summaries().length === 2, 'the build --auto started', { ms: 300_000 });
  t.is(a.summaries()[1].misses, 0, a.err());
  t.true(a.summaries()[1].hits >= 20, a.err());
  a.child.kill('SIGINT');
  t.is(await a.exited, 0);
});
