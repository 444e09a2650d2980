import crypto from 'node:crypto';
import type { PublicKey, SigningKey } from './keys.js';

// Who may read a peer's store: a request carries its sender's ed25519 signature over
// (method, request target, time, key name) in one header, and the peer answers only when a
// key in its `trusted_keys` made it and the time is within the window. No TLS, no session:
// any GET stands alone, and a peer needs nothing but the team's public keys. A captured
// header can be replayed only for the same method and target within the window, which gives
// the replayer what the capture already showed them (peer reads are idempotent GETs).

export const AUTH_HEADER = 'x-vrift-auth';
/** How far a request's time may be from the receiver's clock, either way. */
export const REQUEST_WINDOW_MS = 5 * 60_000;
const VERSION = '1';

type Headers = Record<string, string | string[] | undefined>;
export type RequestCheck = { ok: true; name: string; key: PublicKey } | { ok: false; reason: string };

function message(method: string, target: string, ts: string, name: string): Buffer {
  return Buffer.from(`vrift-request/${VERSION}\n${method.toUpperCase()}\n${target}\n${ts}\n${name}`);
}

/** Headers to add to a request for `target` (path and query exactly as sent on the wire). */
export function signRequest(key: SigningKey, method: string, target: string, now: number): Record<string, string> {
  const ts = String(Math.floor(now));
  const sig = crypto.sign(null, message(method, target, ts, key.name), key.privateKey).toString('base64');
  return { [AUTH_HEADER]: `${VERSION} ${key.name} ${ts} ${sig}` };
}

/** Why a request is refused, for the receiver's log (the sender gets a bare 401). */
export function checkRequest(
  headers: Headers,
  method: string,
  target: string,
  trusted: readonly PublicKey[],
  now: number,
  windowMs = REQUEST_WINDOW_MS,
): RequestCheck {
  const raw = headers[AUTH_HEADER];
  if (typeof raw !== 'string') return { ok: false, reason: raw === undefined ? 'no signature' : 'several signature headers' };
  const parts = raw.trim().split(' ');
  if (parts.length !== 4 || parts[0] !== VERSION) return { ok: false, reason: 'malformed signature header' };
  const [, name, ts, sigB64] = parts;
  if (!/^\d{1,15}$/.test(ts) || !/^[A-Za-z0-9+/]{86}==$/.test(sigB64)) return { ok: false, reason: 'malformed signature header' };
  if (Math.abs(Number(ts) - now) > windowMs) return { ok: false, reason: `signed at ${ts}, outside ${windowMs} ms of ${Math.floor(now)}` };
  const candidates = trusted.filter((k) => k.name === name);
  if (candidates.length === 0) return { ok: false, reason: `key ${JSON.stringify(name)} is not trusted` };
  const msg = message(method, target, ts, name);
  const sig = Buffer.from(sigB64, 'base64');
  const key = candidates.find((k) => crypto.verify(null, msg, k.key, sig));
  return key ? { ok: true, name, key } : { ok: false, reason: `bad signature for key ${JSON.stringify(name)}` };
}

/** The trusted sender's key name, or null when the request must get a 401. */
export function verifyRequest(
  headers: Headers,
  method: string,
  target: string,
  trusted: readonly PublicKey[],
  now: number,
  windowMs = REQUEST_WINDOW_MS,
): { name: string } | null {
  const c = checkRequest(headers, method, target, trusted, now, windowMs);
  return c.ok ? { name: c.name } : null;
}

/**
 * verifyRequest, remembered per connection: once a request on a kept-alive connection has
 * verified, the next ones on it from the same key name cost a header parse instead of an
 * ed25519 verification each (tens of µs: at thousands of small GETs a second, most of a
 * core). What is then trusted is the TCP connection, which, unlike mTLS, nothing binds to
 * the key: a passive listener cannot add requests to it, an active attacker on the path
 * who can inject into it can (docs/design.md says what that exposes). A connection is
 * checked in full again after the window.
 */
export class ConnectionAuth {
  private readonly known = new WeakMap<object, { name: string; until: number }>();

  constructor(
    private readonly trusted: readonly PublicKey[],
    private readonly now: () => number,
    private readonly windowMs = REQUEST_WINDOW_MS,
  ) {}

  /** `conn`: the request's socket (`req.socket`). */
  verify(conn: object, headers: Headers, method: string, target: string): { name: string } | null {
    const t = this.now();
    const k = this.known.get(conn);
    const raw = headers[AUTH_HEADER];
    if (k && t < k.until && typeof raw === 'string' && raw.split(' ', 2)[1] === k.name) return { name: k.name };
    const c = checkRequest(headers, method, target, this.trusted, t, this.windowMs);
    if (!c.ok) return null;
    this.known.set(conn, { name: c.name, until: t + this.windowMs });
    return { name: c.name };
  }
}
