import fs from 'node:fs';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import { instance, run, SHIM, type Instance, type Stats } from './instance.js';
import { ensureSources, objects, luaTree } from './workloads.js';
import type { LiveStatus } from '../../ipc/messages/live.js';

// Live mode's tests on a real project: Lua as redis vendors it (Debian's redis source, 38 C
// files, its own Makefile), built with make -j2 through the native shim, -MMD so that every
// compile also writes a depfile (which warming must send elsewhere too).

export const FLAGS = 'MYCFLAGS=-O0 -MMD';

/** Lua from Debian's redis under `dir` (sources fetched first); returns the source dir. */
export function lua(dir: string): string {
  ensureSources({ quiet: true });
  return luaTree(dir);
}

export const make = (inst: Instance, src: string, ...targets: string[]) =>
  run('make', ['-j2', ...targets, `CC=${SHIM} gcc`, FLAGS], { cwd: src, env: inst.env });

export async function liveStatus(inst: Instance): Promise<LiveStatus> {
  const r = await inst.vrift(['live', 'status', '--json']);
  if (r.code !== 0) throw new Error(`vrift live status: ${r.err}`);
  return JSON.parse(r.out) as LiveStatus;
}

export async function liveUntil(inst: Instance, pred: (s: LiveStatus) => boolean, what: string): Promise<LiveStatus> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const s = await liveStatus(inst);
    if (pred(s)) return s;
    if (Date.now() > deadline) throw new Error(`waited 60 s for ${what}; last live status: ${JSON.stringify(s)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function wait(t: ExecutionContext, inst: Instance): Promise<LiveStatus> {
  const w = await inst.vrift(['live', 'wait', '--timeout', '300']);
  t.is(w.code, 0, w.err);
  return liveStatus(inst);
}

/** Every file under `dir` with its size and mtime: what a build tree looks like to make. */
export function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      const st = fs.lstatSync(p);
      out.set(path.relative(dir, p), `${st.size} ${st.mtimeMs}`);
    }
  };
  walk(dir);
  return out;
}

/** The redis tree `src` is in, copied next to the instance's project dir; the copy's lua source dir. */
export function copyTree(inst: Instance, src: string): string {
  const copy = path.join(path.dirname(inst.dir), 'plain', 'redis');
  fs.rmSync(copy, { recursive: true, force: true });
  fs.cpSync(path.dirname(path.dirname(path.dirname(src))), copy, { recursive: true });
  return path.join(copy, 'deps', 'lua', 'src');
}

/** The objects of a plain gcc build (no vrift) of a copy of `src` as it is now. */
export async function plainObjects(t: ExecutionContext, inst: Instance, src: string, ...more: string[]): Promise<Map<string, Buffer>> {
  const csrc = copyTree(inst, src);
  for (const f of fs.readdirSync(csrc)) if (f.endsWith('.d') || f.endsWith('.o')) fs.rmSync(path.join(csrc, f));
  const r = await run('make', ['-j2', 'o', ...more, 'CC=gcc', FLAGS], { cwd: csrc, env: { ...inst.env, VRIFT_DISABLE: '1' } });
  t.is(r.code, 0, r.err);
  return objects(csrc);
}

/** How many of the tree's compiles read `header` (their depfiles say). */
export function readers(src: string, header: string): number {
  return fs
    .readdirSync(src)
    .filter((f) => f.endsWith('.d'))
    .filter((f) => fs.readFileSync(path.join(src, f), 'utf8').includes(header)).length;
}

/** A cold build through vrift, and live mode knowing all its compiles. */
export async function cold(t: ExecutionContext, prepare?: (src: string) => void, ...more: string[]): Promise<{ v: Instance; src: string; n: number }> {
  const v = instance(t, { VRIFT_LIVE: '1' });
  const src = lua(v.dir);
  prepare?.(src);
  const r = await make(v, src, 'o', ...more);
  t.is(r.code, 0, r.err);
  const n = objects(src).size;
  t.is(n, 38 + more.length);
  await v.stored(n);
  await liveUntil(v, (s) => s.commands === n, `${n} compiles recorded`);
  return { v, src, n };
}

export function edit(file: string, from: string, to: string): void {
  const text = fs.readFileSync(file, 'utf8');
  if (!text.includes(from)) throw new Error(`${from} not in ${file}`);
  fs.writeFileSync(file, text.replace(from, to));
}

export const missesSince = (a: Stats, b: Stats) => b.misses - a.misses;

/** A source that takes gcc seconds to compile (it includes luaconf.h like the rest). */
export function slowSource(src: string): void {
  const fns = ['int f0(int x) { return x * 3; }'];
  for (let f = 1; f < 200; f++)
    fns.push(
      `int f${f}(int x) { int s = 0; for (int i = 0; i < x; i++) { s += (i * ${f + 3}) ^ (s >> 3); if (s % ${f + 7} == 0) s += f${f - 1}(i & 3); } return s; }`,
    );
  const body = Array.from({ length: 200 }, (_, f) => ` s += f${f}(sink);`).join('');
  fs.writeFileSync(
    path.join(src, 'slow.c'),
    ['#pragma GCC optimize ("O2")', '#include "luaconf.h"', 'volatile int sink;', ...fns, `int slow_main(void) { int s = 0;${body} return s; }`, ''].join('\n'),
  );
  const past = new Date(Date.now() - 60_000);
  fs.utimesSync(path.join(src, 'slow.c'), past, past);
}
