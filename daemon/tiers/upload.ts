import type { Attach } from '../store/contract.js';
import type { IdleWriter } from '../store/idle-writer.js';
import type { LocalStore } from '../store/local.js';
import { BUNDLE_BLOB_MAX, encodeBundle, type Bundle } from './bundle.js';

// One upload job of the TieredStore's queue (upload-queue.ts), and what goes up for an entry.
//
// `data` undefined: a large blob, streamed from the local store when its turn comes.
// A 'pack' upload carries the entries sealed into it (`members`), each still counted as queued.
// `started`: its data is being read for the upload; a newer value of the same entry then waits
// in `next` and goes up after it. `at`: when it was offered (a pack: its oldest member), by the
// queue's clock: one held too long for the remote is dropped.
export interface Upload {
  kind: 'blob' | 'entry' | 'pack';
  key: string;
  data?: Buffer;
  size: number;
  after: Promise<unknown>[];
  attach?: Attach;
  settle?: () => void;
  members?: Upload[];
  started?: boolean;
  next?: Upload;
  at: number;
}

/**
 * An entry with its attachments (bundle.ts), read when the upload's turn comes: from what waits
 * for its local write or from the local store; one gone meanwhile (evicted) is left out (see
 * valueOf for what goes up).
 */
export async function readBundle(value: Buffer, attach: Attach, later: IdleWriter, local: LocalStore): Promise<Bundle> {
  const b: Bundle = { value, entries: [], blobs: [] };
  for (const k of attach.entries ?? []) {
    const e = later.peek('e' + k) ?? (await local.getEntry(k));
    if (e) b.entries.push([k, e]);
  }
  for (const d of attach.blobs ?? []) {
    const data = later.peek('b' + d) ?? (await local.getBlob(d));
    if (data && data.length <= BUNDLE_BLOB_MAX) b.blobs.push([d, data]);
  }
  return b;
}

/** What goes up for an entry: its bundle, or the plain value when nothing is attached. */
export function valueOf(b: Bundle): Buffer {
  return b.entries.length + b.blobs.length > 0 || b.pack ? encodeBundle(b) : b.value;
}
