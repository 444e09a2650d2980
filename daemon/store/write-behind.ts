import { Readable } from 'node:stream';
import type { Attach, StoreLike } from './contract.js';
import { digestHex } from '../hash.js';
import { blobDigest } from './blob-digest.js';
import type { IdleWriter } from './idle-writer.js';
import type { SigningKey } from '../../trust/keys.js';
import { openEntry, signEntry } from '../../trust/entry-signature.js';

/**
 * A team server's uploader (tiers/tiered.ts): takes each put as it is made, while its local
 * write waits; `local` is where those writes then go (not back through the uploader).
 */
export interface UploadsNow {
  local: StoreLike;
  offerBlob(digest: string, size: number, data?: Buffer): void;
  offerEntry(key: string, value: Buffer, attach?: Attach): void;
}

// The store the front-ends see in the daemon: puts of small blobs and of entries go through
// an IdleWriter (written when lookups pause), reads look there first. Large objects are
// streamed from and to files as before: they never wait in memory. With `uploads`, each put
// also goes up at once from the bytes in hand: a teammate's build need not wait for this
// build's pause (the local writes are what costs the compilers CPU; an upload is mostly I/O).
// It is also where entries are signed (`signer`) and unwrapped: below it, in memory, on disk,
// on the remote and on peers, an entry carries its signature (trust/entry-signature.ts);
// the front-ends above see only their payloads.
export class WriteBehind implements StoreLike {
  readonly name = 'write-behind';
  private readonly local: StoreLike;

  constructor(
    private readonly inner: StoreLike,
    private readonly later: IdleWriter,
    private readonly uploads?: UploadsNow,
    private readonly signer?: SigningKey,
  ) {
    this.local = uploads?.local ?? inner;
  }

  getBlob(digest: string): Promise<Buffer | undefined> {
    const p = this.later.get('b' + digest);
    return p ? Promise.resolve(p) : this.inner.getBlob(digest);
  }

  async getEntry(key: string): Promise<Buffer | undefined> {
    const stored = this.later.get('e' + key) ?? (await this.inner.getEntry(key));
    // The local store is the user's own: its entries are not verified again (those from a
    // remote or a peer were, before they were kept), only unwrapped.
    return stored && openEntry(stored)?.payload;
  }

  async getSharedEntry(key: string): Promise<Buffer | undefined> {
    const got = await this.inner.getSharedEntry?.(key);
    return got && openEntry(got)?.payload;
  }

  async putBlob(data: Buffer, digest?: string): Promise<string> {
    const d = blobDigest(data, digest);
    if (!this.later.has('b' + d)) {
      this.later.add('b' + d, data, (b) => this.local.putBlob(b, d));
      this.uploads?.offerBlob(d, data.length, data);
    }
    return d;
  }

  /**
   * putBlob for `data`, the whole content of the open file `fd`: the descriptor waits instead
   * of the bytes (IdleWriter.addFile), checked against the digest when read. Takes `fd`.
   */
  async putBlobOf(data: Buffer, fd: number): Promise<string> {
    const d = blobDigest(data);
    const had = this.later.has('b' + d);
    this.later.addFile(
      'b' + d,
      fd,
      data,
      (b) => this.local.putBlob(b, d),
      (b) => digestHex(b) === d,
    );
    // Not holding the bytes: the upload reads them from the descriptor when its turn comes.
    if (!had) this.uploads?.offerBlob(d, data.length);
    return d;
  }

  async putEntry(key: string, payload: Buffer, attach?: Attach): Promise<void> {
    const value = this.signer ? signEntry(this.signer, key, payload) : payload;
    this.later.add('e' + key, value, (b) => (this.uploads ? this.local.putEntry(key, b) : this.inner.putEntry(key, b, attach)));
    this.uploads?.offerEntry(key, value, attach);
  }

  async hasBlob(digest: string): Promise<boolean> {
    return this.later.has('b' + digest) || this.inner.hasBlob(digest);
  }

  async getBlobStream(digest: string, size?: number): Promise<Readable | undefined> {
    const p = this.later.get('b' + digest);
    return p ? Readable.from([p]) : this.inner.getBlobStream(digest, size);
  }

  /** Large blobs never wait in memory: straight to the store behind. */
  putBlobStream(digest: string, size: number, open: () => Promise<Readable>): Promise<void> {
    return this.inner.putBlobStream(digest, size, open);
  }

  putBlobFile(file: string, o?: { onChunk?: (c: Buffer) => void }): Promise<{ digest: string; size: number }> {
    return this.inner.putBlobFile(file, o);
  }

  copyBlobTo(digest: string, dest: string, mode?: number, size?: number): Promise<number | undefined> {
    return this.inner.copyBlobTo(digest, dest, mode, size);
  }

  settle(): Promise<void> {
    return this.later.settle();
  }

  settleWithin(ms: number): Promise<boolean> {
    return this.later.settleWithin(ms);
  }

  /** A place in the write queue, and a wait for what was queued up to now (IdleWriter.written). */
  mark(): number {
    return this.later.mark();
  }

  written(from: number): Promise<boolean> {
    return this.later.written(from);
  }

  /** What still waits to be written. */
  waiting(): { bytes: number; spooled: number; items: number } {
    return this.later.waiting();
  }

  /** Writes what waits and removes the spool. */
  close(): Promise<void> {
    return this.later.close();
  }
}
