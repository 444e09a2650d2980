import { VriftError } from '../errors.js';
import { bytes, int, str } from './fields.js';

// done: the shim ran the compiler after a `run` reply. The daemon reads the outputs before
// it answers `ok`, so the build can't change them under it; storing happens afterwards.
//
// One-way (`nr`): when the `run` reply named files to collect (RunReply.col), the shim read
// them itself right after the compiler exited and sends them along in `files`, as [absolute
// path, bytes, mtime in ms since the epoch]; it then exits without waiting, and the daemon
// sends nothing back (no reply for `nr`, errors included). The build can go on at once:
// what the daemon stores is what the shim read before the build could change it.
export interface DoneFile {
  path: string;
  data: Buffer;
  mtimeMs: number;
}
// `nocache`: the shim could not capture all of stdout/stderr (past its cap) or deliver it: the
// result is not stored. `signal`: the compiler died of this signal (sent by the native shim,
// read by nobody yet). Both are read leniently: anything but `true` / an integer is absent.
export interface DoneRequest {
  t: 'done';
  id: string;
  code: number;
  out: Buffer;
  err: Buffer;
  files?: DoneFile[] /** not_captured */;
  nocache: boolean /** no_reply */;
  nr: boolean;
  signal?: number;
}
export interface OkReply {
  t: 'ok';
}

export function parseDone(m: Record<string, unknown>): DoneRequest {
  // out and err are kept in cache entries for a long time: copies, not views that would keep
  // the whole message (an object sent along is most of it) alive with them.
  const req: DoneRequest = {
    t: 'done',
    id: str(m, 'id'),
    code: int(m, 'code'),
    out: Buffer.from(bytes(m, 'out')),
    err: Buffer.from(bytes(m, 'err')),
    nocache: m.nocache === true,
    nr: m.nr === true,
    ...(Number.isSafeInteger(m.signal) ? { signal: m.signal as number } : {}),
  };
  if (m.files !== undefined && m.files !== null) req.files = doneFiles(m.files);
  return req;
}

function doneFiles(v: unknown): DoneFile[] {
  const bad = () => new VriftError('EBADMSG', "field 'files' must be an array of [path, bytes, mtime ms]", { fields: { field: 'files' } });
  if (!Array.isArray(v)) throw bad();
  return v.map((f: unknown) => {
    if (!Array.isArray(f) || f.length !== 3 || typeof f[0] !== 'string' || !(f[1] instanceof Uint8Array) || !Number.isSafeInteger(f[2])) throw bad();
    // A copy: a view would keep the whole message alive as long as the bytes are held.
    return { path: f[0] as string, data: Buffer.from(f[1] as Uint8Array), mtimeMs: f[2] as number };
  });
}
