import path from 'node:path';
import { parseStats } from '../../ipc/messages/stats.js';
import type { Handler } from '../context.js';
import { clearFallbacks, countFallbacks, fallbackFile } from '../shim-fallbacks.js';

export const stats: Handler = async (msg, ctx) => {
  const req = parseStats(msg);
  await ctx.writes.settle(); // the store's numbers include what waits for a pause
  const fallbacks = fallbackFile(path.dirname(ctx.paths.logFile));
  if (req.zero) {
    ctx.stats.zero();
    ctx.latency.zero();
    clearFallbacks(fallbacks);
  }
  const c = ctx.stats.get(req.session);
  return {
    t: 'stats',
    stats: {
      ...c,
      shim_fallbacks: countFallbacks(fallbacks, Date.parse(c.since)),
      local: { ...ctx.store.usage(), ...ctx.store.counters(), path: ctx.resolved.config.local_path, max_size: ctx.resolved.config.max_local_size },
      ...(ctx.remote ? { remote: ctx.remote.stats() } : {}),
      latency: ctx.latency.summary(),
      daemon: { pid: process.pid, rss: process.memoryUsage().rss, uptime_ms: ctx.now() - ctx.startedAt, pending: ctx.pending.size, ...(ctx.watcher ? { watch: { dirs: ctx.watcher.watched, ...ctx.watcher.counts } } : {}) },
    },
  };
};
