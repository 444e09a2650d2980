// peers: what `vrift peers` shows (PeerView, one per peer, kept by discovery/'s table); `enabled`
// false when the daemon runs with peers = "off".
export interface PeersRequest {
  t: 'peers';
}
export interface PeersReply {
  t: 'peers';
  enabled: boolean;
  peers: PeerView[];
}

export function parsePeersRequest(_m: Record<string, unknown>): PeersRequest {
  return { t: 'peers' };
}

export type PeerState = 'up' | 'cooling' | 'gone';

/** One line of `vrift peers`. */
export interface PeerView {
  id: string;
  addresses: string[];
  port: number;
  fingerprint: string;
  /** The key name the peer's answers were signed with or its fingerprint matched ('' until known). */
  key_name: string;
  source: 'mdns' | 'static';
  state: PeerState;
  /** Why it is cooling down or gone. */
  reason?: string;
  /** Smoothed round trip of its answers, ms (undefined before the first). */
  rtt_ms?: number;
  /** Lookups it answered with a hit / with "no". */
  hits: number;
  misses: number;
  errors: number;
  timeouts: number;
  bytes_down: number;
  /** Bytes this daemon served to it (filled in by the server side, by key name). */
  bytes_up: number;
  since: string;
}
