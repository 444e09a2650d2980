import type { Handler } from '../context.js';

export const shutdown: Handler = async (_msg, ctx) => {
  setImmediate(() => ctx.requestShutdown()); // answer first
  return { t: 'ok' };
};
