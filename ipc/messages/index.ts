import { parseCompile, type CompileReply, type CompileRequest } from './compile.js';
import { parseConfig, type ConfigReply, type ConfigRequest } from './config.js';
import { parseDone, type DoneRequest, type OkReply } from './done.js';
import type { ErrorReply } from './error.js';
import { parseHello, type HelloReply, type HelloRequest } from './hello.js';
import { parseLive, type LiveReply, type LiveRequest } from './live.js';
import { parsePeersRequest, type PeersReply, type PeersRequest } from './peers.js';
import { parseShutdown, type ShutdownRequest } from './shutdown.js';
import { parseStats, type StatsReply, type StatsRequest } from './stats.js';
import { parseStoreOp, type StoreOpReply, type StoreOpRequest } from './store-op.js';

// The protocol in one map: each message kind, the request a client sends and the reply the
// daemon gives (any request may also be answered with an `error`, ErrorReply). The daemon's
// handler table and the clients' request helper are typed from it, so a handler that returns
// another kind's reply or a client that sends an unknown kind does not compile. What each
// key on the wire means: legend.ts.
export interface Protocol {
  hello: { req: HelloRequest; reply: HelloReply };
  compile: { req: CompileRequest; reply: CompileReply };
  done: { req: DoneRequest; reply: OkReply };
  config: { req: ConfigRequest; reply: ConfigReply };
  stats: { req: StatsRequest; reply: StatsReply };
  peers: { req: PeersRequest; reply: PeersReply };
  live: { req: LiveRequest; reply: LiveReply };
  shutdown: { req: ShutdownRequest; reply: OkReply };
  'store-op': { req: StoreOpRequest; reply: StoreOpReply };
}

export type Kind = keyof Protocol;
export type RequestOf<K extends Kind> = Protocol[K]['req'];
export type ReplyOf<K extends Kind> = Protocol[K]['reply'];
export type AnyRequest = RequestOf<Kind>;
export type AnyReply = ReplyOf<Kind> | ErrorReply;

// What a client puts on the wire: the request without `v` and `build` (the client adds them),
// its booleans optional (absent reads as false).
type BoolKeys<T> = { [P in keyof T]-?: T[P] extends boolean ? P : never }[keyof T];
type Sendable<T> = Omit<T, 'v' | 'build' | BoolKeys<T>> & Partial<Pick<T, BoolKeys<T>>>;
export type Outgoing<K extends Kind = Kind> = { [P in K]: Sendable<RequestOf<P>> }[K];

/** Validates a decoded message of each kind: a bad field is EBADMSG naming it. */
export const PARSERS: { readonly [K in Kind]: (m: Record<string, unknown>) => RequestOf<K> } = Object.freeze({
  hello: parseHello,
  compile: parseCompile,
  done: parseDone,
  config: parseConfig,
  stats: parseStats,
  peers: parsePeersRequest,
  live: parseLive,
  shutdown: parseShutdown,
  'store-op': parseStoreOp,
});

export function isKind(t: unknown): t is Kind {
  return typeof t === 'string' && Object.hasOwn(PARSERS, t);
}

export type { CompileReply, ErrorReply };
