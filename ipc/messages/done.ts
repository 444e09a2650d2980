import { bytes, int, str } from './fields.js';

// done: the shim ran the compiler after a `run` reply. The daemon reads the outputs before
// it answers `ok`, so the build can't change them under it; storing happens afterwards.
export interface DoneRequest { t: 'done'; id: string; code: number; out: Buffer; err: Buffer }
export interface OkReply { t: 'ok' }

export function parseDone(m: Record<string, unknown>): DoneRequest {
  return { t: 'done', id: str(m, 'id'), code: int(m, 'code'), out: bytes(m, 'out'), err: bytes(m, 'err') };
}
