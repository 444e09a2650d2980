import { parseStats } from '../../ipc/messages/stats.js';
import type { Handler } from '../context.js';

export const stats: Handler = async (msg, ctx) => {
  const req = parseStats(msg);
  if (req.zero) ctx.stats.zero();
  const c = ctx.stats.get(req.session);
  return {
    t: 'stats',
    stats: {
      ...c,
      local: { ...ctx.store.usage(), ...ctx.store.counters(), path: ctx.resolved.config.local_path, max_size: ctx.resolved.config.max_local_size },
      ...(ctx.remote ? { remote: ctx.remote.stats() } : {}),
      daemon: { pid: process.pid, rss: process.memoryUsage().rss, uptime_ms: ctx.now() - ctx.startedAt, pending: ctx.pending.size },
    },
  };
};
