import { realTimers, type Timers } from './log.js';
import type { PeerTable } from './table.js';
import type { PeerAd } from './types.js';

const ROUND_MS = 30_000;

/** `host:port` entries of `peers = "..."` (the list is checked by config/peers.ts). */
export function staticAds(list: readonly { host: string; port: number }[]): PeerAd[] {
  return list.map(({ host, port }) => ({ id: `${host}:${port}`, addresses: [host], port, fingerprint: '', source: 'static' }));
}

// Peers named in the configuration (containers, VPNs, other subnets: where mDNS does not
// reach). Liveness is the same as for mDNS peers; a peer dropped because nobody listened is
// asked again from the next round on (it may have started since).
export class StaticDiscovery {
  private timer: unknown;
  private closed = false;
  private readonly timers: Timers;

  constructor(
    private readonly table: PeerTable,
    private readonly ads: PeerAd[],
    o: { roundMs?: number; timers?: Timers } = {},
  ) {
    this.timers = o.timers ?? realTimers;
    this.roundMs = o.roundMs ?? ROUND_MS;
  }

  private readonly roundMs: number;

  start(): void {
    this.round();
  }

  round(): void {
    if (this.closed) return;
    for (const ad of this.ads) this.table.upsert(ad);
    this.timers.clearTimeout(this.timer);
    this.timer = this.timers.setTimeout(() => this.round(), this.roundMs);
  }

  close(): Promise<void> {
    this.closed = true;
    this.timers.clearTimeout(this.timer);
    return Promise.resolve();
  }
}
