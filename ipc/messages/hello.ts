import { int, str } from './fields.js';

// hello: the version handshake. Any request carries v and build; hello only asks for them.
export interface HelloRequest { t: 'hello'; v: number; build: string }
export interface HelloReply { t: 'hello'; v: number; build: string; pid: number; home: string; uptimeMs: number }

export function parseHello(m: Record<string, unknown>): HelloRequest {
  return { t: 'hello', v: int(m, 'v'), build: str(m, 'build') };
}
