import fs from 'node:fs';
import path from 'node:path';
import type { InstancePaths } from './paths.js';

// What a command prints when it cannot go on: one line, what went wrong and what to do,
// never a stack trace. Here, not in shim/, because `vriftd serve` (which `vrift serve` runs)
// words its refusals the same way. File-system errors inside VRIFT_HOME point at VRIFT_HOME.

const WHY: Record<string, string> = {
  ENOTDIR: 'a path component is a file, not a directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  ENOENT: 'no such file or directory',
  EEXIST: 'already exists',
  EISDIR: 'is a directory',
  ENAMETOOLONG: 'path too long',
};

/** The reason alone (`permission denied`), for a message that names the path itself. */
export function reason(e: unknown): string {
  const code = (e as { code?: string })?.code;
  return (code && WHY[code]) ?? (e instanceof Error ? e.message.split('\n')[0] : String(e));
}

export function userMessage(e: unknown, paths?: InstancePaths): string {
  const err = e as NodeJS.ErrnoException & { code?: string };
  if (err?.code && err.path && WHY[err.code]) {
    const p = err.path;
    const inHome = paths && (p === paths.home || p.startsWith(paths.home + path.sep));
    return (
      `${err.syscall ? `${err.syscall} ` : ''}${p}: ${WHY[err.code]}` +
      (inHome ? ` (VRIFT_HOME=${paths.home} must be a directory you can write; set VRIFT_HOME to another one)` : '')
    );
  }
  return err instanceof Error ? err.message.split('\n')[0] : String(e);
}

/** Refuses a VRIFT_HOME that is not a writable directory before anything is created in it. */
export function checkHome(paths: InstancePaths): string | undefined {
  let st: fs.Stats;
  try {
    st = fs.statSync(paths.home);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined; // made on first use
    return userMessage(e, paths);
  }
  const fix = 'set VRIFT_HOME to a directory you can write';
  if (!st.isDirectory()) return `VRIFT_HOME=${paths.home} is not a directory; ${fix}`;
  try {
    fs.accessSync(paths.home, fs.constants.W_OK | fs.constants.X_OK);
  } catch {
    return `VRIFT_HOME=${paths.home} is not writable by you; ${fix}`;
  }
  return undefined;
}
