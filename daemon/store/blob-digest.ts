import { VriftError } from '../../ipc/errors.js';
import { digestHex } from '../hash.js';
import { checkHex } from './layout.js';

/** The digest a blob goes under: its own. A caller's claim that disagrees is refused before any upload. */
export function blobDigest(data: Buffer, claimed?: string): string {
  const actual = digestHex(data);
  if (claimed !== undefined && checkHex('digest', claimed) !== actual) {
    throw new VriftError('EINTEGRITY', 'blob content does not match its digest', { fields: { expected: claimed, actual } });
  }
  return actual;
}
