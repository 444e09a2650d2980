import net from 'node:net';
import { VriftError } from '../ipc/errors.js';

// `peers` as users write it: "off" (the default), "mdns", or a comma-separated list of
// host:port ([v6]:port for IPv6) for networks mDNS does not cross (containers, VPNs, subnets).

export const PEERS_FORMS = '"off", "mdns" or "host:port,host:port" ([ipv6]:port)';

export type PeersSetting = { mode: 'off' } | { mode: 'mdns' } | { mode: 'static'; peers: { host: string; port: number }[] };

const HOST = /^[A-Za-z0-9]([A-Za-z0-9-]{0,62}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*$/;

/** Why `raw` is not a peers setting, or the setting. */
export function peersSetting(raw: string): PeersSetting | string {
  const s = raw.trim();
  if (s === '' || s === 'off') return { mode: 'off' };
  if (s === 'mdns') return { mode: 'mdns' };
  const peers: { host: string; port: number }[] = [];
  for (const part of s
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(part);
    if (!m) return `${JSON.stringify(part)} is not host:port`;
    const host = m[1] ?? m[2]!;
    const port = Number(m[3]);
    if (port < 1 || port > 65535) return `${JSON.stringify(part)}: port out of range`;
    if (m[1] ? !net.isIPv6(host) : !(net.isIPv4(host) || HOST.test(host))) return `${JSON.stringify(part)}: not a host name or address`;
    peers.push({ host, port });
  }
  if (peers.length === 0) return 'empty list';
  return { mode: 'static', peers };
}

export function parsePeers(raw: unknown, where: string): string {
  const r = typeof raw === 'string' ? peersSetting(raw) : 'not a string';
  if (typeof r === 'string')
    throw new VriftError('ECONFIG', `${where}: invalid peers ${JSON.stringify(raw)} (${r}); use ${PEERS_FORMS}`, { fields: { where } });
  return r.mode === 'static' ? r.peers.map((p) => (net.isIPv6(p.host) ? `[${p.host}]:${p.port}` : `${p.host}:${p.port}`)).join(',') : r.mode;
}
