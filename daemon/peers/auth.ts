import type http from 'node:http';
import type { PublicKey, SigningKey } from '../../trust/keys.js';
import { ConnectionAuth, signRequest } from '../../trust/request-auth.js';

// Who may read this daemon's store, and how this daemon proves who it is to others: each
// request carries its sender's ed25519 signature (trust/request-auth.ts), checked against
// `trusted_keys`. The peer server and the peer tier only see this interface, so tests pass
// their own and another scheme (mTLS) would be one more implementation.
export interface PeerAuth {
  /** This instance's key fingerprint, announced in the mDNS TXT record. */
  readonly fingerprint: string;
  /** Headers for a request of `target` (path as sent). */
  sign(method: string, target: string): Record<string, string>;
  /**
   * The sender's key name, or null: the request gets a bare 401 (nothing about the key asked
   * for). `conn`: the request's socket; a kept-alive connection that verified is trusted for
   * the next requests from the same key name until the window ends (ConnectionAuth).
   */
  verify(headers: http.IncomingHttpHeaders, method: string, target: string, conn: object): { name: string } | null;
  /** The name of the trusted key with this fingerprint ('' when none: `vrift peers` shows it). */
  nameOf(fingerprint: string): string;
}

export function keyAuth(own: SigningKey, trusted: readonly PublicKey[], now: () => number, windowMs?: number): PeerAuth {
  const connections = new ConnectionAuth(trusted, now, windowMs);
  return {
    fingerprint: own.fingerprint,
    sign: (method, target) => signRequest(own, method, target, now()),
    verify: (headers, method, target, conn) => connections.verify(conn, headers, method, target),
    nameOf: (fp) => trusted.find((k) => k.fingerprint === fp)?.name ?? '',
  };
}
