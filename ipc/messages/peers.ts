// peers: what `vrift peers` shows (discovery/types.ts PeerView, one per peer); `enabled`
// false when the daemon runs with peers = "off".
export interface PeersRequest {
  t: 'peers';
}
export interface PeersReply {
  t: 'peers';
  enabled: boolean;
  peers: Record<string, unknown>[];
}

export function parsePeersRequest(_m: Record<string, unknown>): PeersRequest {
  return { t: 'peers' };
}
