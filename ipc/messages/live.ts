import { VriftError } from '../errors.js';
import { int } from './fields.js';

// live: live mode's state (`vrift live status`), or, with op 'wait', the same once nothing is
// pending (no change waiting to settle, no warm run queued or running) or `timeout_ms` passed.
export interface LiveRequest {
  t: 'live';
  op: 'status' | 'wait';
  timeout_ms?: number;
}
export interface LiveReply {
  t: 'live';
  /** false when the daemon runs without live mode. */
  enabled: boolean;
  /** Nothing pending (for wait: it settled within the timeout). */
  settled: boolean;
  status?: LiveStatus;
}

/** What `vrift live status --json` prints (counters since the daemon started). */
export interface LiveStatus {
  state: 'idle' | 'warming' | 'suspended';
  why?: string;
  /** Changed inputs waiting for the changes to settle. */
  changed: number;
  /** Compiles whose new keys are being looked up in the team cache and peers (the prefetch step, before any compile). */
  prefetching: number;
  /**
   * The latest batch of changes (from its first change until nothing is pending): its
   * compiles, how many are done, and of those how many failed or cannot be cached (the next
   * build compiles those); `over` once nothing is pending, `ms` until then.
   */
  round?: { compiles: number; done: number; warmed: number; prefetched: number; failed: number; not_cached: number; ms: number; over: boolean };
  /** Compiles waiting to be warmed. */
  queued: number;
  running: number;
  /** The source of each compile being warmed now. */
  running_sources: string[];
  jobs: number;
  /** How warm runs are scheduled: SCHED_IDLE, nice 19, or normal. */
  priority: string;
  /** Compiles recorded and the inputs they read (watched). */
  commands: number;
  inputs: number;
  /** Warm runs whose entry was stored. */
  warmed: number;
  /** ... and that a build then used. */
  used: number;
  /** ... and that were replaced (warmed again, or compiled by a build) before any build used them. */
  never_used: number;
  awaiting_use: number;
  /** Warm lookups that found the entry there already: nothing to compile. */
  fresh: number;
  /** ... of those, answered by the team cache or a LAN peer (fetched into the local store). */
  prefetched: number;
  /** Warm runs whose compile failed: nothing stored. */
  failed: number;
  not_stored: number;
  /** Warm runs ended for a newer change of their inputs (run again after it). */
  cancelled: number;
  /** Warm runs given up because a build compiled the same key. */
  left_to_build: number;
  cpu_ms: number;
  skipped: Record<string, number>;
  not_stored_reasons?: Record<string, number>;
}

export function parseLive(m: Record<string, unknown>): LiveRequest {
  const op = m.op;
  if (op !== 'status' && op !== 'wait') throw new VriftError('EBADMSG', "field 'op' must be 'status' or 'wait'", { fields: { field: 'op' } });
  const timeout = m.timeout_ms === undefined || m.timeout_ms === null ? undefined : int(m, 'timeout_ms');
  return { t: 'live', op, ...(timeout !== undefined ? { timeout_ms: timeout } : {}) };
}
