// What discovery knows about another vrift daemon on the network. The peer tier asks the
// table for live peers; whoever found the peer (mDNS, the static list) only adds and removes.

export const SERVICE_TYPE = 'vrift';
/** The peer protocol (the HTTP layout a peer serves and the TXT fields); another one is ignored. */
export const PEER_PROTOCOL = '1';

export interface PeerAd {
  /** Unique per daemon instance: mDNS instance name, or `host:port` for a static peer. */
  id: string;
  /** Addresses to try, in the order given (every interface of the peer: docker0, VPNs...). */
  addresses: string[];
  port: number;
  /** Fingerprint of the peer's signing key as it announced it ('' when unknown: a static peer). */
  fingerprint: string;
  source: 'mdns' | 'static';
}

export type { PeerState, PeerView } from '../ipc/messages/peers.js';
