import { Packr } from 'msgpackr';
import { VriftError } from '../../ipc/errors.js';

// A remote action-cache value with attachments: an entry (a manifest) together with the
// small entries and blobs a reader asks for right after it (its newest result and that
// result's object). A fresh machine then gets a hit in one request instead of three in a
// row. Only vrift's own client writes or reads them; every attachment is also stored on
// its own, so a reader that gets a plain value (or an older server's) loses nothing.
//
// Wire form: MAGIC, then msgpack [value, [key, entry]…, [digest, blob]…, pack?]. A plain
// value is a msgpack map or array, never the byte 'V', so the two cannot be confused.
//
// Packs: the uploader groups the bundles it uploads one after another (one build's
// compiles, in the order they finished) into one CAS blob; each member's own value then
// goes up thin, the value and the pack's name (`pack`) without attachments. A fresh
// machine's first hit in a group fetches the whole group with one request, and the
// compiles that follow find their entries in memory. A
// pack is verified by its digest like any blob; its members are opaque action-cache values
// (the same trust as a GET /ac/ of their key) and are used only when a lookup asks for one.
// Wire form: PACK_MAGIC, then msgpack [[key, bundle]…] (members carry no `pack` themselves).

export const BUNDLE_MAGIC = Buffer.from('VRB1');

export interface Bundle {
  value: Buffer;
  entries: [string, Buffer][];
  blobs: [string, Buffer][];
  pack?: string;
}

/** Blobs bigger than this travel on their own (and large ones are streamed anyway). */
export const BUNDLE_BLOB_MAX = 1 << 20;

const packr = new Packr({ useRecords: false, moreTypes: false });

export function isBundle(data: Buffer): boolean {
  return data.length > BUNDLE_MAGIC.length && data.subarray(0, BUNDLE_MAGIC.length).equals(BUNDLE_MAGIC);
}

export function encodeBundle(b: Bundle): Buffer {
  return Buffer.concat([BUNDLE_MAGIC, packr.pack(b.pack ? [b.value, b.entries, b.blobs, b.pack] : [b.value, b.entries, b.blobs])]);
}

const HEX64 = /^[0-9a-f]{64}$/;

// A remote's or peer's answer that is not what vrift writes: EBADMSG, whatever broke it.
const malformed = (what: string, cause?: unknown) => new VriftError('EBADMSG', `malformed ${what}`, { cause, fields: { what } });
function unpack(data: Buffer, what: string): unknown {
  try {
    return packr.unpack(data);
  } catch (cause) {
    throw malformed(what, cause);
  }
}

/** Throws EBADMSG on anything malformed: the caller treats the whole value as a bad answer. */
export function decodeBundle(data: Buffer): Bundle {
  const v = unpack(data.subarray(BUNDLE_MAGIC.length), 'bundle');
  if (
    !Array.isArray(v) ||
    (v.length !== 3 && v.length !== 4) ||
    !(v[0] instanceof Uint8Array) ||
    !pairs(v[1]) ||
    !pairs(v[2]) ||
    (v.length === 4 && !(typeof v[3] === 'string' && HEX64.test(v[3])))
  ) {
    throw malformed('bundle');
  }
  const b: Bundle = { value: buf(v[0]), entries: v[1].map(([k, e]) => [k, buf(e)]), blobs: v[2].map(([k, x]) => [k, buf(x)]) };
  if (v.length === 4) b.pack = v[3] as string;
  return b;
}

const buf = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength);
const pairs = (l: unknown): l is [string, Uint8Array][] =>
  Array.isArray(l) && l.every((p) => Array.isArray(p) && p.length === 2 && typeof p[0] === 'string' && HEX64.test(p[0]) && p[1] instanceof Uint8Array);

export const PACK_MAGIC = Buffer.from('VRP1');
/** A pack is sealed at this many members or bytes (whichever comes first). */
export const PACK_MEMBERS_MAX = 64;
export const PACK_BYTES_MAX = 8 << 20;

export function encodePack(members: [string, Buffer][]): Buffer {
  return Buffer.concat([PACK_MAGIC, packr.pack(members)]);
}

/** Throws EBADMSG on anything malformed. */
export function decodePack(data: Buffer): [string, Buffer][] {
  if (!(data.length > PACK_MAGIC.length && data.subarray(0, PACK_MAGIC.length).equals(PACK_MAGIC)))
    throw new VriftError('EBADMSG', 'not a pack', { fields: { what: 'pack' } });
  const v = unpack(data.subarray(PACK_MAGIC.length), 'pack');
  if (!pairs(v)) throw malformed('pack');
  return v.map(([k, b]) => [k, buf(b)]);
}
