import { blake3, Blake3Hasher } from '@napi-rs/blake-hash';

// Content digests are BLAKE3-256, lowercase hex (64 chars) everywhere: store file names,
// keys, the wire.
export function digestHex(data: Uint8Array | string): string {
  return blake3(data).toString('hex');
}

export const DIGEST_RE = /^[0-9a-f]{64}$/;

// Incremental hasher for keys: each part is length-prefixed so ["ab","c"] != ["a","bc"].
export class KeyHasher {
  private h = new Blake3Hasher();
  constructor(domain: string) {
    this.str(domain);
  }
  str(s: string): this {
    const b = Buffer.from(s);
    return this.bytes(b);
  }
  bytes(b: Uint8Array): this {
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(b.length));
    this.h.update(len);
    this.h.update(b);
    return this;
  }
  digest(): string {
    return this.h.digestBuffer().toString('hex');
  }
}
