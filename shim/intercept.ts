import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { NATIVE_SHIM, PACKAGE_ROOT } from './daemon-control.js';

export const INTERCEPT_LIB = path.join(PACKAGE_ROOT, 'native', 'build', 'libvrift-intercept.so');

export type InterceptSetup = { ok: true; env: Record<string, string> } | { ok: false; reason: string };

// The environment that has a build's exec calls of compilers routed through the native
// shim (native/intercept.c): the library preloaded, the shim to route to, and the
// masquerade directory the library hides from dynamically linked processes (it stays
// first on PATH for statically linked ones). Tried once on a shell first: a library that
// does not load would have the dynamic loader complain in every process of the build, so
// the build then runs without it, as before.
export function interceptEnv(env: NodeJS.ProcessEnv, shimsDir: string, opts: { lib?: string; shim?: string } = {}): InterceptSetup {
  const lib = opts.lib ?? INTERCEPT_LIB;
  const shim = opts.shim ?? NATIVE_SHIM;
  if (!fs.existsSync(shim)) return { ok: false, reason: `no native shim at ${shim}` };
  if (!fs.existsSync(lib)) return { ok: false, reason: `no ${lib} (make -C native builds it)` };
  const add: Record<string, string> = {
    // glibc reads LD_PRELOAD's entries left to right; the build's own stay after ours.
    LD_PRELOAD: env.LD_PRELOAD ? `${lib}:${env.LD_PRELOAD}` : lib,
    VRIFT_INTERCEPT: shim,
    VRIFT_MASQUERADE: shimsDir,
  };
  const probePath = `${shimsDir}${path.delimiter}${env.PATH ?? ''}`;
  const r = spawnSync('/bin/sh', ['-c', 'printf %s "$PATH"'], { env: { ...env, ...add, PATH: probePath }, encoding: 'utf8', timeout: 10_000 });
  const err = (r.stderr ?? '').trim();
  if (r.error || r.status !== 0 || err) return { ok: false, reason: err.split('\n')[0] || r.error?.message || `probe exited ${r.status}` };
  // The library's constructor ran: the shell saw PATH without the masquerade directory.
  if (r.stdout.startsWith(shimsDir)) return { ok: false, reason: `${lib} did not load into /bin/sh` };
  return { ok: true, env: add };
}
