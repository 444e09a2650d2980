import { decodeManifest, decodeResult } from '../frontends/entries.js';
import { BUNDLE_BLOB_MAX, encodeBundle, type Bundle } from '../tiers/bundle.js';
import { openEntry } from '../../trust/entry-signature.js';

/** The request header a peer sends when it reads bundles (bundle.ts) for `GET /ac/`; any other client gets plain values. */
export const BUNDLE_HEADER = 'x-vrift-bundle';

export interface AttachReader {
  entry(hex: string): Promise<Buffer | undefined>;
  blob(hex: string): Promise<Buffer | undefined>;
}

/**
 * A manifest a peer asked for, with what its next two questions would be: the newest result it
 * points at and that result's small outputs (the uploader's attachments for the remote, made
 * here from the store, since a daemon may serve entries it wrote before its last start). A hit
 * on a fresh machine then takes one round trip to the peer instead of three in a row. The
 * reader checks everything as if asked for it alone: each entry's signature, each blob's
 * digest. Anything else (a result, a front-end whose entries are not these) goes as it is.
 */
export async function withAttachments(value: Buffer, read: AttachReader): Promise<Buffer> {
  // The attachments only save round trips: anything wrong in making them (an entry naming a
  // malformed digest, a read error) answers the plain value, never a failed GET.
  return bundled(value, read).catch(() => value);
}

async function bundled(value: Buffer, read: AttachReader): Promise<Buffer> {
  const manifest = decodeManifest(openEntry(value)?.payload);
  const newest = manifest && !manifest.pp ? manifest.entries[0]?.result : undefined;
  if (!newest) return value;
  const stored = await read.entry(newest);
  const result = stored && decodeResult(openEntry(stored)?.payload);
  if (!stored || !result) return value;
  const b: Bundle = { value, entries: [[newest, stored]], blobs: [] };
  for (const o of result.outputs) {
    if (o.size > BUNDLE_BLOB_MAX || b.blobs.some(([d]) => d === o.digest)) continue;
    const data = await read.blob(o.digest);
    if (data) b.blobs.push([o.digest, data]);
  }
  return encodeBundle(b);
}
