// What the front-ends store through: the local store, the write-behind store in front of it
// and the tiered store (local + remote) all have this shape. It lives in store/, which imports
// neither the front-ends nor the tiers, so none of them import each other to name it.

/** What an entry is uploaded with: keys of entries and digests of blobs in the local store. */
export interface Attach { entries?: string[]; blobs?: string[] }

export interface StoreLike {
  getBlob(digest: string): Promise<Buffer | undefined>;
  putBlob(data: Buffer, digest?: string): Promise<string>;
  /** Large outputs: streamed from the file, `onChunk` sees every chunk as it is read. */
  putBlobFile(file: string, o?: { onChunk?: (c: Buffer) => void }): Promise<{ digest: string; size: number }>;
  /** Large outputs: streamed to `dest`; its size, or undefined on a miss. `size`: what the entry says (bounds a remote's body). */
  copyBlobTo(digest: string, dest: string, mode?: number, size?: number): Promise<number | undefined>;
  getEntry(key: string): Promise<Buffer | undefined>;
  /** `attach`: what a reader of this entry asks for next (a tiered store uploads them with it). */
  putEntry(key: string, value: Buffer, attach?: Attach): Promise<void>;
}
