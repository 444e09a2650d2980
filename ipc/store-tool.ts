import { VriftError } from './errors.js';

// Between `vrift clean`/`vrift verify` and the program they run for the store work,
// `vriftd store '<request as JSON>'` (daemon/store-tool.ts), over the node IPC channel of
// that child process. The CLI says everything the user reads; the child only works on the
// store at `root` (the running daemon's, or the configured one) and reports.

export interface StoreToolRequest {
  op: 'clean' | 'verify';
  root: string;
  maxSize?: number; // bytes (clean)
  olderThan?: number; // ms (clean)
  all?: boolean; // clean: everything
  runDir?: string; // the instance's: blobs its overlays' lazy files name are kept
}

/** The store's own verify result, passed on whole (`vrift verify --json` prints it). */
export interface VerifyOutcome {
  checked: number;
  corrupt: number;
  removed: number;
  bytes: number;
  [k: string]: number;
}

/** What failed, with the fields the CLI's wording reads (ipc/user-errors.ts). */
export interface ToolError {
  message: string;
  code?: string;
  syscall?: string;
  path?: string;
}

export type StoreToolMessage =
  | { t: 'progress'; done: number; total: number }
  | { t: 'cleaned'; removedFiles: number; removedBytes: number; usageBytes: number }
  | { t: 'verified'; result: VerifyOutcome }
  | { t: 'failed'; error: ToolError };

export function parseStoreToolRequest(json: string | undefined): StoreToolRequest {
  let m: Record<string, unknown>;
  try {
    m = JSON.parse(json ?? '') as Record<string, unknown>;
  } catch {
    throw new VriftError('EBADMSG', 'vriftd store: the request is not JSON (it is run by vrift clean and vrift verify)');
  }
  const num = (k: string) => {
    const v = m[k];
    if (v !== undefined && !(typeof v === 'number' && Number.isSafeInteger(v) && v >= 0))
      throw new VriftError('EBADMSG', `vriftd store: ${k} must be a non-negative integer`, { fields: { field: k } });
    return v as number | undefined;
  };
  if (m.op !== 'clean' && m.op !== 'verify') throw new VriftError('EBADMSG', `vriftd store: unknown op ${JSON.stringify(m.op)}`, { fields: { field: 'op' } });
  if (typeof m.root !== 'string' || m.root === '') throw new VriftError('EBADMSG', 'vriftd store: root must be a path', { fields: { field: 'root' } });
  const runDir = typeof m.runDir === 'string' && m.runDir !== '' ? m.runDir : undefined;
  return { op: m.op, root: m.root, maxSize: num('maxSize'), olderThan: num('olderThan'), all: m.all === true, ...(runDir ? { runDir } : {}) };
}

/** The fields of a thrown error that cross to the CLI. */
export function toolError(e: unknown): ToolError {
  const err = e as NodeJS.ErrnoException;
  if (!(err instanceof Error)) return { message: String(e) };
  return {
    message: err.message,
    ...(typeof err.code === 'string' ? { code: err.code } : {}),
    ...(err.syscall ? { syscall: err.syscall } : {}),
    ...(err.path ? { path: err.path } : {}),
  };
}

/** The error again, as `userMessage` reads it. */
export function fromToolError(t: ToolError): Error {
  return Object.assign(new Error(t.message), t.code ? { code: t.code } : {}, t.syscall ? { syscall: t.syscall } : {}, t.path ? { path: t.path } : {});
}
