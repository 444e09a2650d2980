import { isAscii } from 'node:buffer';
import { Blake3Hasher } from '@napi-rs/blake-hash';

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
const DOMAIN = 'vrift-ac-v1';

// BLAKE3 of what KeyHasher('vrift-ac-v1').str(key).bytes(payload) hashes (the format's
// definition; test/entry-file.test.ts holds them equal), without joining the payload into
// one string with the rest: the payload goes to the hasher on its own, as UTF-8 of its
// bytes read as Latin-1 (KeyHasher's encoding), which is the bytes themselves when all are ASCII.
function checksum(key: string, payload: Buffer): Buffer {
  const h = new Blake3Hasher();
  h.update(Buffer.from(`${DOMAIN.length}:${DOMAIN}${key.length}:${key}b${payload.length}:`, 'utf8'));
  h.update(isAscii(payload) ? payload : Buffer.from(payload.toString('latin1'), 'utf8'));
  return h.digestBuffer().subarray(0, SUM_SIZE);
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
