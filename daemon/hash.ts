import { blake3 } from '@napi-rs/blake-hash';

// Content digests are BLAKE3-256, lowercase hex (64 chars) everywhere: store file names,
// keys, the wire.
export function digestHex(data: Uint8Array | string): string {
  return blake3(data).toString('hex');
}

export const DIGEST_RE = /^[0-9a-f]{64}$/;

// Hasher for keys: each part is length-prefixed so ["ab","c"] != ["a","bc"]. Parts are
// joined into one string and hashed once: a key has hundreds of small parts, and one
// native call is much cheaper than one per part.
export class KeyHasher {
  private parts: string[] = [];
  constructor(domain: string) {
    this.str(domain);
  }
  str(s: string): this {
    this.parts.push(`${s.length}:${s}`);
    return this;
  }
  bytes(b: Uint8Array): this {
    this.parts.push(`b${b.length}:${Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1')}`);
    return this;
  }
  digest(): string {
    return blake3(Buffer.from(this.parts.join(''), 'utf8')).toString('hex');
  }
}
