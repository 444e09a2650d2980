import fs from 'node:fs';
import bytes from 'bytes';
import { VriftError } from '../../ipc/errors.js';
import type { ChannelLogger } from '../log.js';
import { loadTokens } from './auth.js';
import type { Backend } from './backend.js';
import { FsBackend } from './fs-backend.js';
import { CacheServer } from './server.js';

export interface ServeArgs {
  port: number;
  store: string;
  host?: string;
  maxSize?: string;
  maxBlobSize?: string;
  tokens?: string;
  tlsCert?: string;
  tlsKey?: string;
  allowAnonymousRead?: boolean;
  accessLog?: (line: string) => void;
  env?: NodeJS.ProcessEnv;
  log: ChannelLogger;
}

function size(what: string, s: string | undefined, dflt: number): number {
  if (s === undefined) return dflt;
  const n = bytes.parse(s.replace(/([KMGTP])iB$/i, '$1B'));
  if (typeof n !== 'number' || !Number.isFinite(n) || n < 0) throw new VriftError('ECONFIG', `${what}: not a size: ${JSON.stringify(s)}`);
  return n;
}

/** Validates the command-line choices, opens the store and starts listening. */
export async function startServe(a: ServeArgs): Promise<CacheServer> {
  if (!Number.isInteger(a.port) || a.port < 0 || a.port > 65535) throw new VriftError('ECONFIG', `--port: not a port: ${a.port}`);
  const maxSize = size('--max-size', a.maxSize, 0);
  const maxBlobSize = Math.min(size('--max-blob-size', a.maxBlobSize, 2 ** 30), maxSize > 0 ? maxSize : Infinity);
  if ((a.tlsCert === undefined) !== (a.tlsKey === undefined)) throw new VriftError('ECONFIG', '--tls-cert and --tls-key go together');
  const tokens = a.tokens === undefined ? undefined : loadTokens(a.tokens);
  // Without tokens anyone who can connect may write: only this machine, unless asked.
  const host = a.host ?? (tokens ? '0.0.0.0' : '127.0.0.1');
  const backend: Backend = a.store.startsWith('s3://') ? await (await import('./s3-backend.js')).S3Backend.open(a.store, a.env) : await FsBackend.open(a.store, maxSize, a.log);
  try {
    return await CacheServer.start({
      backend, port: a.port, host, tokens, maxBlobSize, allowAnonymousRead: a.allowAnonymousRead, accessLog: a.accessLog, log: a.log,
      tls: a.tlsCert ? { cert: fs.readFileSync(a.tlsCert), key: fs.readFileSync(a.tlsKey!) } : undefined,
    });
  } catch (e) {
    await backend.close();
    throw e;
  }
}
