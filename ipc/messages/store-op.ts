import { VriftError } from '../errors.js';
import { optStr, str } from './fields.js';

// store-op: the CLI asks the running daemon to clean or verify its store, so the
// daemon's size accounting stays right; `settle` writes what waits to be written (and what
// finished compiles still report) before the CLI works on the store. Args are the CLI's own
// option strings.
export interface StoreOpRequest {
  t: 'store-op';
  op: 'clean' | 'verify' | 'rescan' | 'settle';
  maxSize?: string;
  olderThan?: string;
}
export interface StoreOpReply {
  t: 'store-op';
  result: Record<string, unknown>;
}

export function parseStoreOp(m: Record<string, unknown>): StoreOpRequest {
  const op = str(m, 'op');
  if (op !== 'clean' && op !== 'verify' && op !== 'rescan' && op !== 'settle')
    throw new VriftError('EBADMSG', `unknown store op ${JSON.stringify(op)}`, { fields: { field: 'op' } });
  return { t: 'store-op', op, maxSize: optStr(m, 'maxSize'), olderThan: optStr(m, 'olderThan') };
}
