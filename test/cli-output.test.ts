import fs from 'node:fs';
import path from 'node:path';
import test from './helpers/test.js';
import { EXPLAIN } from '../shim/format.js';
import { age, instance, ROOT } from './helpers/instance.js';

// Keys users read in JSON are snake_case; maps of reasons (uncacheable, errors, ...) keep theirs.
const REASON_MAPS = new Set(['uncacheable', 'not_stored', 'errors', 'shim_fallbacks', 'latency']);
function camelKeys(o: unknown, at = ''): string[] {
  if (o === null || typeof o !== 'object' || Array.isArray(o)) return [];
  return Object.entries(o).flatMap(([k, v]) => [...(/^[a-z0-9_]+$/.test(k) ? [] : [`${at}${k}`]), ...(REASON_MAPS.has(k) ? [] : camelKeys(v, `${at}${k}.`))]);
}

test('daemon status and stats speak snake_case JSON without wire fields; stats --zero --json prints JSON', async (t) => {
  const v = instance(t);
  age(v.write('a.c', 'int a(void) { return 1; }\n'));
  t.is((await v.cc(['-c', 'a.c', '-o', 'a.o'])).code, 0);
  await v.stored(1);
  const status = await v.vrift(['daemon', 'status', '--json']);
  t.is(status.code, 0, status.err);
  const st = JSON.parse(status.out);
  t.deepEqual(Object.keys(st).sort(), ['build', 'endpoint', 'home', 'pid', 'running', 'uptime_ms']);
  t.is(st.running, true);
  const stats = JSON.parse((await v.vrift(['stats', '--json'])).out);
  t.deepEqual(camelKeys(stats), []);
  t.is(typeof stats.local.evicted_files, 'number');
  const zero = await v.vrift(['stats', '--zero', '--json']);
  t.is(zero.code, 0, zero.err);
  const z = JSON.parse(zero.out);
  t.is(z.misses, 0);
  t.is(z.requests, 0);
  t.is((await v.vrift(['stats', '--zero'])).out, 'statistics zeroed\n');
  const never = instance(t); // an instance whose daemon never started
  const down = await never.vrift(['daemon', 'status', '--json']);
  t.is(down.code, 1);
  t.deepEqual(Object.keys(JSON.parse(down.out)).sort(), ['endpoint', 'home', 'running']);
});

test('stats: words a user understands, --explain says what each line counts', async (t) => {
  const v = instance(t);
  age(v.write('a.c', 'int a(void) { return 1; }\n'));
  t.is((await v.cc(['-c', 'a.c', '-o', 'a.o'])).code, 0);
  await v.stored(1);
  const plain = await v.vrift(['stats']);
  t.notRegex(plain.out, /stat'ed|reported without waiting|refused/);
  const explained = await v.vrift(['stats', '--explain']);
  t.is(explained.code, 0, explained.err);
  const lines = explained.out.split('\n');
  for (const label of [
    'compiler calls',
    'hits',
    'misses',
    'failed compiles (not stored)',
    'uncacheable',
    'errors',
    'shim went around the cache',
    'size',
    'evicted files',
  ]) {
    const i = lines.findIndex((l) => l.trim().startsWith(label + ' ') || l.trim() === label);
    t.true(i >= 0, label);
    t.is(lines[i + 1]?.trim(), EXPLAIN[label], label);
  }
});

test('failed compiles are not misses: the hit rate and the summary line leave them out', async (t) => {
  const v = instance(t);
  age(v.write('good.c', 'int g(void) { return 1; }\n'), v.write('bad.c', 'int f(void) { return nope; }\n'));
  v.write('Makefile', 'all: good.o bad.o\n');
  const first = await v.vrift(['run', '--', 'make', '-k']);
  t.not(first.code, 0);
  t.regex(first.err, /vrift: [\d.]+ s, 0 hits, 1 misses, 0 uncacheable, 1 failed, hit rate 0\.0%/);
  fs.rmSync(path.join(v.dir, 'good.o'));
  const second = await v.vrift(['run', '--', 'make', '-k']);
  t.regex(second.err, /vrift: [\d.]+ s, 1 hits, 0 misses, 0 uncacheable, 1 failed, hit rate 100\.0%/);
  const s = await v.stats();
  t.like(s, { hits: 1, misses: 1, compile_failed: 2 });
  t.regex((await v.vrift(['stats'])).out, /hit rate 50\.0%/);
});

test("the README's command synopsis names every option --help lists", async (t) => {
  const v = instance(t);
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const block = /## Commands\n\n```\n([\s\S]*?)```/.exec(readme)![1];
  // Each command's synopsis: its first line and the indented lines that follow it.
  const synopsis = (cmd: string) => {
    const ls = block.split('\n');
    const i = ls.findIndex((l) => l.startsWith(`vrift ${cmd}`));
    t.true(i >= 0, `README lists vrift ${cmd}`);
    let s = ls[i];
    for (let j = i + 1; j < ls.length && /^\s/.test(ls[j]); j++) s += ls[j];
    return s;
  };
  for (const cmd of ['run', 'stats', 'clean', 'verify', 'config', 'daemon status', 'shims-dir', 'serve', 'demo', 'mount', 'unmount', 'mounts']) {
    const help = (await v.vrift([...cmd.split(' '), '--help'])).out;
    const opts = [...help.matchAll(/^\s+(?:-\w, )?(--[a-z-]+)/gm)].map((m) => m[1]).filter((o) => o !== '--help');
    const line = synopsis(cmd.split(' ')[0]);
    for (const o of opts) t.true(line.includes(o), `README's vrift ${cmd} lacks ${o}`);
  }
});
