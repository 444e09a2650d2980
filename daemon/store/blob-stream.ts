import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, Transform, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Blake3Hasher } from '@napi-rs/blake-hash';
import { CompressStream, DecompressStream } from 'zstd-napi';
import { VriftError } from '../../ipc/errors.js';
import { BLOB_HEADER_SIZE, blobHeader, parseBlobHeader } from './blob-file.js';
import { TMP_DIR } from './layout.js';

// Large blobs never sit in memory whole: they go file → store, store → file and store ↔
// network one chunk at a time, hashed as they pass. The file format is the one small blobs
// use (blob-file.ts); the zstd frame may just not record its content size.

/** Objects from this size on are streamed instead of read whole. */
export const STREAM_MIN = 8 * 2 ** 20;
const CHUNK = 1 << 20;

/** Counts and hashes what flows through; `check()` at the end compares with what was expected. */
export class HashTap extends Transform {
  size = 0;
  private readonly h = new Blake3Hasher();
  private result: string | undefined;
  constructor(
    private readonly limit = Infinity,
    private readonly onChunk?: (c: Buffer) => void,
    private readonly onOver?: (e: VriftError) => void,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.size += chunk.length;
    if (this.size > this.limit) {
      const e = new VriftError('ESTORE', `stream is over the limit of ${this.limit} bytes`);
      this.onOver?.(e);
      return cb(e);
    }
    this.h.update(chunk);
    this.onChunk?.(chunk);
    cb(null, chunk);
  }
  digest(): string {
    return (this.result ??= this.h.digestBuffer().toString('hex'));
  }
}

/** A tap that fails the stream at its end unless the bytes hash to `digest` (and number `size`). */
export function verifyingTap(digest: string, size: number | undefined, onBad?: (e: VriftError) => void, limit = Infinity): HashTap {
  const tap = new HashTap(size ?? limit, undefined, onBad);
  tap._flush = (cb: TransformCallback) => {
    let err: VriftError | undefined;
    if (size !== undefined && tap.size !== size)
      err = new VriftError('EINTEGRITY', `blob size mismatch: expected ${size}, got ${tap.size}`, { fields: { digest } });
    else if (tap.digest() !== digest)
      err = new VriftError('EINTEGRITY', 'blob content does not match its digest', { fields: { digest, actual: tap.digest() } });
    if (err) onBad?.(err);
    cb(err);
  };
  return tap;
}

export interface StreamedBlob {
  digest: string;
  size: number;
  fileBytes: number;
  tmp: string;
}

/**
 * Writes `src` into a new temp file under `root/tmp` in blob format (zstd, level `level`),
 * hashing it on the way. The caller renames `tmp` into place (or removes it). `expected`
 * is checked before returning: a mismatch removes the file and throws EINTEGRITY.
 */
export async function writeBlobTemp(
  root: string,
  src: Readable,
  o: { level: number; sizeHint?: number; expected?: string; limit?: number; onChunk?: (c: Buffer) => void },
): Promise<StreamedBlob> {
  const tmpDir = path.join(root, TMP_DIR);
  const tmp = path.join(tmpDir, `${process.pid}-s-${randomBytes(8).toString('hex')}`);
  await fsp.mkdir(tmpDir, { recursive: true });
  let ok = false;
  try {
    const tap = new HashTap(o.limit, o.onChunk);
    const z = new CompressStream({ compressionLevel: o.level });
    // With the size known up front the frame records it, and readers can check it early.
    if (o.sizeHint !== undefined) (z as unknown as { cctx: { setPledgedSrcSize(n: number): void } }).cctx.setPledgedSrcSize(o.sizeHint);
    const out = fs.createWriteStream(tmp, { flags: 'wx', mode: 0o644, highWaterMark: CHUNK });
    out.write(Buffer.alloc(BLOB_HEADER_SIZE)); // the real header once the size is known
    await pipeline(src, tap, z, out);
    const digest = tap.digest();
    if (o.expected !== undefined && digest !== o.expected) {
      throw new VriftError('EINTEGRITY', 'blob content does not match its digest', { fields: { expected: o.expected, actual: digest } });
    }
    const fh = await fsp.open(tmp, 'r+');
    try {
      await fh.write(blobHeader(tap.size, true), 0, BLOB_HEADER_SIZE, 0);
      const st = await fh.stat();
      ok = true;
      return { digest, size: tap.size, fileBytes: st.size, tmp };
    } finally {
      await fh.close();
    }
  } finally {
    if (!ok) await fsp.rm(tmp, { force: true }).catch(() => {});
  }
}

/**
 * The content of a blob file as a stream that errors (EINTEGRITY) at its end unless it
 * hashes to `digest`; undefined when there is no such file. `corrupt` is told why.
 */
export async function readBlobStream(file: string, digest: string): Promise<{ size: number; stream: Readable } | undefined> {
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  try {
    const head = Buffer.alloc(BLOB_HEADER_SIZE);
    const { bytesRead } = await fh.read(head, 0, BLOB_HEADER_SIZE, 0);
    const h = parseBlobHeader(head.subarray(0, bytesRead));
    if (!h.ok) throw new VriftError('EINTEGRITY', `corrupt store file: ${h.reason}`, { fields: { digest } });
    const raw = fh.createReadStream({ start: BLOB_HEADER_SIZE, highWaterMark: CHUNK, autoClose: true });
    const stages: (Readable | Transform)[] = [raw];
    if (h.zstd) stages.push(new DecompressStream());
    stages.push(verifyingTap(digest, h.size));
    const out = new PassThrough({ highWaterMark: CHUNK });
    void pipeline(stages.concat(out) as unknown as [Readable, ...Transform[]]).catch((e) => out.destroy(e));
    return { size: h.size, stream: out };
  } catch (e) {
    await fh.close().catch(() => {});
    throw e;
  }
}

/** Streams a blob file's verified content into `dest` (temp file + rename); throws on a bad blob, leaving `dest` alone. */
export async function blobToFile(file: string, digest: string, dest: string, mode: number): Promise<number | undefined> {
  const r = await readBlobStream(file, digest);
  if (!r) return undefined;
  const tmp = path.join(path.dirname(dest), `.${path.basename(dest)}.vrift-${randomBytes(4).toString('hex')}`);
  try {
    await pipeline(r.stream, fs.createWriteStream(tmp, { flags: 'wx', mode }));
    await fsp.chmod(tmp, mode);
    await fsp.rename(tmp, dest);
  } catch (e) {
    r.stream.destroy();
    await fsp.rm(tmp, { force: true }).catch(() => {});
    throw e;
  }
  return r.size;
}

/** Reads a file in chunks and reports whether `needle` occurs in it (chunk seams included). */
export function chunkSearcher(needle: string): { feed(c: Buffer): void; found(): boolean } {
  const n = Buffer.from(needle);
  let tail = Buffer.alloc(0);
  let hit = n.length === 0;
  return {
    feed(c: Buffer) {
      if (hit) return;
      const k = n.length - 1;
      if (tail.length && Buffer.concat([tail, c.subarray(0, k)]).indexOf(n) !== -1) hit = true;
      else if (c.indexOf(n) !== -1) hit = true;
      // The last k bytes seen, for a match across the next seam.
      tail = k === 0 ? Buffer.alloc(0) : c.length >= k ? Buffer.from(c.subarray(c.length - k)) : Buffer.concat([tail, c]).subarray(-k);
    },
    found: () => hit,
  };
}
