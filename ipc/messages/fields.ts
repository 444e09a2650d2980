import { VriftError } from '../errors.js';

// Field readers shared by the message validators: a bad field is EBADMSG with its name.
type Msg = Record<string, unknown>;

function bad(field: string, want: string): never {
  throw new VriftError('EBADMSG', `field '${field}' must be ${want}`, { fields: { field } });
}

export function str(m: Msg, k: string): string {
  const v = m[k];
  return typeof v === 'string' ? v : bad(k, 'a string');
}
/** A path: a string without NUL (no system call takes one). */
export function pathStr(m: Msg, k: string): string {
  const v = str(m, k);
  return v.includes('\0') ? bad(k, 'a path (no NUL)') : v;
}
/** An absolute path: what a shim sends as its cwd. */
export function absPath(m: Msg, k: string): string {
  const v = pathStr(m, k);
  return v.startsWith('/') ? v : bad(k, 'an absolute path');
}
export function optStr(m: Msg, k: string): string | undefined {
  return m[k] === undefined || m[k] === null ? undefined : str(m, k);
}
export function int(m: Msg, k: string): number {
  const v = m[k];
  return typeof v === 'number' && Number.isInteger(v) ? v : bad(k, 'an integer');
}
export function bool(m: Msg, k: string): boolean {
  const v = m[k];
  return v === undefined || v === null ? false : typeof v === 'boolean' ? v : bad(k, 'a boolean');
}
export function strArray(m: Msg, k: string): string[] {
  const v = m[k];
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) bad(k, 'an array of strings');
  return v as string[];
}
export function bytes(m: Msg, k: string): Buffer {
  const v = m[k];
  if (v === undefined || v === null) return Buffer.alloc(0);
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  if (typeof v === 'string') return Buffer.from(v);
  return bad(k, 'bytes');
}
