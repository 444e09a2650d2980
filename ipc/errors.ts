// Stable error codes: never reassigned, they cross the wire unchanged and users search them
// (`vrift stats` counts daemon errors by code; --explain prints these lines).
export const ERROR_CODES = {
  EBADMSG: 'a malformed or truncated message, or a field of the wrong type',
  EVERSION: 'protocol or build mismatch between client and daemon',
  EUNKNOWN: 'unknown message type',
  EINTEGRITY: 'stored content does not match its digest',
  ENOTFOUND: 'no such entry, or no such pending compile',
  ETIMEOUT: 'a deadline passed',
  EINTERNAL: 'a bug: the daemon keeps serving',
  ECONFIG: 'invalid configuration value',
  ESTORE: 'store I/O failed (full disk, permissions)',
  ESTART: 'the daemon could not start (its reason in the message)',
  ECOMPILER: 'the compiler could not be asked what the key needs (its include paths)',
  EFUSE: 'FUSE cannot be used here (no /dev/fuse, no permission, no libfuse): outputs are written as before',
  ELAZY: "the overlay could not take a hit's output as lazy (busy, no such directory, a directory there): it is written instead",
} as const satisfies Record<string, string>;
export type ErrorCode = keyof typeof ERROR_CODES;

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
