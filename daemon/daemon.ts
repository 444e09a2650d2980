import { lazyDigests } from '../ipc/lazy-map.js';
import { LazyOutputs } from './frontends/lazy-outputs.js';
import fs from 'node:fs';
import path from 'node:path';
import { VriftError } from '../ipc/errors.js';
import { isKind, PARSERS, type Kind, type ReplyOf } from '../ipc/messages/index.js';
import { prepareRunDir } from '../ipc/paths.js';
import { IpcServer } from '../ipc/server.js';
import { BUILD_ID, PROTOCOL_VERSION } from '../ipc/version.js';
import { CompilerIds } from './compilers.js';
import { loadConfig, type ProjectSettings, type ResolvedConfig } from '../config/config.js';
import type { DaemonContext, Pending } from './context.js';
import { CcFrontend } from './frontends/cc/index.js';
import { RustFrontend } from './frontends/rust/index.js';
import { KeyForms } from './frontends/relativize.js';
import type { Deferred } from './frontends/deferred.js';
import { LinkFrontend } from './frontends/link.js';
import { OutputSpares } from './frontends/materialize.js';
import { RustcIds } from './frontends/rust/identity.js';
import { Linkers } from './frontends/rust/linker.js';
import { systemIncludeDirs } from './frontends/gcc/sysdirs.js';
import { handlers } from './handlers/index.js';
import { DirCache } from './hot/dir-cache.js';
import { FileHashes } from './hot/file-hashes.js';
import { FsClock } from './hot/fs-clock.js';
import { Watcher } from './hot/watcher.js';
import { Latency } from './latency.js';
import { ProjectConfigs } from '../config/project-config.js';
import { fileLogger, type Logger } from './log.js';
import { awaitSentReports } from './sent-reports.js';
import { Stats } from './stats.js';
import { IdleWriter } from './store/idle-writer.js';
import { LocalStore } from './store/local.js';
import { WriteBehind } from './store/write-behind.js';
import { openRemote } from './tiers/open.js';
import { TieredStore } from './tiers/tiered.js';
import { EntryGate } from './tiers/entry-gate.js';
import { unsafeOutputs } from './frontends/unsafe-outputs.js';
import { loadOrCreateSigningKey } from '../trust/key-file.js';
import { describeKeys, parseTrustedKeys, type PublicKey, type SigningKey } from '../trust/keys.js';
import { RaceTier } from './tiers/race.js';
import type { RemoteTier } from './tiers/types.js';
import { openPeers, type Peers } from './peers/open.js';
import { Live } from './live/live.js';
import { decodeResult } from './frontends/entries.js';
import type { CcSeen } from './frontends/cc/types.js';

export interface DaemonOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  now?: () => number;
  logger?: Logger;
  resolved?: ResolvedConfig;
}

// Version-independent messages: any client may ask who is there, or ask it to go away.
const ANY_VERSION: ReadonlySet<Kind> = new Set<Kind>(['hello', 'shutdown']);
const PENDING_TTL_MS = 60 * 60_000;
const BUSY_MS = 5 * 60_000;
// With a team server to upload to, a miss's cache entry is built this soon after its report
// (busy or not) and goes up at once: a teammate's build may start seconds after this one ends.
const UPLOAD_ENTRY_WAIT_MS = 500;
// Verified store content kept in memory while LAN peers are on (LocalStore verifiedCacheBytes).
const PEER_VERIFIED_BYTES = 32 * 2 ** 20;
// How often live mode reads inotify's queue between requests.
const LIVE_DRAIN_MS = 50;

// Validates the message as its kind's request, then hands it to that kind's handler.
function serve<K extends Kind>(kind: K, msg: Record<string, unknown>, ctx: DaemonContext): Promise<ReplyOf<K>> {
  return handlers[kind](PARSERS[kind](msg), ctx);
}

export class Daemon {
  private server!: IpcServer;
  private background = new Set<Promise<unknown>>();
  private idleTimer: NodeJS.Timeout | undefined;
  private lastActivity: number;
  private closing: Promise<void> | undefined;
  private resolveClosed!: () => void;
  readonly closed = new Promise<void>((r) => (this.resolveClosed = r));
  readonly ctx: DaemonContext;

  private constructor(ctx: DaemonContext) {
    this.ctx = ctx;
    this.lastActivity = ctx.now();
  }

  static async start(opts: DaemonOptions = {}): Promise<Daemon> {
    const env = opts.env ?? process.env;
    const now = opts.now ?? Date.now;
    const resolved = opts.resolved ?? loadConfig({ env, cwd: opts.cwd, project: false });
    const { paths, config } = resolved;
    prepareRunDir(paths);
    const tmpDir = path.join(paths.runDir, 'tmp');
    fs.mkdirSync(tmpDir, { recursive: true, mode: 0o700 });
    clearStaleTemps(tmpDir);
    const log = opts.logger ?? fileLogger(paths.logFile, config.log_level);
    const stats = new Stats(paths.statsFile);
    const store = new LocalStore({
      root: config.local_path,
      maxSize: config.max_local_size,
      maxAge: config.max_age || undefined,
      // What LAN peers ask for is read and verified once while the file stays the same.
      verifiedCacheBytes: config.peers === 'off' ? 0 : PEER_VERIFIED_BYTES,
      now,
      log: log.child('store'),
      // Blobs lazy files in mounted overlays name: evicting one would lose the file.
      pinned: () => lazyDigests(paths.runDir),
    });
    await store.open();
    // Results of misses and remote answers are written when lookups pause (store/idle-writer.ts).
    // Compiles the daemon answered "run it" and whose report has not come yet. One started
    // more than BUSY_MS ago more likely died with its shim (Ctrl-C) than still runs: it does
    // not hold store writes back.
    const pending = new Map<string, Pending>();
    const busy = () => {
      const since = now() - BUSY_MS;
      for (const p of pending.values()) if (p.created > since) return true;
      return false;
    };
    const uploads = config.remote_url !== '' && !config.read_only;
    const later = new IdleWriter(log.child('store'), {
      spool: path.join(tmpDir, 'store-spool'),
      busy,
      maxJobWaitMs: uploads ? UPLOAD_ENTRY_WAIT_MS : undefined,
      onError: (err) => stats.reason('errors', (err as { code?: string }).code ?? 'ESTORE'),
    });
    // Every entry this daemon makes is signed. The default key is made on the first start (so
    // `vrift keys show` has a line to give teammates before anything is configured); a key that
    // cannot be read is logged and the daemon runs without signing: unsigned entries serve this
    // machine as before, and peers or a signature-requiring remote reader refuse them.
    let signer: SigningKey | undefined;
    try {
      signer = loadOrCreateSigningKey(config.signing_key, resolved.sources.signing_key.source === 'default');
    } catch (err) {
      log.log('error', 'trust', 'entries are not signed: the signing key cannot be used', { err, path: config.signing_key });
    }
    // This instance's own key is trusted too: its entries come back from the remote to a wiped store.
    const trusted: PublicKey[] = parseTrustedKeys(config.trusted_keys);
    if (signer && !trusted.some((k) => k.line === signer.line)) trusted.push(signer);
    if (config.remote_require_signatures)
      log.log('info', 'trust', 'remote entries are used only when signed by a trusted key', { trusted: describeKeys(trusted) });
    // LAN peers and the remote tier are optional and fail open: a bad setting is logged and
    // the daemon runs without them.
    let peers: Peers | undefined;
    if (config.peers !== 'off') {
      try {
        if (!signer) throw new VriftError('ECONFIG', 'LAN peers need a signing key (requests to peers are signed)');
        peers = await openPeers({ config, local: store, pending: (k) => later.peek(k), tmpDir, now, log, signer, trusted });
      } catch (err) {
        log.log('error', 'peers', 'LAN peers disabled', { err, peers: config.peers });
      }
    }
    let tier: RemoteTier | undefined;
    let gate: EntryGate | undefined;
    if (config.remote_url) {
      try {
        tier = await openRemote(config.remote_url, {
          token: config.remote_token || undefined,
          timeoutMs: config.remote_timeout,
          now,
          env,
          log: log.child('remote'),
        });
        gate = config.remote_require_signatures
          ? new EntryGate({ trusted, require: true, log: log.child('trust'), now, source: 'remote', inspect: unsafeOutputs })
          : undefined;
      } catch (err) {
        log.log('error', 'remote', 'remote tier disabled', { err, url: config.remote_url });
      }
    }
    // Peers and the remote are raced (tiers/race.ts); peers alone are never uploaded to, and
    // bound their own wait (peer_wait).
    const shared = tier && peers ? new RaceTier(peers.tier, tier) : (tier ?? peers?.tier);
    const remote =
      shared &&
      new TieredStore({
        local: store,
        remote: shared,
        readOnly: config.read_only || !tier,
        log: log.child(tier ? 'remote' : 'peers'),
        later,
        waitMs: tier ? config.remote_wait : 0,
        packs: config.remote_packs,
        busy,
        gate,
        now,
      });
    if (tier) void remote?.checkRemote();

    // Project settings per compile (project-config.ts). Should a file go bad between the
    // compile handler's check and a front-end's use, the front-end keys with the instance's.
    const projects = new ProjectConfigs({
      paths,
      userFile: resolved.files.user,
      now,
      onError: (err) => log.log('warn', 'config', 'compiles pass through: bad project configuration', { err }),
    });
    const project = (cwd: string, env: Record<string, string>): ProjectSettings => {
      const r = projects.resolve(cwd, env);
      return r instanceof VriftError ? config : r;
    };
    const sysdirMemo = new Map<string, Promise<string[]>>();
    const compilers = new CompilerIds();
    // Inputs' directories under inotify: hits stop stat'ing every header (hot/watcher.ts).
    // Live mode watches too (drained more often: a change is warmed sooner), whether or not lookups trust the watches.
    const watcher = config.watch_inputs || config.live ? Watcher.open(config.live ? { drainEveryMs: LIVE_DRAIN_MS } : {}) : undefined;
    if (!watcher && (config.watch_inputs || config.live))
      log.log('warn', 'daemon', `native/build/vrift_watch.node not loadable: every lookup stats its inputs${config.live ? ', and live mode is off' : ''}`);
    const inputWatcher = config.watch_inputs ? watcher : undefined;
    const hashes = new FileHashes(now, undefined, undefined, inputWatcher);
    const dirs = new DirCache(now, undefined, inputWatcher);
    // Made after the C front-end, which tells it what it sees (observe, warming).
    let live: Live | undefined;
    const front = new WriteBehind(
      remote ?? store,
      later,
      remote && { local: store, offerBlob: (d, n, data) => remote.offerBlob(d, n, data), offerEntry: (k, v, a) => remote.offerEntry(k, v, a) },
      signer,
    );
    const deferred: Deferred = { add: (k, work) => later.defer(k, work), run: (k) => later.runDeferred(k) };
    const linkers = new Linkers(hashes);
    const clock = FsClock.open(paths.runDir);
    const fsNow = () => clock.now();
    // Paths' key forms, memoised for the C/C++ and Rust front-ends alike (relativize.ts).
    const forms = new KeyForms();
    const links = new LinkFrontend({ store: front, hashes, dirs, linkers, compilers, log: log.child('link'), now, fsNow, tmpDir });
    const cc = new CcFrontend({
      store: front,
      hashes,
      dirs,
      compilers,
      systemDirs: (exe, lang, flags) => {
        const k = [compilers.identity(exe), exe, lang, ...flags].join('\u0000');
        const memo = sysdirMemo.get(k);
        if (memo) return memo;
        const p = systemIncludeDirs(exe, lang, flags);
        p.catch(() => sysdirMemo.delete(k));
        sysdirMemo.set(k, p);
        return p;
      },
      project,
      log: log.child('cc'),
      now,
      fsNow,
      tmpDir,
      deferred,
      links,
      forms,
      lazy: new LazyOutputs({ runDir: paths.runDir, store, now, log: log.child('cc') }),
      ...(config.live && watcher
        ? { observe: (seen: CcSeen) => live?.observe(seen), warming: (key: string, output: string) => live?.warming(key, output) }
        : {}),
    });
    if (config.live && watcher) {
      live = new Live({
        cc,
        watcher,
        hashes,
        pending,
        journalFile: path.join(paths.home, 'live', 'journal.json'),
        tmpDir: path.join(tmpDir, 'live'),
        home: paths.home,
        log: log.child('live'),
        now,
        ...(remote ? { sharedHits: () => remote.stats().hits } : {}),
        // A warm run's result and object, evicted first until a build uses them.
        unused: (result, used) =>
          void front
            .getEntry(result)
            .then((buf) => store.markUnused({ entries: [result], blobs: decodeResult(buf)?.outputs.map((o) => o.digest) ?? [] }, used))
            .catch((err) => log.log('warn', 'live', 'warmed entry not marked', { err })),
      });
      live.start();
    }
    const rust = new RustFrontend({
      store: front,
      hashes,
      dirs,
      linkers,
      ids: new RustcIds(path.join(paths.runDir, 'rustc-ids.json')),
      project,
      log: log.child('rust'),
      now,
      fsNow,
      tmpDir,
      deferred,
      forms,
    });

    const spares = config.spare_files > 0 ? new OutputSpares(path.join(paths.runDir, 'spares'), { want: config.spare_files, busy, now }) : undefined;
    spares?.open(tmpDir);
    if (spares) store.takeSparesFrom((file) => spares.take(file));

    let daemon: Daemon;
    const ctx: DaemonContext = {
      paths,
      resolved,
      projects,
      log,
      stats,
      store,
      remote,
      peers,
      watcher,
      live,
      clock,
      writes: front,
      spares,
      signer,
      trusted,
      latency: new Latency(),
      // links: reached only through cc (its handles() takes nothing); listed to be closed.
      frontends: [rust, cc, links],
      pending,
      track: (p) => daemon.track(p),
      requestShutdown: () => void daemon.close(),
      startedAt: now(),
      now,
    };
    daemon = new Daemon(ctx);
    daemon.server = new IpcServer(
      (m) => daemon.dispatch(m),
      (err) => log.log('error', 'ipc', 'transport error', { err }),
    );
    await daemon.server.bind(paths.endpoint);
    fs.chmodSync(paths.socket, 0o600);
    daemon.startTimers(config.idle_timeout);
    log.log('info', 'daemon', 'started', { pid: process.pid, build: BUILD_ID, endpoint: paths.endpoint, store: config.local_path });
    return daemon;
  }

  private async dispatch(msg: Record<string, unknown>): Promise<ReplyOf<Kind>> {
    const t = msg.t;
    // Status probes (hello) don't keep an idle daemon alive; builds and the CLI's work do.
    if (t !== 'hello') this.lastActivity = this.ctx.now();
    // Before anything looks at an input: every change the build made before asking is seen.
    this.ctx.watcher?.sync();
    if (!isKind(t)) throw new VriftError('EUNKNOWN', `unknown message type ${JSON.stringify(t)}`);
    if (!ANY_VERSION.has(t) && (msg.v !== PROTOCOL_VERSION || msg.build !== BUILD_ID)) {
      throw new VriftError('EVERSION', `daemon speaks protocol ${PROTOCOL_VERSION} build ${BUILD_ID}, client sent ${String(msg.v)} ${String(msg.build)}`);
    }
    try {
      return await serve(t, msg, this.ctx);
    } catch (err) {
      const code = err instanceof VriftError ? err.code : 'EINTERNAL';
      this.ctx.stats.reason('errors', code);
      this.ctx.log.log(code === 'EINTERNAL' ? 'error' : 'warn', 'handler', `${String(t)} failed`, { err, code });
      throw err;
    }
  }

  track(p: Promise<unknown>) {
    const q = p.catch(() => {}).finally(() => this.background.delete(q));
    this.background.add(q);
  }

  private startTimers(idleMs: number) {
    const tickMs = Math.max(50, Math.min(60_000, idleMs > 0 ? idleMs / 4 : 60_000));
    this.idleTimer = setInterval(() => {
      const now = this.ctx.now();
      for (const [id, p] of this.ctx.pending) {
        if (now - p.created <= PENDING_TTL_MS) continue;
        this.ctx.pending.delete(id);
        p.frontend.abandon?.(p.state);
      }
      // Live mode is a daemon that stays: it watches and warms while nothing else happens.
      if (idleMs > 0 && !this.ctx.live && now - this.lastActivity > idleMs && this.ctx.pending.size === 0 && this.background.size === 0) {
        this.ctx.log.log('info', 'daemon', 'idle shutdown', { idleMs });
        void this.close();
      }
    }, tickMs);
    this.idleTimer.unref();
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.idleTimer) clearInterval(this.idleTimer);
      // Reports the build's shims sent just before the signal are still on the socket: their
      // entries are what a CI job's teardown would otherwise lose.
      await awaitSentReports(this.ctx);
      await this.server?.close();
      // Warm runs cancelled (what they compiled is not worth a slower stop), the journal saved.
      await this.ctx.live?.close();
      // Goodbye to peers (they forget this one at once) and no more serving them.
      await this.ctx.peers?.close();
      // Entries still to be built (and what waits to be written) first: background work
      // waits for them, and they would wait for a pause that, with the server closed and
      // every timer unref'd, never comes (the process would just end).
      await this.ctx.writes.settle();
      await Promise.allSettled([...this.background]);
      await this.ctx.writes.close();
      // Their writes went through ctx.writes, drained now: this only lets go of their state.
      for (const f of this.ctx.frontends) await f.close();
      await this.ctx.spares?.close();
      // Uploads have run all along; what is still queued gets drainMs (10 s) more.
      await this.ctx.remote?.close();
      await this.ctx.store.close();
      await this.ctx.stats.close();
      this.ctx.watcher?.close();
      this.ctx.clock.close();
      await this.ctx.spares?.remove();
      this.ctx.log.log('info', 'daemon', 'stopped', { pid: process.pid });
      await this.ctx.log.close();
      fs.rmSync(this.ctx.paths.socket, { force: true });
      this.resolveClosed();
    })();
    return this.closing;
  }
}

// Temporary files of compiles (dep files vrift asked a compiler or ld for) can still be in use
// by compiles a previous daemon answered: a compiler that cannot write one fails the build.
// Only what is old goes; the dir itself stays.
const STALE_TEMP_MS = 60 * 60_000;
function clearStaleTemps(dir: string): void {
  const now = Date.now();
  for (const name of fs.readdirSync(dir)) {
    const f = path.join(dir, name);
    try {
      const st = fs.lstatSync(f);
      if (name === 'store-spool' || now - st.mtimeMs > STALE_TEMP_MS) fs.rmSync(f, { recursive: true, force: true });
    } catch {
      // gone meanwhile
    }
  }
}
