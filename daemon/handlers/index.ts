import type { HandlerTable } from '../context.js';
import { compile } from './compile.js';
import { config } from './config.js';
import { done } from './done.js';
import { hello } from './hello.js';
import { live } from './live.js';
import { peers } from './peers.js';
import { shutdown } from './shutdown.js';
import { stats } from './stats.js';
import { storeOp } from './store-op.js';

// One handler per message kind; dispatch is a table lookup. Typed by the protocol map
// (ipc/messages/index.ts): a kind without a handler, or a handler answering another kind's
// reply, does not compile.
export const handlers: HandlerTable = {
  hello,
  compile,
  config,
  done,
  stats,
  peers,
  live,
  shutdown,
  'store-op': storeOp,
};
