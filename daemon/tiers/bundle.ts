import { Packr } from 'msgpackr';

// A remote action-cache value with attachments: an entry (a manifest) together with the
// small entries and blobs a reader asks for right after it (its newest result and that
// result's object). A fresh machine then gets a hit in one request instead of three in a
// row. Only vrift's own client writes or reads them; every attachment is also stored on
// its own, so a reader that gets a plain value (or an older server's) loses nothing.
//
// Wire form: MAGIC, then msgpack [value, [key, entry]…, [digest, blob]…]. A plain value
// is a msgpack map or array, never the byte 'V', so the two cannot be confused.

export const BUNDLE_MAGIC = Buffer.from('VRB1');

/** What an entry is uploaded with: keys of entries and digests of blobs in the local store. */
export interface Attach { entries?: string[]; blobs?: string[] }

export interface Bundle { value: Buffer; entries: [string, Buffer][]; blobs: [string, Buffer][] }

/** Blobs bigger than this travel on their own (and large ones are streamed anyway). */
export const BUNDLE_BLOB_MAX = 1 << 20;

const packr = new Packr({ useRecords: false, moreTypes: false });

export function isBundle(buf: Buffer): boolean {
  return buf.length > BUNDLE_MAGIC.length && buf.subarray(0, BUNDLE_MAGIC.length).equals(BUNDLE_MAGIC);
}

export function encodeBundle(b: Bundle): Buffer {
  return Buffer.concat([BUNDLE_MAGIC, packr.pack([b.value, b.entries, b.blobs])]);
}

const HEX64 = /^[0-9a-f]{64}$/;

/** Throws on anything malformed: the caller treats the whole value as a bad answer. */
export function decodeBundle(buf: Buffer): Bundle {
  const v = packr.unpack(buf.subarray(BUNDLE_MAGIC.length)) as unknown;
  const pairs = (l: unknown): l is [string, Buffer][] =>
    Array.isArray(l) && l.every((p) => Array.isArray(p) && p.length === 2 && typeof p[0] === 'string' && HEX64.test(p[0]) && p[1] instanceof Uint8Array);
  if (!Array.isArray(v) || v.length !== 3 || !(v[0] instanceof Uint8Array) || !pairs(v[1]) || !pairs(v[2])) {
    throw new Error('malformed bundle');
  }
  const buf_ = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength);
  return { value: buf_(v[0]), entries: v[1].map(([k, e]) => [k, buf_(e)]), blobs: v[2].map(([k, b]) => [k, buf_(b)]) };
}
