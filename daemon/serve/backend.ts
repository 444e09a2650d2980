import type { Readable } from 'node:stream';

// Where `vrift serve` keeps objects. Keys are `ac/<hex>`, `cas/<hex>` or `kv/<path>`, already
// validated by the router. Uploads arrive as a verified temp file that the backend takes over.
export interface Backend {
  readonly description: string;
  /** A directory for upload temp files, on the same file system as the store if it has one. */
  readonly tmpDir: string;
  stat(key: string): Promise<number | undefined>;
  /** Small objects may come back whole (`data`), large ones as a stream. */
  open(key: string): Promise<{ size: number; body: Readable; data?: undefined } | { size: number; data: Buffer; body?: undefined } | undefined>;
  /** Moves `tmpFile` (of `size` bytes) into place as `key`; the file is gone afterwards. */
  commit(key: string, tmpFile: string, size: number): Promise<void>;
  usage(): { items: number; bytes: number; maxSize: number; evictedItems: number; evictedBytes: number };
  close(): Promise<void>;
}
