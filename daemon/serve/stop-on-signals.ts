import type { ChannelLogger } from '../log.js';

export interface Stoppable {
  close(): Promise<void>;
  /** What a forced exit would cut (requests under way, the step close() is at). */
  pending(): Record<string, unknown>;
  /** How long close() lets requests under way finish before it cuts their connections. */
  readonly drainMs: number;
}

export interface StopOptions {
  server: Stoppable;
  log: ChannelLogger;
  /** process.exit, in the server's process. */
  exit: (code: number) => void;
  /** How long past the server's drainMs a stop may still run before it is cut. */
  marginMs: number;
}

/**
 * How `vrift serve` stops; returns what to call on each signal (or without one: `vrift serve`
 * is gone). The first drains: requests under way (an upload half sent) finish, bounded by
 * close()'s own deadline, then exit 0. The second is ignored rather than ending the drain: a
 * cgroup kill (systemctl stop, a CI job's teardown) sends SIGTERM to every process, so the
 * server gets it twice, once directly and once passed on by `vrift serve`. A third (someone
 * insisting: a Ctrl-C reaches `vrift serve` only, which passes it on once), or a drain still
 * running marginMs past close()'s deadline (a store that does not let go), ends it at once:
 * exit 1, the log saying what was cut.
 */
export function stopOnSignals(o: StopOptions): (sig?: NodeJS.Signals) => void {
  let stopping = false;
  let signals = 0;
  let deadline: NodeJS.Timeout | undefined;
  const end = (code: number) => {
    clearTimeout(deadline);
    o.exit(code);
  };
  const cut = (why: string) => {
    o.log.error('drain cut short: exiting before it finished', { why, ...o.server.pending() });
    end(1);
  };
  return (sig) => {
    if (sig) signals++;
    if (stopping) {
      if (!sig) return;
      if (signals >= 3) return cut(`${sig}: a third signal while stopping`);
      o.log.info('signal ignored: already stopping', { signal: sig, note: 'a third signal ends the drain at once' });
      return;
    }
    stopping = true;
    if (sig) o.log.info('stopping on signal', { signal: sig });
    const ms = o.server.drainMs + o.marginMs;
    deadline = setTimeout(() => cut(`still draining ${ms} ms after the stop`), ms);
    o.server.close().then(
      () => end(0),
      (e) => {
        o.log.error('stop failed', { err: e });
        end(1);
      },
    );
  };
}
