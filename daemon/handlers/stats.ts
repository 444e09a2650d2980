import path from 'node:path';
import type { Handler } from '../context.js';
import { awaitSentReports } from '../sent-reports.js';
import { remoteIdentity } from '../../config/remote-url.js';
import { snakeKeys } from '../snake-keys.js';
import { clearFallbacks, countFallbacks, fallbackFile } from '../shim-fallbacks.js';

const STATS_SETTLE_MS = 2500;

export const stats: Handler<'stats'> = async (req, ctx) => {
  await awaitSentReports(ctx);
  // The store's numbers include what waits for a pause, unless writing it takes longer than
  // a client waits (a backlog of tens of thousands of files): then `local.waiting` says so.
  // Then the spare pool is filled: the store's writes take spares (a cold build's results
  // used the whole pool), and a pool refilled after this answer would have the next build
  // start with none while the refill competes with it.
  await ctx.writes.settleWithin(STATS_SETTLE_MS);
  await ctx.spares?.settleWithin(STATS_SETTLE_MS);
  // What was written counts once the writes' own callbacks (done.ts) have run.
  await new Promise((r) => setImmediate(r));
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
      shim_fallbacks: countFallbacks(fallbacks, req.fallbacks_since ?? Date.parse(c.since)),
      local: {
        ...snakeKeys({ ...ctx.store.usage(), ...ctx.store.counters() }),
        waiting: ctx.writes.waiting(),
        path: ctx.resolved.config.local_path,
        max_size: ctx.resolved.config.max_local_size,
      },
      // identity: which remote with which credentials, so `vrift run --cache-remote` can tell a
      // changed password from the same remote without either side printing it.
      ...(ctx.remote && ctx.resolved.config.remote_url
        ? { remote: { ...ctx.remote.stats(), identity: remoteIdentity(ctx.resolved.config.remote_url, ctx.resolved.config.remote_token) } }
        : {}),
      ...(ctx.peers ? { peers: ctx.peers.stats() } : {}),
      latency: ctx.latency.summary(),
      daemon: {
        pid: process.pid,
        ...memory(),
        uptime_ms: ctx.now() - ctx.startedAt,
        pending: ctx.pending.size,
        spares: ctx.spares?.size ?? 0,
        ...(ctx.watcher ? { watch: { dirs: ctx.watcher.watched, ...ctx.watcher.counts } } : {}),
      },
    },
  };
};

// What the daemon's memory is: the JS heap, buffers outside it, and the rest (code, stacks,
// native libraries, allocator slack).
function memory(): { rss: number; heap_used: number; external: number } {
  const m = process.memoryUsage();
  return { rss: m.rss, heap_used: m.heapUsed, external: m.external };
}
