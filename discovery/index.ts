// LAN peers: who is there (mDNS or a static list) and whether to ask them (liveness).
export { PeerTable, type PeerRecord } from './table.js';
export { Liveness, COOL_MS, TIMEOUTS_TO_COOL } from './liveness.js';
export { MdnsDiscovery, type MdnsOptions } from './mdns.js';
export { StaticDiscovery, staticAds } from './static.js';
export { realTimers, type DiscoveryLog, type Timers } from './log.js';
export * from './types.js';
