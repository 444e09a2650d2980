import { tokenFingerprint } from '../../ipc/messages/config.js';
import { INSTANCE_KEYS } from '../../config/config.js';
import type { Handler } from '../context.js';

export const config: Handler<'config'> = async (_req, ctx) => {
  ctx.projects.forget();
  const c = ctx.resolved.config;
  const out: Record<string, unknown> = {};
  for (const k of INSTANCE_KEYS) if (k !== 'remote_token') out[k] = c[k];
  return { t: 'config', pid: process.pid, config: out, token_fp: tokenFingerprint(c.remote_token), started_ms: ctx.startedAt };
};
