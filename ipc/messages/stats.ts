import { bool, optStr } from './fields.js';

// stats: counters (persisted across daemon restarts); `session` narrows to one `vrift run`.
export interface StatsRequest { t: 'stats'; session?: string; zero: boolean }
export interface StatsReply { t: 'stats'; stats: Record<string, unknown> }

export function parseStats(m: Record<string, unknown>): StatsRequest {
  return { t: 'stats', session: optStr(m, 'session'), zero: bool(m, 'zero') };
}
