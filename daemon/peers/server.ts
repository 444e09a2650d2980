import type { ChannelLogger } from '../log.js';
import { CacheServer } from '../serve/server.js';
import { StoreBackend } from '../serve/store-backend.js';
import type { LocalStore } from '../store/local.js';
import { BUNDLE_HEADER, withAttachments } from './attach.js';
import type { PeerAuth } from './auth.js';
import { KEY_HEADER } from './first-address.js';

export interface PeerServerOptions {
  local: LocalStore;
  /** Results waiting for their local write (IdleWriter.peek). */
  pending: (k: string) => Buffer | undefined;
  tmpDir: string;
  port: number;
  /** Where to listen; every interface unless told (tests: one loopback address). */
  host?: string;
  auth: PeerAuth;
  log: ChannelLogger;
  /** A request answered: who asked (their key name) and the bytes sent. */
  served?: (who: string, bytes: number) => void;
}

/**
 * This daemon's store, read-only, to team members on the LAN: the `vrift serve` server over
 * the local store. Every request is authenticated before anything else about it is looked
 * at: one not signed by a trusted key gets the same bare 401 whatever it asks for (path,
 * method, `/`, `/status`), so nobody else learns which keys exist or what is served. A
 * member gets the server's answers: 400 for a bad path, 405 for another method, 403 for a
 * write. A member's kept-alive connection is verified once per window (PeerAuth.verify).
 */
export function startPeerServer(o: PeerServerOptions): Promise<CacheServer> {
  const backend = new StoreBackend(o.local, o.pending, o.tmpDir);
  const data = async (key: string) => (await backend.open(key))?.data;
  const read = { entry: (hex: string) => data(`ac/${hex}`), blob: (hex: string) => data(`cas/${hex}`) };
  return CacheServer.start({
    backend,
    // A peer that reads bundles gets a manifest with its newest result and object (attach.ts).
    acValue: (value, req) => (req.headers[BUNDLE_HEADER] === '1' ? withAttachments(value, read) : Promise.resolve(value)),
    port: o.port,
    host: o.host ?? '0.0.0.0',
    maxBlobSize: 1,
    log: o.log,
    membersOnly: true,
    // Members learn which key this server is: a peer's address is taken only when it answers as the key announced.
    memberHeaders: { [KEY_HEADER]: o.auth.fingerprint },
    authorize: (req, write) => {
      const who = o.auth.verify(req.headers, req.method ?? '', req.url ?? '', req.socket);
      if (!who) return { ok: false, status: 401 };
      return write ? { ok: false, status: 403 } : { ok: true, who: who.name };
    },
    answered: (who, status, bytes) => {
      if (who && status === 200) o.served?.(who, bytes);
    },
  });
}
