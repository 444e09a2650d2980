import fs from 'node:fs';
import path from 'node:path';
import type { NotStoredReason, UncacheableReason } from '../ipc/reasons.js';

// Counters that survive daemon restarts: kept in memory, written (temp + rename) to
// stats.json at most once a second when they changed, and on close.
export interface Counters {
  requests: number;
  hits: number;
  misses: number;
  // Misses whose shim did not wait for the daemon after the compile (messages/done.ts `nr`).
  one_way_reports: number;
  // Commands with several sources, each compile (and the link) then a request of its own.
  split_commands: number;
  compile_failed: number;
  uncacheable: Record<string, number>;
  not_stored: Record<string, number>;
  errors: Record<string, number>;
  stored: number;
  stored_bytes: number;
  hit_bytes: number;
  since: string;
}

export function emptyCounters(now = new Date()): Counters {
  return {
    requests: 0,
    hits: 0,
    misses: 0,
    one_way_reports: 0,
    split_commands: 0,
    compile_failed: 0,
    uncacheable: {},
    not_stored: {},
    errors: {},
    stored: 0,
    stored_bytes: 0,
    hit_bytes: 0,
    since: now.toISOString(),
  };
}

type NumKey = 'requests' | 'hits' | 'misses' | 'one_way_reports' | 'split_commands' | 'compile_failed' | 'stored' | 'stored_bytes' | 'hit_bytes';
type MapKey = 'uncacheable' | 'not_stored' | 'errors';

export class Stats {
  private total: Counters;
  private sessions = new Map<string, Counters>();
  private dirty = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly file: string) {
    this.total = Stats.read(file) ?? emptyCounters();
  }

  static read(file: string): Counters | undefined {
    try {
      const parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
      return { ...emptyCounters(), ...parsed };
    } catch {
      return undefined; // missing or corrupt stats never stop the daemon
    }
  }

  private each(session: string | undefined, f: (c: Counters) => void) {
    f(this.total);
    if (session) {
      let s = this.sessions.get(session);
      if (!s) this.sessions.set(session, (s = emptyCounters()));
      f(s);
    }
    this.markDirty();
  }

  add(key: NumKey, session?: string, n = 1) {
    // Never below zero: a failed compile takes back its miss, maybe after a `stats --zero`.
    this.each(session, (c) => (c[key] = Math.max(0, c[key] + n)));
  }

  // Each group counts the names of its registry (ipc/reasons.ts); errors by code: a
  // VriftError's (ipc/errors.ts), or a system error's (ENOSPC) from a store write.
  reason(key: 'uncacheable', reason: UncacheableReason, session?: string): void;
  reason(key: 'not_stored', reason: NotStoredReason, session?: string): void;
  reason(key: 'errors', reason: string, session?: string): void;
  reason(key: MapKey, reason: string, session?: string) {
    this.each(session, (c) => (c[key][reason] = (c[key][reason] ?? 0) + 1));
  }

  get(session?: string): Counters {
    const c = session ? (this.sessions.get(session) ?? emptyCounters()) : this.total;
    return structuredClone(c);
  }

  zero() {
    this.total = emptyCounters();
    this.sessions.clear();
    this.markDirty();
  }

  private markDirty() {
    this.dirty = true;
    if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.flush();
      }, 1000);
      this.timer.unref();
    }
  }

  flush() {
    if (!this.dirty) return;
    this.dirty = false;
    try {
      fs.mkdirSync(path.dirname(this.file), { recursive: true });
      const tmp = `${this.file}.${process.pid}.tmp`;
      fs.writeFileSync(tmp, JSON.stringify(this.total));
      fs.renameSync(tmp, this.file);
    } catch {
      this.dirty = true; // full disk: keep counting in memory, try again later
    }
  }

  close(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.flush();
    return Promise.resolve();
  }
}
