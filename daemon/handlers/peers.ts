import type { Handler } from '../context.js';

export const peers: Handler<'peers'> = async (_req, ctx) => ({
  t: 'peers',
  enabled: !!ctx.peers,
  peers: ctx.peers?.view() ?? [],
});
