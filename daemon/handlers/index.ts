import type { Handler } from '../context.js';
import { compile } from './compile.js';
import { config } from './config.js';
import { done } from './done.js';
import { hello } from './hello.js';
import { shutdown } from './shutdown.js';
import { stats } from './stats.js';
import { storeOp } from './store-op.js';

// One handler per message type; dispatch is a table lookup.
export const handlers: Record<string, Handler> = {
  hello,
  compile,
  config,
  done,
  stats,
  shutdown,
  'store-op': storeOp,
};
