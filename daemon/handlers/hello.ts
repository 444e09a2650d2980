import { BUILD_ID, PROTOCOL_VERSION } from '../../ipc/version.js';
import type { Handler } from '../context.js';

export const hello: Handler<'hello'> = async (_req, ctx) => ({
  t: 'hello',
  v: PROTOCOL_VERSION,
  build: BUILD_ID,
  pid: process.pid,
  home: ctx.paths.home,
  uptimeMs: ctx.now() - ctx.startedAt,
});
