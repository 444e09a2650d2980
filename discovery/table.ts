import { Liveness } from './liveness.js';
import type { PeerAd, PeerView } from './types.js';

// Gone peers stay listed (`vrift peers` shows them) this long, then are forgotten.
const KEEP_GONE_MS = 10 * 60_000;
// Weight of a new round trip in the smoothed RTT.
const RTT_ALPHA = 0.25;

export interface PeerRecord {
  ad: PeerAd;
  live: Liveness;
  keyName: string;
  rttMs: number | undefined;
  hits: number;
  misses: number;
  errors: number;
  timeouts: number;
  bytesDown: number;
  since: number;
  goneAt: number;
}

export interface TableEvents {
  up?(p: PeerRecord): void;
  gone?(p: PeerRecord, why: string): void;
}

/**
 * Every peer discovery found, with its liveness and what it gave us. Discovery adds and
 * removes; the peer tier asks `candidates()` before each lookup and reports each outcome.
 */
export class PeerTable {
  private readonly peers = new Map<string, PeerRecord>();

  constructor(
    private readonly now: () => number,
    private readonly events: TableEvents = {},
  ) {}

  /** A peer announced itself (again); a changed address or port replaces the old one. */
  upsert(ad: PeerAd): PeerRecord {
    const old = this.peers.get(ad.id);
    if (old && old.live.state !== 'gone' && sameAd(old.ad, ad)) return old;
    if (old && sameAd(old.ad, ad)) {
      old.live.revive();
      old.since = this.now();
      this.events.up?.(old);
      return old;
    }
    const p: PeerRecord = {
      ad,
      live: new Liveness(this.now),
      keyName: old?.keyName ?? '',
      rttMs: undefined,
      hits: old?.hits ?? 0,
      misses: old?.misses ?? 0,
      errors: old?.errors ?? 0,
      timeouts: old?.timeouts ?? 0,
      bytesDown: old?.bytesDown ?? 0,
      since: this.now(),
      goneAt: 0,
    };
    this.peers.set(ad.id, p);
    this.events.up?.(p);
    return p;
  }

  /** Not to be asked again until it announces itself anew. */
  drop(id: string, why: string): void {
    const p = this.peers.get(id);
    if (!p || p.live.state === 'gone') return;
    p.live.gone(why);
    p.goneAt = this.now();
    this.events.gone?.(p, why);
  }

  get(id: string): PeerRecord | undefined {
    return this.peers.get(id);
  }

  /** Peers a lookup may ask now (a cooled-down peer's single probe included). */
  candidates(): PeerRecord[] {
    this.forgetOld();
    return [...this.peers.values()].filter((p) => p.live.mayAsk());
  }

  /** Peers not gone (up or cooling down). */
  known(): PeerRecord[] {
    return [...this.peers.values()].filter((p) => p.live.state !== 'gone');
  }

  // ---- outcomes the peer tier reports ----

  answered(p: PeerRecord, rttMs: number, hit: boolean, bytes = 0): void {
    p.live.answered();
    p.rttMs = p.rttMs === undefined ? rttMs : p.rttMs + RTT_ALPHA * (rttMs - p.rttMs);
    if (hit) p.hits++;
    else p.misses++;
    p.bytesDown += bytes;
  }

  /** It sent an object a hit named (not a lookup of its own). */
  delivered(p: PeerRecord, rttMs: number, bytes: number): void {
    p.live.answered();
    p.rttMs = p.rttMs === undefined ? rttMs : p.rttMs + RTT_ALPHA * (rttMs - p.rttMs);
    p.bytesDown += bytes;
  }

  /** Connection refused: nobody listens there now. */
  refused(p: PeerRecord, why: string): void {
    p.errors++;
    this.drop(p.ad.id, why);
  }

  timedOut(p: PeerRecord, why: string): void {
    p.timeouts++;
    const before = p.live.state;
    p.live.timedOut(why);
    if (before === 'up' && p.live.state === 'cooling') this.events.gone?.(p, `cooling down: ${why}`);
  }

  /** It answered, but with something unusable (wrong bytes, garbage): counted, and it cools like a timeout would. */
  lied(p: PeerRecord, why: string): void {
    p.errors++;
    const before = p.live.state;
    p.live.cool(why);
    if (before === 'up') this.events.gone?.(p, `cooling down: ${why}`);
  }

  view(): PeerView[] {
    this.forgetOld();
    return [...this.peers.values()].map((p) => ({
      id: p.ad.id,
      addresses: p.ad.addresses,
      port: p.ad.port,
      fingerprint: p.ad.fingerprint,
      key_name: p.keyName,
      source: p.ad.source,
      state: p.live.state,
      ...(p.live.reason ? { reason: p.live.reason } : {}),
      ...(p.rttMs === undefined ? {} : { rtt_ms: Math.round(p.rttMs * 100) / 100 }),
      hits: p.hits,
      misses: p.misses,
      errors: p.errors,
      timeouts: p.timeouts,
      bytes_down: p.bytesDown,
      bytes_up: 0,
      since: new Date(p.since).toISOString(),
    }));
  }

  clear(): void {
    this.peers.clear();
  }

  private forgetOld(): void {
    const cutoff = this.now() - KEEP_GONE_MS;
    for (const [id, p] of this.peers) if (p.live.state === 'gone' && p.goneAt < cutoff) this.peers.delete(id);
  }
}

function sameAd(a: PeerAd, b: PeerAd): boolean {
  return a.port === b.port && a.fingerprint === b.fingerprint && a.addresses.join() === b.addresses.join();
}
