import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import { ipcCall } from '../ipc/client.js';
import type { LiveReply, LiveStatus } from '../ipc/messages/live.js';
import { durationArg } from '../config/arg-parsers.js';

export interface LiveCommandDeps {
  endpoint: () => string;
  /** Starts the daemon unless one runs (it reads its journal and warms what changed). */
  ensureDaemon: () => Promise<unknown>;
  out: (s: string) => void;
  err: (s: string) => void;
  fail: (msg: string) => never;
}

// Each wait asks the daemon for at most this long, then again: one request never outlives
// the socket's patience.
const WAIT_SLICE_MS = 30_000;

const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** The last batch of changes, once nothing is pending: whether the next build is all hits. */
export function readyLine(r: NonNullable<LiveStatus['round']>): string {
  const took = secs(r.ms);
  const left = r.failed + r.not_cached;
  if (left === 0)
    return `ready: next build all hits (warmed ${r.compiles}${r.prefetched ? `, ${r.prefetched} of them fetched from the team cache` : ''} in ${took})`;
  const why = [r.failed ? `${r.failed} failing` : '', r.not_cached ? `${r.not_cached} not cacheable` : ''].filter(Boolean).join(', ');
  return `ready: warmed ${r.compiles - left} of ${r.compiles} in ${took}; the next build compiles ${left} (${why})`;
}

/** live mode's state in a line: ready (and what), warming K of N, suspended (why), idle. */
export function stateLine(s: LiveStatus): string {
  const r = s.round;
  if (s.state === 'suspended') return `suspended: ${s.why ?? ''} (${s.queued} queued)`;
  if (s.state === 'warming') {
    const settling = s.changed ? `${s.changed} changed files settling` : '';
    if (!r || r.over) return `warming: ${settling || 'starting'}`;
    const extra = [s.prefetching ? `${s.prefetching} being looked up in the team cache` : '', settling].filter(Boolean).join(', ');
    return `warming: ${r.done} of ${r.compiles}${extra ? ` (${extra})` : ''}`;
  }
  return r ? readyLine(r) : `idle: watching ${s.commands} compiles`;
}

/** `vrift live status` as people read it. */
export function formatLive(s: LiveStatus | undefined, enabled: boolean): string {
  if (!enabled || !s) return 'live mode is off (set live = true in $VRIFT_HOME/config.toml, or VRIFT_LIVE=1 where the daemon starts)\n';
  const lines = [
    `live: ${stateLine(s)}`,
    `  watching     ${s.commands} compiles, ${s.inputs} inputs; ${s.jobs} at once at ${s.priority} priority`,
    `  warmed       ${s.warmed}   used by a build ${s.used}   never used ${s.never_used}   awaiting use ${s.awaiting_use}`,
    `  also         ${s.fresh} already cached (${s.prefetched} fetched from the team cache or peers), ${s.failed} failed (nothing stored), ${s.not_stored} not stored, ${s.cancelled} cancelled for a newer change, ${s.left_to_build} left to a build`,
    `  cpu          ${secs(s.cpu_ms)}`,
  ];
  const skipped = Object.entries(s.skipped);
  if (skipped.length) lines.push(`  not warmed   ${skipped.map(([k, n]) => `${k} ${n}`).join(', ')}   (why: docs/reasons.md)`);
  return lines.join('\n') + '\n';
}

export function registerLive(program: Command, d: LiveCommandDeps): void {
  const live = program
    .command('live')
    .description('live mode (live = true): what the daemon watches and warms in the background')
    .addHelpText(
      'after',
      '\nLive mode records every C/C++ compile a build makes and, when its inputs change, compiles it\nagain at idle priority into a private directory, so the next build is all hits. See docs/live.md.',
    );
  live
    .command('status')
    .description('idle, warming N or suspended (and why); counters since the daemon started')
    .option('--json', 'machine-readable JSON')
    .action(async (o: { json?: boolean }) => {
      await d.ensureDaemon().catch((e) => d.fail((e as Error).message));
      const r = (await ipcCall(d.endpoint(), { t: 'live', op: 'status' }, 10_000).catch((e) => d.fail((e as Error).message))) as LiveReply;
      if (o.json) d.out(JSON.stringify({ enabled: r.enabled, ...(r.status ?? {}) }, null, 2) + '\n');
      else d.out(formatLive(r.status, r.enabled));
    });
  live
    .command('wait')
    .description('wait until ready (no change settling, nothing queued or warming) and say so: exit 0, or 1 on timeout')
    .option('--timeout <duration>', 'give up after this long (e.g. 30s, 2m; a bare number is seconds); default: no limit', durationArg)
    .action(async (o: { timeout?: number }) => {
      await d.ensureDaemon().catch((e) => d.fail((e as Error).message));
      const deadline = o.timeout === undefined ? Infinity : Date.now() + o.timeout;
      for (;;) {
        const slice = Math.max(0, Math.min(WAIT_SLICE_MS, deadline - Date.now()));
        const r = (await ipcCall(d.endpoint(), { t: 'live', op: 'wait', timeout_ms: slice }, slice + 10_000).catch((e) =>
          d.fail((e as Error).message),
        )) as LiveReply;
        if (!r.enabled) {
          d.err('vrift: live mode is off: nothing to wait for\n');
          return;
        }
        if (r.settled) {
          if (r.status) d.err(`vrift: ${stateLine(r.status)}\n`);
          return;
        }
        if (Date.now() >= deadline) {
          d.err(`vrift: still ${r.status ? stateLine(r.status) : 'warming'}\n`);
          process.exitCode = 1;
          return;
        }
      }
    });
}

/** The daemon's live reply, or undefined when it does not answer. */
export function liveStatusOf(endpoint: string): Promise<LiveReply | undefined> {
  return ipcCall(endpoint, { t: 'live', op: 'status' }, 5000).catch(() => undefined) as Promise<LiveReply | undefined>;
}

// How often `vrift run --live` asks the daemon what it is warming.
const POLL_MS = 200;

/** What `vrift run --live` says between runs. */
export function liveLine(r: LiveReply | undefined, changedSinceRun: boolean, auto: boolean): string {
  if (!r) return 'live: no answer from the daemon';
  if (!r.enabled || !r.status) return 'live mode is off in the running daemon (`vrift daemon stop`, then run again); Enter runs the command again';
  const s = r.status;
  const next = auto ? 'runs again when ready' : 'Enter runs it again';
  if (s.state === 'suspended') return `live: suspended: ${s.why ?? ''} · ${next}`;
  const pending = s.prefetching + s.queued + s.running;
  const round = s.round;
  if (s.changed > 0 || pending > 0) {
    const what = round && !round.over ? `warming ${round.done} of ${round.compiles} compiles` : 'warming';
    return `live: ${s.changed ? `${s.changed} files changed · ` : ''}${what} · ${next}`;
  }
  return changedSinceRun ? `live: ${round ? readyLine(round) : 'ready'} · ${next}` : `live: watching · ${next}`;
}

/**
 * `vrift run --live`: after the first run, a status line (rewritten in place on a terminal,
 * printed when it changes otherwise); a line on stdin (Enter) runs the command again, and with
 * `auto` so does a change once warmed. Ctrl-C (or stdin's end, without `auto`) ends it with the
 * last run's exit code.
 */
export async function liveLoop(o: {
  once: () => Promise<number>;
  auto: boolean;
  status: () => Promise<LiveReply | undefined>;
  input?: NodeJS.ReadableStream;
  out?: NodeJS.WriteStream;
}): Promise<number> {
  const input = o.input ?? process.stdin;
  const out = o.out ?? process.stderr;
  let code = await o.once();
  let enter = false;
  let ended = false;
  let stop = false;
  const rl = createInterface({ input });
  rl.on('line', () => void (enter = true));
  rl.on('close', () => void (ended = true));
  const onInt = () => void (stop = true);
  process.on('SIGINT', onInt);
  let last = '';
  let changed = false;
  let warmedAt = -1;
  const clear = () => {
    if (out.isTTY && last) out.write('\r\x1b[K');
    last = '';
  };
  try {
    while (!stop && !(ended && !o.auto)) {
      const r = await o.status();
      const s = r?.status;
      if (s && (s.changed > 0 || s.prefetching + s.queued + s.running > 0)) changed = true;
      if (s && warmedAt < 0) warmedAt = s.warmed + s.fresh + s.failed;
      // A change that was warmed (or found cached) between two looks counts too.
      if (s && s.warmed + s.fresh + s.failed !== warmedAt) changed = true;
      const line = liveLine(r, changed, o.auto);
      if (line !== last) {
        if (out.isTTY) out.write(`\r\x1b[K${line}`);
        else out.write(`${line}\n`);
        last = line;
      }
      const idle = s?.state === 'idle';
      if (enter || (o.auto && changed && idle)) {
        enter = false;
        changed = false;
        warmedAt = -1;
        clear();
        code = await o.once();
        continue;
      }
      await new Promise((res) => setTimeout(res, POLL_MS));
    }
  } finally {
    clear();
    process.off('SIGINT', onInt);
    rl.close();
  }
  return code;
}
