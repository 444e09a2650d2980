import crypto from 'node:crypto';
import fsp from 'node:fs/promises';
import type http from 'node:http';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Blake3Hasher } from '@napi-rs/blake-hash';
import { DecompressStream } from 'zstd-napi';
import type { Sha256Worker } from './sha-off-thread.js';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface Received {
  file: string;
  size: number;
  wireBytes: number;
  blake3?: string;
  sha256?: string;
}

/** Which digests to compute while receiving: a CAS key is one of them; /ac/ values need none. */
export type DigestWant = { blake3: boolean; sha256: boolean };

/**
 * What a client says its CAS keys are (`X-Digest-Function: blake3|sha256`, as vrift's client
 * sends); without the header both are computed and either may match (Bazel, ccache).
 */
export function digestWant(req: http.IncomingMessage): DigestWant {
  const f = req.headers['x-digest-function'];
  if (f === undefined) return { blake3: true, sha256: true };
  const v = String(f).toLowerCase();
  if (v === 'blake3') return { blake3: true, sha256: false };
  if (v === 'sha256' || v === 'sha-256') return { blake3: false, sha256: true };
  throw new HttpError(400, `unsupported X-Digest-Function ${JSON.stringify(String(f))} (blake3 or sha256)`);
}

// Streams a PUT body into a temp file while hashing it both ways (vrift keys by BLAKE3,
// Bazel by SHA-256, on the server's worker thread), so no blob is ever held in memory whole. The caller renames or removes
// the file; on any error it is already gone.
export async function receiveBody(req: http.IncomingMessage, tmpDir: string, maxBytes: number, want: DigestWant, shaWorker: Sha256Worker): Promise<Received> {
  const enc = String(req.headers['content-encoding'] ?? 'identity').toLowerCase();
  if (enc !== 'identity' && enc !== 'zstd') throw new HttpError(400, `unsupported content-encoding ${enc}`);
  const declared = req.headers['content-length'] === undefined ? undefined : Number(req.headers['content-length']);
  const sizeHeader = req.headers['x-digest-sizebytes'] === undefined ? undefined : Number(req.headers['x-digest-sizebytes']);
  if (enc === 'identity' && declared !== undefined && declared > maxBytes)
    throw new HttpError(413, `body of ${declared} bytes is over the limit of ${maxBytes}`);
  if (sizeHeader !== undefined && sizeHeader > maxBytes) throw new HttpError(413, `body of ${sizeHeader} bytes is over the limit of ${maxBytes}`);

  const file = path.join(tmpDir, `put-${crypto.randomBytes(12).toString('hex')}`);
  const b3 = want.blake3 ? new Blake3Hasher() : undefined;
  const sha = want.sha256 ? shaWorker.upload() : undefined;
  // The file is created before the body flows: a write stream that opens it lazily could
  // create it after an early error (413 on the first chunk) had removed it. And before the
  // 'data' listener below, which starts the flow: bytes read during the open would be lost.
  const fh = await fsp.open(file, 'wx');
  const out = fh.createWriteStream({ highWaterMark: 1 << 20 });
  let size = 0;
  let wireBytes = 0;
  req.on('data', (d: Buffer) => void (wireBytes += d.length));
  const tap = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      size += chunk.length;
      if (size > maxBytes) return cb(new HttpError(413, `body is over the limit of ${maxBytes} bytes`));
      b3?.update(chunk);
      const behind = sha?.update(chunk);
      if (behind) void behind.then(() => cb(null, chunk));
      else cb(null, chunk);
    },
  });
  try {
    if (enc === 'zstd') await pipeline(req, new DecompressStream(), tap, out);
    else await pipeline(req, tap, out);
    if (sizeHeader !== undefined && sizeHeader !== size) throw new HttpError(400, `X-Digest-SizeBytes says ${sizeHeader}, body has ${size} bytes`);
  } catch (e) {
    if (!out.closed) await new Promise<void>((r) => out.once('close', () => r()));
    await fsp.rm(file, { force: true });
    sha?.drop();
    if (e instanceof HttpError) throw e;
    throw new HttpError(400, `upload failed: ${(e as Error).message}`);
  }
  let sha256: string | undefined;
  try {
    sha256 = await sha?.digest();
  } catch (e) {
    await fsp.rm(file, { force: true });
    throw e; // a 500: the server could not check the upload
  }
  return { file, size, wireBytes, blake3: b3?.digestBuffer().toString('hex'), sha256 };
}
