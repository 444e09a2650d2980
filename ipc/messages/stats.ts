import { bool, int, optStr } from './fields.js';

// stats: counters (persisted across daemon restarts); `session` narrows to one `vrift run`;
// `fallbacks_since` (epoch ms) counts the calls that went around the cache from then: a
// session's own counters start with its first compile that reached the daemon.
export interface StatsRequest {
  t: 'stats';
  session?: string;
  zero: boolean;
  fallbacks_since?: number;
}
export interface StatsReply {
  t: 'stats';
  stats: Record<string, unknown>;
}

export function parseStats(m: Record<string, unknown>): StatsRequest {
  const since = m.fallbacks_since === undefined || m.fallbacks_since === null ? undefined : int(m, 'fallbacks_since');
  return { t: 'stats', session: optStr(m, 'session'), zero: bool(m, 'zero'), ...(since !== undefined ? { fallbacks_since: since } : {}) };
}
