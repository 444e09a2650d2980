import { VriftError } from '../../ipc/errors.js';
import type { ChannelLogger } from '../log.js';
import { HttpTier } from './http.js';
import { S3Tier } from './s3.js';
import type { RemoteOptions, RemoteTier } from './types.js';

/** The tier for a `remote_url`: http(s)://host[:port][/prefix] or s3://bucket[/prefix]. */
export function openRemote(url: string, opts: RemoteOptions & { log: ChannelLogger; env?: NodeJS.ProcessEnv }): RemoteTier {
  if (/^https?:\/\//i.test(url)) return new HttpTier(url, opts);
  if (/^s3:\/\//i.test(url)) return new S3Tier(url, opts);
  throw new VriftError('ECONFIG', `remote_url: expected http(s)://… or s3://…, got ${JSON.stringify(url)}`, { fields: { url } });
}
