// Stable error codes: never reassigned, they cross the wire unchanged and users search them.
export type ErrorCode =
  | 'EBADMSG'      // malformed or truncated message
  | 'EVERSION'     // protocol or build mismatch between client and daemon
  | 'EUNKNOWN'     // unknown message type
  | 'EINTEGRITY'   // stored content does not match its digest
  | 'ENOTFOUND'    // no such entry / pending compile
  | 'ETIMEOUT'     // a deadline passed
  | 'EINTERNAL'    // a bug: the daemon keeps serving
  | 'ECONFIG'      // invalid configuration value
  | 'ESTORE'       // store I/O failed (full disk, permissions)
  | 'ESTART'       // the daemon could not start (its reason in the message)
  | 'ECOMPILER';   // the compiler could not be asked what the key needs (its include paths)

export class VriftError extends Error {
  readonly code: ErrorCode;
  readonly fields: Record<string, unknown>;
  constructor(code: ErrorCode, message: string, opts: { cause?: unknown; fields?: Record<string, unknown> } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.code = code;
    this.fields = opts.fields ?? {};
    this.name = 'VriftError';
  }
}

export function isVriftError(e: unknown, code?: ErrorCode): e is VriftError {
  return e instanceof VriftError && (code === undefined || e.code === code);
}
