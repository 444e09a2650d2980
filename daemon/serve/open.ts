import fs from 'node:fs';
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
  maxSize?: number; // bytes, 0 = no limit
  maxBlobSize?: number; // bytes
  tokens?: string;
  tlsCert?: string;
  tlsKey?: string;
  allowAnonymousRead?: boolean;
  accessLog?: (line: string) => void;
  env?: NodeJS.ProcessEnv;
  log: ChannelLogger;
}

/** Validates the command-line choices, opens the store and starts listening. */
export async function startServe(a: ServeArgs): Promise<CacheServer> {
  if (!Number.isInteger(a.port) || a.port < 0 || a.port > 65535) throw new VriftError('ECONFIG', `--port: not a port: ${a.port}`);
  const maxSize = a.maxSize ?? 0;
  if (!Number.isSafeInteger(maxSize) || maxSize < 0) throw new VriftError('ECONFIG', `--max-size: not a size: ${maxSize}`);
  if (a.maxBlobSize !== undefined && (!Number.isSafeInteger(a.maxBlobSize) || a.maxBlobSize < 1))
    throw new VriftError('ECONFIG', `--max-blob-size: must be at least 1 byte: ${a.maxBlobSize}`);
  const maxBlobSize = Math.min(a.maxBlobSize ?? 2 ** 30, maxSize > 0 ? maxSize : Infinity);
  // `s3:/bucket`, `http://…`: a typo of a bucket, not a directory to create.
  if (/^[a-z][a-z0-9+.-]*:/i.test(a.store) && !a.store.startsWith('s3://')) {
    throw new VriftError(
      'ECONFIG',
      `--store: ${JSON.stringify(a.store)} is neither a directory nor an s3://bucket/prefix URL (a directory of that name: ./${a.store})`,
    );
  }
  if ((a.tlsCert === undefined) !== (a.tlsKey === undefined)) throw new VriftError('ECONFIG', '--tls-cert and --tls-key go together');
  const tokens = a.tokens === undefined ? undefined : loadTokens(a.tokens);
  // Without tokens anyone who can connect may write: only this machine, unless asked.
  const host = a.host ?? (tokens ? '0.0.0.0' : '127.0.0.1');
  const backend: Backend = a.store.startsWith('s3://')
    ? await (await import('./s3-backend.js')).S3Backend.open(a.store, a.env)
    : await FsBackend.open(a.store, maxSize, a.log);
  try {
    return await CacheServer.start({
      backend,
      port: a.port,
      host,
      tokens,
      maxBlobSize,
      allowAnonymousRead: a.allowAnonymousRead,
      accessLog: a.accessLog,
      log: a.log,
      tls: a.tlsCert ? { cert: fs.readFileSync(a.tlsCert), key: fs.readFileSync(a.tlsKey!) } : undefined,
      // On SIGTERM, uploads under way get as long as a daemon's queued uploads do (10 s).
      drainMs: 10_000,
    });
  } catch (e) {
    await backend.close();
    throw e;
  }
}
