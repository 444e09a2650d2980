import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { CompileRequest } from '../../ipc/messages/compile.js';
import type { LiveStatus } from '../../ipc/messages/live.js';
import type { LiveSkip, NotStoredReason } from '../../ipc/reasons.js';
import { BUILD_ID, PROTOCOL_VERSION } from '../../ipc/version.js';
import { PROJECT_KEYS, SCHEMA } from '../../config/config.js';
import type { Pending } from '../context.js';
import type { CcSeen } from '../frontends/cc/types.js';
import { KEY_ENV } from '../frontends/cc/keys.js';
import type { Finish, Frontend, Outcome } from '../frontends/types.js';
import type { FileHashes } from '../hot/file-hashes.js';
import type { Watcher } from '../hot/watcher.js';
import type { ChannelLogger } from '../log.js';
import { commandId, Journal, type LiveCommand } from './journal.js';
import { redirectOutputs, unsafeOption } from './redirect.js';
import { idlePrefix, runIdle } from './run-idle.js';

// Live mode (docs/live.md): every C/C++ compile a build makes is recorded with the inputs its
// entry named (journal.ts); those inputs are watched. When some change and the changes settle,
// the compiles that read them are run again in the background, newest edit first, at idle
// priority, with their outputs sent to a private directory (redirect.ts), and what they produce
// goes into the cache through the front-end's own lookup and finish: the key and manifest come
// from what the compiler read, so a warm run can waste CPU but never make a wrong hit.
// With a team cache or LAN peers, the changed compiles' new keys are first looked up there, all
// of them, a few at once (prefetch: what a teammate built is fetched, not compiled); only the
// misses are then compiled.
// The build wins: no new warm run starts while a build sends compiles; a build's lookup of a
// key being warmed waits for it, but no longer than the compile took last time, and then the
// warm run is cancelled and the build compiles.

/** The C/C++ front-end as live mode uses it: a lookup and finish as a shim's, and settle(). */
export interface WarmFrontend extends Frontend {
  settle(directKey: string): Promise<void>;
}

export interface LiveOptions {
  cc: WarmFrontend;
  watcher: Pick<Watcher, 'listen' | 'ensure'>;
  hashes: Pick<FileHashes, 'get'>;
  /** The daemon's compiles waiting for their report: a build is compiling those. */
  pending: ReadonlyMap<string, Pending>;
  journalFile: string;
  /** Where warm runs write (a directory each, removed after). */
  tmpDir: string;
  /** VRIFT_HOME, set in warm runs' environment (what finds an instance's processes). */
  home: string;
  log: ChannelLogger;
  now?: () => number;
  /** Answers the team cache and LAN peers have given so far (absent: none configured, no prefetch step). */
  sharedHits?: () => number;
  /**
   * A warm run's entry (its result key) is not used yet, or (`used`) a build used it: the
   * store evicts what no build used first.
   */
  unused?: (result: string, used: boolean) => void;
  /** Lookups at once in the prefetch step (default PREFETCH_JOBS). */
  prefetchJobs?: number;
  /** Warm runs at once (default: cores - 1, at least 1). */
  jobs?: number;
  debounceMs?: number;
  capMs?: number;
  /** No new warm run for this long after a build's last compile request. */
  quietMs?: number;
  maxCommands?: number;
  timeoutMs?: number;
}

interface Job {
  id: string;
  cmd: LiveCommand;
  dir: string;
  ac: AbortController;
  why?: 'newer' | 'build' | 'close';
  key?: string;
  done: Promise<void>;
  end?: RoundEnd; // how it ended, when that is final for this round (not when cancelled for a newer change)
}

// How a compile of a round ended: in the cache (warmed, fetched, found, or left to the build
// that compiles it), failed to compile, or not cacheable (not warmed, not stored).
type RoundEnd = 'ok' | 'failed' | 'not_cached';

// The compiles one settled batch of changes queued (and those changes that came before it was
// over): what `vrift live status` says is done and whether the next build is all hits.
interface Round {
  start: number;
  ids: Set<string>;
  done: Map<string, RoundEnd>;
  prefetched: number; // counters when it began
  warmed: number;
  end?: number;
}

// What a warm run's environment keeps of the build's: what the key reads, what the project
// settings read, and what running the compiler needs. Not the rest (tokens, LD_PRELOAD).
const KEEP_ENV = new Set<string>([...KEY_ENV, ...PROJECT_KEYS.flatMap((k) => SCHEMA[k].env), 'PATH', 'HOME', 'TMPDIR', 'LD_LIBRARY_PATH']);

// A compile a build started this long ago and has not reported counts as running.
const BUILD_PENDING_MS = 60_000;
// A storm: this many events within a second (a checkout, a pull, an rsync, a generator). Nothing
// is warmed until no event came for STORM_QUIET_MS; then everything that changed, once.
const STORM_EVENTS = 1000;
const STORM_QUIET_MS = 1000;
// While git holds its index lock it is rewriting the tree: looked at again this often.
const LOCK_POLL_MS = 200;
// A changed input that is missing is an editor mid-save (vim renames the file away and writes
// it anew): waited for this long after the first change before warming without it. Long, as
// a deleted header only delays warm runs that would fail.
const MISSING_WAIT_MS = 10_000;
// Prefetch lookups at once: they wait on the network and the disk, not on a core.
const PREFETCH_JOBS = 8;
// Calls seen that cannot be warmed, remembered to count each once.
const PASSED_MAX = 10_000;

const counters = () => ({
  warmed: 0,
  used: 0,
  never_used: 0,
  fresh: 0,
  prefetched: 0,
  failed: 0,
  not_stored: 0,
  cancelled: 0,
  left_to_build: 0,
  cpu_ms: 0,
});

export class Live {
  private readonly journal: Journal;
  private readonly now: () => number;
  private readonly jobs: number;
  private readonly debounceMs: number;
  private readonly capMs: number;
  private readonly quietMs: number;
  private readonly timeoutMs: number;
  private changes = new Map<string, number>(); // file -> when its last event came
  private firstChange = 0;
  private burst = 0; // events since burstStart
  private burstStart = 0;
  private stormUntil = 0; // in a storm until then (moved on by every event)
  private holding: string | undefined; // why settled changes are not warmed yet
  private starting = false; // the journal's inputs not compared with the disk yet
  private missingSince = 0; // when a changed input was first seen missing (0: none is)
  private gitDirs = new Map<string, string | null>(); // a compile's directory -> its repository's git dir
  private debounce: NodeJS.Timeout | undefined;
  private resume: NodeJS.Timeout | undefined;
  private toFetch = new Map<string, number>(); // command id -> when its newest changed input changed, to look up first
  private fetching: Promise<void> | undefined; // the prefetch step, while it runs
  private inFetch = 0;
  private queue = new Map<string, number>(); // command id -> when its newest changed input changed, to compile
  private order: [string, number][] = []; // queue, oldest change first (taken from the end)
  private orderStale = false;
  private running = new Map<string, Job>();
  private byKey = new Map<string, Job>();
  private byDir = new Map<string, Job>();
  private lastBuild = -Infinity;
  private counts = counters();
  private round: Round | undefined; // the current one, or the last one once over
  private skipped: Partial<Record<LiveSkip, number>> = {};
  private notStored: Partial<Record<NotStoredReason, number>> = {};
  private awaiting = new Map<string, string>(); // warmed result key -> command id, until a build uses it
  private awaitingOf = new Map<string, string>(); // command id -> its warmed result key
  private passed = new Set<string>();
  private waiters = new Set<() => void>();
  private prefix: Promise<{ prefix: string[]; name: string }>;
  private priority = 'unknown';
  private closing: Promise<void> | undefined;

  constructor(private readonly o: LiveOptions) {
    this.now = o.now ?? Date.now;
    this.jobs = o.jobs ?? Math.max(1, os.availableParallelism() - 1);
    this.debounceMs = o.debounceMs ?? 100;
    this.capMs = o.capMs ?? 500;
    this.quietMs = o.quietMs ?? 1000;
    this.timeoutMs = o.timeoutMs ?? 10 * 60_000;
    this.journal = new Journal(o.journalFile, o.log, o.maxCommands);
    this.prefix = idlePrefix().then((p) => {
      this.priority = p.name;
      return p;
    });
    fs.mkdirSync(o.tmpDir, { recursive: true, mode: 0o700 });
    o.watcher.listen({
      changed: (file) => this.event(file),
      entry: () => {},
      reset: () => this.rescan(),
    });
  }

  /** Reads the journal, then (in the background) watches its inputs and warms what changed meanwhile. */
  start(): void {
    this.journal.load();
    this.o.log.info('live mode on', { commands: this.journal.size, inputs: this.journal.files, jobs: this.jobs });
    this.starting = true;
    setImmediate(() => {
      this.starting = false;
      for (const c of this.journal.cwds()) this.gitDirOf(c);
      this.rescan();
      this.settled();
    });
  }

  // ---- what the daemon tells it ----

  /** A build's compile request came: no new warm run for a while. */
  buildActive(): void {
    this.lastBuild = this.now();
  }

  /** A compile the cache passed through: counted once if live mode could not warm it either. */
  passedThrough(req: CompileRequest): void {
    const id = commandId(req.cwd, req.exe, req.argv.slice(1));
    if (this.passed.has(id)) return;
    const unsafe = unsafeOption(req.argv.slice(1));
    if (!unsafe) return;
    if (this.passed.size >= PASSED_MAX) this.passed.clear();
    this.passed.add(id);
    this.skip(unsafe.skip);
  }

  /** The C/C++ front-end used, ran or stored a compile (CcDeps.observe). */
  observe(s: CcSeen): void {
    if (this.closing) return;
    const job = this.byDir.get(path.dirname(path.resolve(s.cwd, s.output)));
    if (job) {
      // A warm run's own entry: the inputs the compiler read this time are the ones to watch.
      if (s.kind === 'stored') {
        const { inputs: _, ms: __, ...cmd } = job.cmd;
        this.watch(s.inputs);
        this.journal.record(cmd, s.inputs);
        if (s.result) this.warmedResult(job.id, s.result);
      }
      return;
    }
    if (path.dirname(path.resolve(s.cwd, s.output)).startsWith(this.o.tmpDir + '/')) return; // a cancelled run's
    const id = commandId(s.cwd, s.exe, s.args);
    if (s.kind === 'hit' && s.result !== undefined && this.awaiting.get(s.result) === id) {
      this.awaiting.delete(s.result);
      this.awaitingOf.delete(id);
      this.counts.used++;
      this.o.unused?.(s.result, true);
    }
    if (s.kind === 'ran') this.unused(id);
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(s.env)) if (KEEP_ENV.has(k)) env[k] = v;
    this.watch(s.inputs);
    this.gitDirOf(s.cwd);
    this.journal.record({ cwd: s.cwd, exe: s.exe, args: s.args, env, seen: this.now(), ...(s.ms ? { ms: s.ms } : {}) }, s.inputs);
  }

  /**
   * A lookup of `directKey` (for the object `output`) is about to read its manifest: when a
   * warm run compiles that key, wait for it, but a build no longer than the compile took last
   * time; then the warm run is cancelled and the build compiles it itself.
   */
  warming(directKey: string, output: string): Promise<void> | undefined {
    const job = this.byKey.get(directKey);
    if (!job) return undefined;
    if (path.dirname(output).startsWith(this.o.tmpDir + '/')) return job.done; // another warm run of the same key
    const bound = job.cmd.ms;
    // Once cancelled the warm run is killed and stores nothing; the build does not wait for it
    // to wind down (a descendant holding its pipes could keep it from ending).
    if (bound <= 0) {
      this.cancel(job, 'build');
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        this.cancel(job, 'build');
        resolve();
      }, bound);
      void job.done.then(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  // ---- changes ----

  // Every event in a watched directory: counted for storms; git's index lock; an input changed.
  private event(file: string): void {
    if (this.closing) return;
    const now = this.now();
    if (now - this.burstStart > 1000) {
      this.burstStart = now;
      this.burst = 0;
    }
    if (++this.burst >= STORM_EVENTS || this.stormUntil > now) this.stormUntil = now + STORM_QUIET_MS;
    if (file.endsWith('/index.lock') && this.changes.size > 0) this.arm(now);
    // A repository made (git init, clone) where none was: looked for again.
    if (file.endsWith('/.git')) for (const [cwd, g] of this.gitDirs) if (g === null) this.gitDirs.delete(cwd);
    this.changed(file, now);
  }

  private changed(file: string, now = this.now()): void {
    if (this.closing || !this.journal.usersOf(file)) return;
    // A new burst, or the first change after a hold (a file written back after a save's gap):
    // its debounce and cap start now, not with the change that began the hold.
    if (this.changes.size === 0 || this.holding) this.firstChange = now;
    this.changes.set(file, now);
    this.arm(now);
  }

  // Settled: no event for debounceMs; or capMs after the first, however busy the files are.
  private arm(now: number): void {
    clearTimeout(this.debounce);
    const wait = Math.max(0, Math.min(this.debounceMs, this.firstChange + this.capMs - now));
    this.debounce = setTimeout(() => this.flush(), wait);
    this.debounce.unref();
  }

  // Looked at again in `ms`, for `why`.
  private hold(ms: number, why: string): void {
    this.holding = why;
    clearTimeout(this.debounce);
    this.debounce = setTimeout(() => this.flush(), ms);
    this.debounce.unref();
  }

  // The git directory of the repository `cwd` is in (a worktree's `.git` file followed), watched
  // so that its index lock is seen come and go; null outside a repository.
  private gitDirOf(cwd: string): string | null {
    const known = this.gitDirs.get(cwd);
    if (known !== undefined) return known;
    let found: string | null = null;
    for (let d = cwd; ; d = path.dirname(d)) {
      const dot = path.join(d, '.git');
      try {
        const st = fs.statSync(dot);
        if (st.isDirectory()) found = dot;
        else {
          const m = /^gitdir: (.+)$/m.exec(fs.readFileSync(dot, 'utf8'));
          if (m) found = path.resolve(d, m[1].trim());
        }
      } catch {
        // not here
      }
      if (found || path.dirname(d) === d) break;
    }
    this.gitDirs.set(cwd, found);
    if (found) this.o.watcher.ensure(found);
    return found;
  }

  private gitLock(): string | undefined {
    const dirs = new Set<string>();
    for (const cwd of this.journal.cwds()) {
      const g = this.gitDirOf(cwd);
      if (g) dirs.add(g);
    }
    for (const g of dirs) if (fs.existsSync(path.join(g, 'index.lock'))) return path.join(g, 'index.lock');
    return undefined;
  }

  // Watched whether or not lookups use the watcher (watch_inputs): a map lookup once watched.
  private watch(inputs: [string, string][] | undefined): void {
    for (const [f] of inputs ?? []) this.o.watcher.ensure(path.dirname(f));
  }

  // Inputs whose content is not what the journal last recorded (at start: what changed while no
  // daemon watched; after lost events: everything they could have hidden).
  private rescan(): void {
    if (this.closing) return;
    let n = 0;
    for (const [file, hash] of this.journal.recorded()) {
      this.o.watcher.ensure(path.dirname(file));
      if (this.o.hashes.get(file)?.hash !== hash) {
        this.changed(file);
        n++;
      }
    }
    if (n) this.o.log.info('live: inputs changed while unwatched', { files: n });
  }

  private flush(): void {
    this.debounce = undefined;
    if (this.closing) return;
    const now = this.now();
    if (this.stormUntil > now) return this.hold(this.stormUntil - now, `a storm of changes (${this.changes.size} inputs so far)`);
    const lock = this.gitLock();
    if (lock) return this.hold(LOCK_POLL_MS, `git is changing the tree (${lock})`);
    const missing = [...this.changes.keys()].find((f) => !fs.existsSync(f));
    if (missing) {
      if (this.missingSince === 0) this.missingSince = now;
      if (now - this.missingSince < MISSING_WAIT_MS) return this.hold(LOCK_POLL_MS, `being saved: ${missing}`);
    }
    this.missingSince = 0;
    this.holding = undefined;
    const changes = [...this.changes];
    this.changes.clear();
    const when = new Map<string, number>();
    for (const [file, at] of changes) {
      // Hashed now, so that the warm run's lookup (and the build's) does not wait for it.
      this.o.hashes.get(file);
      for (const id of this.journal.usersOf(file) ?? []) when.set(id, Math.max(when.get(id) ?? 0, at));
    }
    if (when.size > 0 && (!this.round || this.round.end !== undefined))
      this.round = { start: this.firstChange, ids: new Set(), done: new Map(), prefetched: this.counts.prefetched, warmed: this.counts.warmed };
    for (const [id, at] of when) {
      this.round?.ids.add(id);
      this.round?.done.delete(id);
      const job = this.running.get(id);
      if (job) this.cancel(job, 'newer');
      if (this.o.sharedHits) {
        // Its key changed: looked up in the shared tiers again before it is compiled.
        this.toFetch.set(id, at);
        this.queue.delete(id);
      } else {
        this.queue.set(id, at);
        this.order.push([id, at]);
      }
    }
    this.orderStale = true;
    if (this.toFetch.size > 0) this.prefetch();
    else this.pump();
  }

  // ---- prefetch: the new keys looked up in the team cache and peers before anything is compiled ----

  private prefetch(): void {
    if (this.fetching || this.closing) return;
    this.fetching = (async () => {
      while (this.toFetch.size > 0 && !this.closing) {
        const batch = [...this.toFetch].sort((a, b) => b[1] - a[1]); // the newest change first
        this.toFetch.clear();
        let next = 0;
        const worker = async () => {
          while (next < batch.length && !this.closing) {
            const [id, at] = batch[next++];
            await this.fetch1(id, at);
          }
        };
        await Promise.all(Array.from({ length: Math.min(this.o.prefetchJobs ?? PREFETCH_JOBS, batch.length) }, worker));
      }
    })().finally(() => {
      this.fetching = undefined;
      this.pump();
    });
  }

  // One command's lookup: a hit is fetched into the local store (nothing to compile); a miss
  // is queued to compile, unless a newer change came meanwhile (then looked up again with it).
  private async fetch1(id: string, at: number): Promise<void> {
    const cmd = this.journal.get(id);
    if (!cmd) return this.ended(id, 'not_cached');
    const dir = fs.mkdtempSync(path.join(this.o.tmpDir, 'f-'));
    this.inFetch++;
    let compile = true;
    try {
      const looked = await this.look(cmd, dir, true);
      if (looked?.kind === 'miss') await this.release(looked);
      else {
        compile = false; // a hit, or not warmed (counted)
        if (!this.toFetch.has(id)) this.ended(id, looked ? 'ok' : 'not_cached');
      }
    } catch (err) {
      this.o.log.warn('live: prefetch lookup failed', { err, source: cmd.inputs[0] });
    } finally {
      this.inFetch--;
      fs.rm(dir, { recursive: true, force: true }, () => {});
    }
    if (!compile || this.toFetch.has(id) || this.closing) return;
    this.queue.set(id, at);
    this.order.push([id, at]);
    this.orderStale = true;
  }

  // ---- running ----

  private buildRunning(): boolean {
    if (this.now() - this.lastBuild < this.quietMs) return true;
    const since = this.now() - BUILD_PENDING_MS;
    for (const p of this.o.pending.values()) if (p.created > since) return true;
    return false;
  }

  private pump(): void {
    if (this.closing) return;
    // Compiles start once the prefetch step is over: what it fetches is not compiled.
    if (this.fetching) return;
    if (this.queue.size > 0 && this.running.size < this.jobs && this.buildRunning()) {
      if (!this.resume) {
        this.resume = setTimeout(() => {
          this.resume = undefined;
          this.pump();
        }, this.quietMs);
        this.resume.unref();
      }
      return;
    }
    if (this.orderStale) {
      this.order = this.order.filter(([id, at]) => this.queue.get(id) === at).sort((a, b) => a[1] - b[1]);
      this.orderStale = false;
    }
    // A command still running (cancelled for a newer change, not ended yet) waits its turn.
    const later: [string, number][] = [];
    while (this.running.size < this.jobs && this.order.length > 0) {
      const next = this.order.pop()!;
      const [id, at] = next;
      if (this.queue.get(id) !== at) continue;
      if (this.running.has(id)) {
        later.push(next);
        continue;
      }
      this.queue.delete(id);
      const cmd = this.journal.get(id);
      if (cmd) this.start1(id, cmd);
      else this.ended(id, 'not_cached'); // forgotten (the journal's bound)
    }
    this.order.push(...later.reverse());
    this.settled();
  }

  private start1(id: string, cmd: LiveCommand): void {
    const dir = fs.mkdtempSync(path.join(this.o.tmpDir, 'w-'));
    const job: Job = { id, cmd, dir, ac: new AbortController(), done: Promise.resolve() };
    this.running.set(id, job);
    this.byDir.set(dir, job);
    job.done = this.warm(job)
      .catch((err) => {
        job.end = 'not_cached';
        this.o.log.warn('live: warm run failed', { err, source: cmd.inputs[0] });
      })
      .finally(() => {
        if (job.end && !this.queue.has(id) && !this.toFetch.has(id)) this.ended(id, job.end);
        this.running.delete(id);
        this.byDir.delete(dir);
        if (job.key && this.byKey.get(job.key) === job) this.byKey.delete(job.key);
        fs.rm(dir, { recursive: true, force: true }, () => {});
        this.pump();
      });
  }

  private cancel(job: Job, why: Job['why']): void {
    if (job.ac.signal.aborted) return;
    job.why = why;
    job.ac.abort();
  }

  // The recorded call's lookup, its outputs sent to `dir`, as a shim's would be: a hit is
  // counted (fresh; prefetched when the shared tiers answered during it), as is a call that
  // cannot be warmed (undefined then).
  // With `shared`, a local manifest without these inputs is looked up in the shared tiers too.
  private async look(cmd: LiveCommand, dir: string, askShared = false): Promise<Outcome<unknown> | undefined> {
    const r = redirectOutputs(cmd.args, cmd.cwd, cmd.exe, cmd.env, dir);
    if ('skip' in r) {
      this.skip(r.skip);
      return undefined;
    }
    const req: CompileRequest = {
      t: 'compile',
      v: PROTOCOL_VERSION,
      build: BUILD_ID,
      cwd: cmd.cwd,
      exe: cmd.exe,
      argv: [cmd.exe, ...r.args],
      env: Object.entries(cmd.env).map(([k, v]) => `${k}=${v}`),
      tty: false,
      wf: true,
      sp: false,
      ow: false,
      sx: false,
    };
    const shared = this.o.sharedHits?.() ?? 0;
    const outcome: Outcome<unknown> = await this.o.cc.lookup(req, cmd.env, { shared: askShared });
    if (outcome.kind === 'hit') {
      this.counts.fresh++;
      // Found through the team cache or a peer (approximate: other lookups at the same moment,
      // the prefetch step's or a build's, count too).
      if ((this.o.sharedHits?.() ?? 0) > shared) this.counts.prefetched++;
    } else if (outcome.kind !== 'miss') {
      this.skip('uncacheable');
      return undefined;
    }
    return outcome;
  }

  // A miss not compiled after all: through finish, so that what the lookup made for the
  // compile (a depfile name) is let go.
  private async release(outcome: Extract<Outcome<unknown>, { kind: 'miss' }>): Promise<void> {
    const frontend = outcome.frontend ?? this.o.cc;
    await frontend.finish(outcome.pending, { t: 'done', id: 'live', code: 1, out: Buffer.alloc(0), err: Buffer.alloc(0), nocache: true, nr: false });
  }

  private async warm(job: Job): Promise<void> {
    const { cmd } = job;
    const outcome = await this.look(cmd, job.dir);
    if (outcome?.kind !== 'miss') {
      job.end = outcome ? 'ok' : 'not_cached';
      return;
    }
    const frontend = outcome.frontend ?? this.o.cc;
    const key = (outcome.pending as { directKey?: string }).directKey;
    const giveUp = () => this.release(outcome);
    if (job.ac.signal.aborted || (key && (this.building(key) || this.byKey.has(key)))) {
      this.countCancel(job, key !== undefined && !job.ac.signal.aborted);
      return giveUp();
    }
    if (key) this.byKey.set(key, job);
    job.key = key;
    const { prefix } = await this.prefix;
    const t0 = this.now();
    // PWD: the build's cwd as the shim saw it (its PWD when that names the same directory).
    // gcc and clang record that logical path as the debug info's directory; without it the
    // warm run would record the physical one and make an object the build's compile would not.
    const env: Record<string, string> = { ...cmd.env, PWD: cmd.cwd, VRIFT_DISABLE: '1', VRIFT_HOME: this.o.home };
    for (const kv of outcome.env ?? []) {
      const i = kv.indexOf('=');
      if (i > 0) env[kv.slice(0, i)] = kv.slice(i + 1);
    }
    const ran = await runIdle(outcome.argv, { cwd: cmd.cwd, env, prefix, signal: job.ac.signal, timeoutMs: this.timeoutMs });
    this.counts.cpu_ms += ran.cpuMs;
    if (job.ac.signal.aborted || ran.killed) {
      this.countCancel(job, false);
      return giveUp();
    }
    this.journal.setMs(job.id, this.now() - t0);
    let fin: Finish = await frontend.finish(outcome.pending, {
      t: 'done',
      id: 'live',
      code: ran.code,
      out: ran.out,
      err: ran.err,
      nocache: ran.truncated,
      nr: false,
    });
    // An entry built when the build pauses is built now: the next build should find it.
    if (fin.stored === 'later' && key) await this.o.cc.settle(key);
    while (fin.stored === 'later') fin = await fin.result;
    job.end = fin.stored ? 'ok' : fin.reason === 'compile_failed' ? 'failed' : 'not_cached';
    if (fin.stored) {
      await fin.write;
      this.counts.warmed++;
      const result = this.awaitingOf.get(job.id);
      if (result !== undefined) this.o.unused?.(result, false);
    } else if (fin.reason === 'compile_failed') this.counts.failed++;
    else {
      this.counts.not_stored++;
      this.notStored[fin.reason] = (this.notStored[fin.reason] ?? 0) + 1;
    }
  }

  private countCancel(job: Job, taken: boolean): void {
    if (taken || job.why === 'build') {
      this.counts.left_to_build++;
      job.end = 'ok'; // the build compiles it
    } else this.counts.cancelled++;
  }

  private ended(id: string, how: RoundEnd): void {
    if (this.round?.end === undefined && this.round?.ids.has(id)) this.round.done.set(id, how);
  }

  // A build is compiling this key (answered "run it", no report yet).
  private building(key: string): boolean {
    for (const p of this.o.pending.values()) if ((p.state as { directKey?: string } | undefined)?.directKey === key) return true;
    return false;
  }

  private warmedResult(id: string, result: string): void {
    this.unused(id);
    this.awaiting.set(result, id);
    this.awaitingOf.set(id, result);
  }

  // The command's warmed result will not be used: a build compiled it anyway, or it was warmed again.
  private unused(id: string): void {
    const prev = this.awaitingOf.get(id);
    if (prev === undefined) return;
    this.awaitingOf.delete(id);
    this.awaiting.delete(prev);
    this.counts.never_used++;
  }

  private skip(why: LiveSkip): void {
    this.skipped[why] = (this.skipped[why] ?? 0) + 1;
  }

  // ---- status ----

  private busy(): boolean {
    return this.starting || this.changes.size > 0 || this.toFetch.size > 0 || this.fetching !== undefined || this.queue.size > 0 || this.running.size > 0;
  }

  private settled(): void {
    if (this.busy()) return;
    if (this.round && this.round.end === undefined) this.round.end = this.now();
    for (const w of this.waiters) w();
    this.waiters.clear();
  }

  /** Resolves true once nothing is pending (no change to settle, nothing queued or running), false after `ms`. */
  wait(ms: number): Promise<boolean> {
    if (!this.busy()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        resolve(true);
      };
      const t = setTimeout(() => {
        this.waiters.delete(done);
        resolve(false);
      }, ms);
      this.waiters.add(done);
    });
  }

  status(): LiveStatus {
    const paused = this.queue.size > 0 && this.running.size === 0 && this.buildRunning();
    const why = this.holding && this.changes.size > 0 ? this.holding : paused ? 'a build is sending compiles' : undefined;
    return {
      state: why ? 'suspended' : this.busy() ? 'warming' : 'idle',
      ...(why ? { why } : {}),
      changed: this.changes.size,
      prefetching: this.toFetch.size + this.inFetch,
      queued: this.queue.size,
      running: this.running.size,
      running_sources: [...this.running.values()].map((j) => j.cmd.inputs[0] ?? j.cmd.args.join(' ')),
      ...(this.round ? { round: this.roundStatus(this.round) } : {}),
      jobs: this.jobs,
      priority: this.priority,
      commands: this.journal.size,
      inputs: this.journal.files,
      ...this.counts,
      awaiting_use: this.awaiting.size,
      skipped: { ...this.skipped },
      not_stored_reasons: { ...this.notStored },
    };
  }

  private roundStatus(r: Round): NonNullable<LiveStatus['round']> {
    let failed = 0;
    let notCached = 0;
    for (const how of r.done.values()) {
      if (how === 'failed') failed++;
      else if (how === 'not_cached') notCached++;
    }
    return {
      compiles: r.ids.size,
      done: r.done.size,
      warmed: this.counts.warmed - r.warmed,
      prefetched: this.counts.prefetched - r.prefetched,
      failed,
      not_cached: notCached,
      ms: (r.end ?? this.now()) - r.start,
      over: r.end !== undefined,
    };
  }

  /** Cancels warm runs, waits for them to end, saves the journal. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      clearTimeout(this.debounce);
      clearTimeout(this.resume);
      this.queue.clear();
      this.toFetch.clear();
      this.order = [];
      this.changes.clear();
      const jobs = [...this.running.values()];
      for (const j of jobs) this.cancel(j, 'close');
      await Promise.allSettled([...jobs.map((j) => j.done), this.fetching]);
      for (const w of this.waiters) w();
      this.waiters.clear();
      this.journal.close();
    })();
    return this.closing;
  }
}
