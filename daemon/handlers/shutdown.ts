import type { Handler } from '../context.js';

export const shutdown: Handler<'shutdown'> = async (_req, ctx) => {
  setImmediate(() => ctx.requestShutdown()); // answer first
  return { t: 'ok' };
};
