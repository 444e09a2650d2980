import { Packr } from 'msgpackr';
import { VriftError } from './errors.js';

// Plain msgpack maps with str keys, bin for bytes: the native shim decodes these by
// hand, so no records, no extensions, no floats for integers.
const packr = new Packr({ useRecords: false, moreTypes: false, int64AsType: 'number', mapsAsObjects: true });

export function encode(msg: object): Buffer {
  return packr.pack(msg);
}

export function decode(buf: Buffer | Uint8Array): Record<string, unknown> {
  let value: unknown;
  try {
    value = packr.unpack(buf as Buffer);
  } catch (cause) {
    throw new VriftError('EBADMSG', 'message is not valid msgpack', { cause });
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new VriftError('EBADMSG', 'message is not a msgpack map');
  }
  return value as Record<string, unknown>;
}
