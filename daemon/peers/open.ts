import crypto from 'node:crypto';
import os from 'node:os';
import { peersSetting } from '../../config/peers.js';
import type { Config } from '../../config/config.js';
import { MdnsDiscovery, PeerTable, StaticDiscovery, staticAds, type PeerRecord, type PeerView } from '../../discovery/index.js';
import type { PublicKey, SigningKey } from '../../trust/keys.js';
import { EntryGate } from '../tiers/entry-gate.js';
import { unsafeOutputs } from '../frontends/unsafe-outputs.js';
import type { Logger } from '../log.js';
import type { CacheServer } from '../serve/server.js';
import type { LocalStore } from '../store/local.js';
import { PeerTier, type PeerStats } from '../tiers/peers.js';
import { keyAuth, type PeerAuth } from './auth.js';
import { startPeerServer } from './server.js';

export interface Peers {
  tier: PeerTier;
  table: PeerTable;
  server: CacheServer;
  /** What `vrift peers` shows: every peer, with the bytes this daemon served to it. */
  view(): PeerView[];
  stats(): PeerStats & { port: number; mode: string };
  close(): Promise<void>;
}

export interface PeersOptions {
  config: Readonly<Config>;
  local: LocalStore;
  pending: (k: string) => Buffer | undefined;
  tmpDir: string;
  now: () => number;
  log: Logger;
  /** This instance's key: it signs requests to peers. */
  signer: SigningKey;
  /** trusted_keys (and this instance's own): who may read this store, whose entries are used. */
  trusted: readonly PublicKey[];
  /** Instead of signer and trusted for requests (tests). */
  auth?: PeerAuth;
}

/** The daemon's LAN peers (`peers` not "off"): its store served to them, discovery, the peer tier. */
export async function openPeers(o: PeersOptions): Promise<Peers> {
  const setting = peersSetting(o.config.peers);
  if (typeof setting === 'string' || setting.mode === 'off') throw new Error(`peers: ${o.config.peers} is not a peer setting`);
  const log = o.log.child('peers');
  const auth = o.auth ?? keyAuth(o.signer, o.trusted, o.now);
  // A peer's entry is used only when signed by a trusted key; refusals are counted and logged with the keys involved.
  const gate = new EntryGate({ trusted: o.trusted, require: true, log: o.log.child('trust'), now: o.now, source: 'peer', inspect: unsafeOutputs });
  const servedTo = new Map<string, number>();
  const table = new PeerTable(o.now, {
    up: (p) => log.info('peer up', { peer: p.ad.id, addresses: p.ad.addresses, port: p.ad.port, fingerprint: p.ad.fingerprint }),
    gone: (p, why) => log.info('peer not asked', { peer: p.ad.id, state: p.live.state, why }),
  });
  const tier: PeerTier = new PeerTier({
    table,
    auth,
    waitMs: o.config.peer_wait,
    log,
    now: o.now,
    accept: (key, value, p, where) => gate.accept(key, value, describePeer(p, where, auth)),
    describe: (p, where) => describePeer(p, where, auth),
  });
  const server = await startPeerServer({
    local: o.local,
    pending: o.pending,
    tmpDir: o.tmpDir,
    port: o.config.peer_port,
    auth,
    log,
    served: (who, bytes) => {
      servedTo.set(who, (servedTo.get(who) ?? 0) + bytes);
      tier.served(bytes);
    },
  });
  let discovery: { close(): Promise<void> };
  try {
    if (setting.mode === 'mdns') {
      // Unique on the network: host, key fingerprint and a per-start id (two instances may share a key).
      const host = os
        .hostname()
        .replace(/[^A-Za-z0-9-]/g, '-')
        .slice(0, 24);
      const instance = `vrift-${host}-${auth.fingerprint.slice(0, 8)}-${crypto.randomBytes(3).toString('hex')}`;
      const m = new MdnsDiscovery({ table, instance, port: server.port, fingerprint: auth.fingerprint, log });
      m.start();
      discovery = m;
      log.info('announcing and browsing', { instance, port: server.port });
    } else {
      const s = new StaticDiscovery(table, staticAds(setting.peers));
      s.start();
      discovery = s;
      log.info('static peers', { peers: o.config.peers, port: server.port });
    }
  } catch (e) {
    await server.close();
    throw e;
  }
  let closing: Promise<void> | undefined;
  return {
    tier,
    table,
    server,
    view: () =>
      table.view().map((p) => {
        const keyName = p.key_name || auth.nameOf(p.fingerprint);
        return { ...p, key_name: keyName, bytes_up: keyName ? (servedTo.get(keyName) ?? 0) : 0 };
      }),
    stats: () => ({ mode: setting.mode, port: server.port, ...tier.stats() }),
    close: () =>
      (closing ??= (async () => {
        await discovery.close();
        await server.close();
        table.clear();
      })()),
  };
}

// What a refusal's log line calls the peer: its instance, the address it answered on and the
// key it announced (a static peer announces none), so the user knows which machine to look at.
function describePeer(p: PeerRecord, where: string, auth: PeerAuth): string {
  const fp = p.ad.fingerprint;
  const key = fp ? `key ${p.keyName || auth.nameOf(fp) || 'not trusted'} (${fp})` : 'key not announced';
  return `peer ${p.ad.id} at ${where || p.ad.addresses.join(', ')}, ${key}`;
}
