import type { Cache } from '../store/contract.js';
import type { RemoteCounters } from './counters.js';

// A shared tier over the network (HTTP cache server, S3, a LAN peer): the cache contract
// (store/contract.ts), plus what the TieredStore in front needs to know about its health.
// Gets never throw: errors, timeouts and content that fails verification read as a miss and
// are counted. Puts throw (a read-only tier throws on every put), and the TieredStore counts
// and drops them: the build never waits for or fails on them. `attach` on putEntry is the
// TieredStore's business (it bundles); a remote tier stores the value it is given.
export interface RemoteTier extends Cache {
  /** Where it points, without credentials. */
  readonly url: string;
  counters(): RemoteCounters;
  /** True while a recent failure keeps the tier switched off. */
  coolingDown(): boolean;
  health(): Record<string, unknown>;
  /**
   * An entry this tier returned that the caller could not use (a bundle whose blob does not
   * match its digest): not a hit after all but an integrity error, and the tier cools down.
   */
  rejected(key: string, e: Error): void;
  /** Resolves when no probe is running (after a cool-down the tier asks in the background). */
  probed(): Promise<void>;
  /** One request (the probe's) when the daemon starts: a remote that does not answer cools down before compiles ask it. */
  check(): Promise<void>;
  /**
   * Asks the remote once now, cooling down or not: true when it answered (the cool-down is
   * then over). For uploads a daemon that is stopping still holds. Absent: false.
   */
  askNow?(): Promise<boolean>;
  /**
   * What of this tier may still be asked while a request to the remote is overdue: a part
   * that bounds its own wait (LAN peers, `peer_wait`), so a slow remote does not stop
   * lookups from asking it. Absent or undefined: nothing is asked meanwhile.
   */
  nearby?(): RemoteTier | undefined;
}

export interface RemoteOptions {
  /** Bearer token (VRIFT_REMOTE_TOKEN / remote_token); user:pass in the URL gives Basic. */
  token?: string;
  connectTimeoutMs?: number;
  /** Idle deadline: no byte for this long ends the operation. */
  timeoutMs?: number;
  coolDownMs?: number;
  /** Largest body accepted from the remote. */
  maxBodyBytes?: number;
  now?: () => number;
  /** Headers proving who asks, per request (LAN peers sign each request: daemon/peers/auth.ts). */
  sign?: (method: string, target: string) => Record<string, string>;
  /**
   * Told of every failed request. With it, the tier does not cool down by itself: the caller
   * owns liveness (the peer table, discovery/liveness.ts).
   */
  onFailure?: (e: unknown) => void;
}

// BLAKE3 of nothing: a key any server can answer for without touching a stored object;
// the tiers ask for it to see whether a remote that failed is back.
export const PROBE_DIGEST = 'af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262';

/**
 * How long one exchange with a remote may take in all, whatever its pace: ten idle deadlines
 * plus 1 s per 2 MB it carries (the slowest link allowed for). A server that trickles a byte
 * now and then never trips an idle deadline; this ends it (then a cool-down).
 */
export function exchangeDeadlineMs(timeoutMs: number, bytes = 0): number {
  return 10 * timeoutMs + Math.ceil(bytes / 2_000);
}

export const REMOTE_DEFAULTS = { connectTimeoutMs: 500, timeoutMs: 1000, coolDownMs: 30_000, maxBodyBytes: 2 ** 30 };
