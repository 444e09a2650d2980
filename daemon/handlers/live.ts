import type { Handler } from '../context.js';

// A wait answers within this, whatever the client asked: the client asks again (shim/live-command.ts).
const MAX_WAIT_MS = 60_000;

export const live: Handler<'live'> = async (req, ctx) => {
  const l = ctx.live;
  if (!l) return { t: 'live', enabled: false, settled: true };
  const settled = req.op === 'wait' ? await l.wait(Math.min(MAX_WAIT_MS, Math.max(0, req.timeout_ms ?? MAX_WAIT_MS))) : l.status().state === 'idle';
  return { t: 'live', enabled: true, settled, status: l.status() };
};
