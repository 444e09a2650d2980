import { VriftError } from '../../ipc/errors.js';
import type { ChannelLogger } from '../log.js';
import { HttpTier } from './http.js';
import type { RemoteOptions, RemoteTier } from './types.js';

/** The tier for a `remote_url`: http(s)://host[:port][/prefix] or s3://bucket[/prefix]. */
export async function openRemote(url: string, opts: RemoteOptions & { log: ChannelLogger; env?: NodeJS.ProcessEnv }): Promise<RemoteTier> {
  if (/^https?:\/\//i.test(url)) return new HttpTier(url, opts);
  // The AWS SDK takes a while to load: only daemons that use S3 pay for it.
  if (/^s3:\/\//i.test(url)) return new (await import('./s3.js')).S3Tier(url, opts);
  throw new VriftError('ECONFIG', `remote_url: expected http(s)://… or s3://…, got ${JSON.stringify(url)}`, { fields: { url } });
}
