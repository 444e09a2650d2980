import type { ErrorCode } from '../errors.js';

// error: any request can be answered with this; a shim treats it as `pass` (fail open).
export interface ErrorReply {
  t: 'error';
  code: ErrorCode;
  message: string;
}
