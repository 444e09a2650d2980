import type { Readable } from 'node:stream';
import { verifyingTap } from '../store/blob-stream.js';
import type { CoolDown } from './cooldown.js';

// What `vrift stats` shows under "remote". One object per remote tier; the tier and the
// TieredStore in front of it both count into it.
export interface RemoteCounters {
  hits: number; // GETs answered with verified content
  misses: number; // 404 (or an empty answer where content was expected)
  errors: number; // bad status, transport errors, wrong or garbled content
  timeouts: number; // connect or operation deadline passed
  skipped: number; // lookups and uploads not tried during a cool-down
  integrity: number; // content that did not match its digest (also counted in errors)
  uploads: number; // PUTs that succeeded
  upload_skipped: number; // HEAD said the blob was already there
  upload_dropped: number; // the upload queue was full (the oldest waiting made room), or held too long for a remote that was off
  bytes_up: number;
  bytes_down: number;
}

export function emptyRemoteCounters(): RemoteCounters {
  return { hits: 0, misses: 0, errors: 0, timeouts: 0, skipped: 0, integrity: 0, uploads: 0, upload_skipped: 0, upload_dropped: 0, bytes_up: 0, bytes_down: 0 };
}

/** Whether a tier should leave the remote alone now (closed, or cooling down after a failure); counts the skip. */
export function skipRemote(closed: boolean, cool: CoolDown, c: RemoteCounters): boolean {
  if (closed || cool.active) {
    c.skipped++;
    return true;
  }
  return false;
}

/**
 * A remote body for a blob, checked as it streams: the result fails at its end unless the
 * bytes hash to `digest`, and as soon as they pass `size` (what the entry said, when known:
 * a lying server's endless or decompression-bomb body stops there, not at the disk's end) or
 * else `limit`; `bad` is told, `good` gets the byte count.
 */
export function verifiedRemoteStream(
  src: Readable,
  digest: string,
  bounds: { size?: number; limit: number },
  good: (bytes: number) => void,
  bad: (e: Error) => void,
): Readable {
  let failed = false;
  const onErr = (e: Error) => {
    if (failed) return;
    failed = true;
    bad(e);
  };
  const tap = verifyingTap(digest, bounds.size, onErr, bounds.limit);
  tap.on('end', () => void (failed || good(tap.size)));
  src.on('error', (e) => {
    onErr(e);
    tap.destroy(e);
  });
  // The reader gave up (its own error): stop the download too.
  tap.on('close', () => void (src.readableEnded || src.destroyed || src.destroy()));
  src.pipe(tap);
  return tap;
}
