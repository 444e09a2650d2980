import { constants as bufferConstants } from 'node:buffer';
import { compress } from 'zstd-napi';
import zstd from 'zstd-napi/binding.js';
import { digestHex } from '../hash.js';

// CAS file format, version 1 (all integers little-endian):
//   0  magic "VRFB"
//   4  u8  format version (1)
//   5  u8  flags (bit 0: body is one zstd frame)
//   6  u16 reserved, 0
//   8  u64 uncompressed size
//  16  body
// The size sits outside the compressed body so a read can bound its allocation and
// reject a wrong length before spending time on the hash.
const MAGIC = Buffer.from('VRFB');
const VERSION = 1;
export const BLOB_HEADER_SIZE = 16;
const FLAG_ZSTD = 1;

// Below this, frame overhead eats any gain.
const MIN_COMPRESS = 64;

export function encodeBlob(data: Buffer, level: number): Buffer {
  let body: Buffer = data;
  let flags = 0;
  if (data.length >= MIN_COMPRESS) {
    const z = compress(data, { compressionLevel: level });
    // Decompressing costs time on every hit; only pay it when it saves at least 10%.
    if (z.length <= data.length * 0.9) {
      body = z;
      flags = FLAG_ZSTD;
    }
  }
  return Buffer.concat([blobHeader(data.length, flags === FLAG_ZSTD), body]);
}

export function blobHeader(size: number, zstd: boolean): Buffer {
  const header = Buffer.alloc(BLOB_HEADER_SIZE);
  MAGIC.copy(header, 0);
  header.writeUInt8(VERSION, 4);
  header.writeUInt8(zstd ? FLAG_ZSTD : 0, 5);
  header.writeBigUInt64LE(BigInt(size), 8);
  return header;
}

export type Header = { ok: true; size: number; zstd: boolean } | { ok: false; reason: string };

export function parseBlobHeader(file: Buffer): Header {
  if (file.length < BLOB_HEADER_SIZE) return { ok: false, reason: `truncated header (${file.length} bytes)` };
  if (!file.subarray(0, 4).equals(MAGIC)) return { ok: false, reason: 'bad magic' };
  const version = file.readUInt8(4);
  if (version !== VERSION) return { ok: false, reason: `unknown format version ${version}` };
  const flags = file.readUInt8(5);
  if ((flags & ~FLAG_ZSTD) !== 0 || file.readUInt16LE(6) !== 0) return { ok: false, reason: `unknown flags ${flags}` };
  const size = file.readBigUInt64LE(8);
  if (size > BigInt(bufferConstants.MAX_LENGTH)) return { ok: false, reason: `implausible size ${size}` };
  return { ok: true, size: Number(size), zstd: (flags & FLAG_ZSTD) !== 0 };
}

export type Decoded = { ok: true; data: Buffer } | { ok: false; reason: string };

/** Checks header, decompresses, then size, then BLAKE3 against the file's name. */
export function decodeBlob(file: Buffer, digest: string): Decoded {
  const h = parseBlobHeader(file);
  if (!h.ok) return h;
  const n = h.size;
  const body = file.subarray(BLOB_HEADER_SIZE);

  let data: Buffer;
  if (!h.zstd) {
    data = body;
  } else {
    let frameSize: number | null;
    try {
      frameSize = zstd.getFrameContentSize(body);
    } catch (e) {
      return { ok: false, reason: `bad zstd frame: ${(e as Error).message}` };
    }
    // A flipped bit in either size field must not turn into a huge allocation. Streamed
    // writes whose size was not known up front leave it out of the frame (null).
    if (frameSize !== n && (frameSize !== null || n > Math.max(2 ** 30, body.length * 1024)))
      return { ok: false, reason: `size mismatch: header ${n}, zstd frame ${frameSize}` };
    data = Buffer.allocUnsafe(n);
    try {
      const got = zstd.decompress(data, body);
      if (got !== n) return { ok: false, reason: `size mismatch: header ${n}, decompressed ${got}` };
    } catch (e) {
      return { ok: false, reason: `zstd: ${(e as Error).message}` };
    }
  }
  if (data.length !== n) return { ok: false, reason: `size mismatch: header ${n}, body ${data.length}` };
  const actual = digestHex(data);
  if (actual !== digest) return { ok: false, reason: `hash mismatch: got ${actual}` };
  return { ok: true, data };
}
