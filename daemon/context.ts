import type { Kind, ReplyOf, RequestOf } from '../ipc/messages/index.js';
import type { InstancePaths } from '../ipc/paths.js';
import type { ResolvedConfig } from '../config/config.js';
import type { OutputSpares } from './frontends/materialize.js';
import type { Frontend } from './frontends/types.js';
import type { FsClock } from './hot/fs-clock.js';
import type { Watcher } from './hot/watcher.js';
import type { Latency } from './latency.js';
import type { ProjectConfigs } from '../config/project-config.js';
import type { Logger } from './log.js';
import type { Stats } from './stats.js';
import type { LocalStore } from './store/local.js';
import type { WriteBehind } from './store/write-behind.js';
import type { TieredStore } from './tiers/tiered.js';
import type { PublicKey, SigningKey } from '../trust/keys.js';
import type { Peers } from './peers/open.js';
import type { Live } from './live/live.js';

export interface Pending {
  id: string;
  frontend: Frontend;
  state: unknown;
  session?: string;
  created: number;
  // Answered with files to collect: its report may come one-way (messages/done.ts).
  oneWay?: boolean;
  // The shim's process (when it said): gone means its one-way report is already sent.
  pid?: number;
  // ... and `vrift stats` waited for its report in vain.
  lost?: boolean;
}

// Everything a handler may touch; built once by Daemon, passed to every handler.
export interface DaemonContext {
  paths: InstancePaths;
  resolved: ResolvedConfig; // as the daemon started: instance keys apply from here
  projects: ProjectConfigs; // project keys, per compile
  log: Logger;
  stats: Stats;
  latency: Latency; // lookup time per outcome, for `vrift stats`
  store: LocalStore;
  remote?: TieredStore; // set when remote_url or peers is configured
  peers?: Peers; // set when peers is not "off"
  writes: WriteBehind; // what the front-ends store through: written when lookups pause
  watcher?: Watcher; // inotify on inputs' directories (watch_inputs, or live)
  live?: Live; // live mode (live = true): records compiles, warms what changed
  clock: FsClock; // compiles' starts as the filesystems stamp them
  spares?: OutputSpares; // empty files the shims write hits' outputs into
  signer?: SigningKey; // signs this daemon's entries and its requests to peers (absent: unusable key, logged)
  trusted: readonly PublicKey[]; // trusted_keys and this instance's own key: whose entries and requests are accepted
  frontends: Frontend[]; // first that handles a call takes it
  pending: Map<string, Pending>;
  track(p: Promise<unknown>): void; // background work close() waits for
  requestShutdown(): void;
  startedAt: number;
  now: () => number;
}

// A handler gets its kind's request, already validated (ipc/messages PARSERS), and must answer
// with its kind's reply (ipc/messages/index.ts Protocol); a throw becomes an `error` reply.
export type Handler<K extends Kind> = (req: RequestOf<K>, ctx: DaemonContext) => Promise<ReplyOf<K>>;
export type HandlerTable = { readonly [K in Kind]: Handler<K> };
