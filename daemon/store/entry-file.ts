import { KeyHasher } from '../hash.js';

// Action-cache file format, version 1 (little-endian):
//   0  magic "VRFA"
//   4  u8  format version (1)
//   5  u8  flags (0)
//   6  u16 reserved, 0
//   8  u64 payload length
//  16  16 bytes: BLAKE3(key, payload), truncated
//  32  payload
// The checksum covers the key as well, so an entry copied or renamed to another key's
// path reads as corrupt instead of answering the wrong action.
const MAGIC = Buffer.from('VRFA');
const VERSION = 1;
export const ENTRY_HEADER_SIZE = 32;
const SUM_SIZE = 16;

function checksum(key: string, payload: Buffer): Buffer {
  return Buffer.from(
    new KeyHasher('vrift-ac-v1')
      .str(key)
      .bytes(payload)
      .digest()
      .slice(0, SUM_SIZE * 2),
    'hex',
  );
}

export function encodeEntry(key: string, payload: Buffer): Buffer {
  const header = Buffer.alloc(ENTRY_HEADER_SIZE);
  MAGIC.copy(header, 0);
  header.writeUInt8(VERSION, 4);
  header.writeBigUInt64LE(BigInt(payload.length), 8);
  checksum(key, payload).copy(header, 16);
  return Buffer.concat([header, payload]);
}

export type DecodedEntry = { ok: true; data: Buffer } | { ok: false; reason: string };

export function decodeEntry(file: Buffer, key: string): DecodedEntry {
  if (file.length < ENTRY_HEADER_SIZE) return { ok: false, reason: `truncated header (${file.length} bytes)` };
  if (!file.subarray(0, 4).equals(MAGIC)) return { ok: false, reason: 'bad magic' };
  const version = file.readUInt8(4);
  if (version !== VERSION) return { ok: false, reason: `unknown format version ${version}` };
  if (file.readUInt8(5) !== 0 || file.readUInt16LE(6) !== 0) return { ok: false, reason: 'unknown flags' };
  const len = file.readBigUInt64LE(8);
  const payload = file.subarray(ENTRY_HEADER_SIZE);
  if (len !== BigInt(payload.length)) return { ok: false, reason: `size mismatch: header ${len}, body ${payload.length}` };
  if (!checksum(key, payload).equals(file.subarray(16, ENTRY_HEADER_SIZE))) return { ok: false, reason: 'checksum mismatch' };
  return { ok: true, data: payload };
}
