import bytes from 'bytes';
import type { PeerView } from '../ipc/messages/peers.js';

export type PeerLine = PeerView;

/** `vrift peers`: one block per peer. */
export function formatPeers(peers: PeerLine[], enabled: boolean): string {
  if (!enabled) return 'LAN peers are off (peers = "mdns" or "host:port,..." in config.toml, or VRIFT_PEERS)\n';
  if (peers.length === 0) return 'no LAN peers found yet\n';
  const b = (n: number) => bytes(n, { unitSeparator: ' ' }) ?? '0 B';
  return (
    peers
      .map((p) =>
        [
          `${p.id}  ${p.state}${p.reason ? ` (${p.reason})` : ''}`,
          `  address ${p.addresses.join(', ')} port ${p.port}`,
          `  key ${p.key_name || '(not trusted)'}${p.fingerprint ? ` fingerprint ${p.fingerprint}` : ''}`,
          `  rtt ${p.rtt_ms === undefined ? '-' : `${p.rtt_ms} ms`}, hits ${p.hits}, misses ${p.misses}, errors ${p.errors}, timeouts ${p.timeouts}`,
          `  bytes from it ${b(p.bytes_down)}, to it ${b(p.bytes_up)}`,
        ].join('\n'),
      )
      .join('\n') + '\n'
  );
}
