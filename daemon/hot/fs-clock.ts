import fs from 'node:fs';
import path from 'node:path';
import { loadAddon } from './watcher.js';

// A compile's start as the filesystem stamps it, for the "input changed during or just before
// the compile" guard: file timestamps compared with the wall clock disagree by up to a tick or
// two of the kernel's coarse clock, so a header written a millisecond before the compile
// looked written during it. Like git's racy-index check, the start is the timestamp of a
// file the daemon writes itself (its marker in run/), compared like with like.
//
// The marker is written twice with a stat between: on kernels with multigrain timestamps
// (6.13+, ext4/xfs/btrfs/tmpfs) the second write, in the same tick as the first, gets a
// fine-grained stamp and raises the kernel's floor for every later stamp. So on the marker's
// filesystem every file written before the start is stamped strictly earlier and every file
// written after it no earlier. Without multigrain both writes share the tick's stamp, and a
// file written in that tick compares as not earlier: refused, never wrongly taken.
// Another filesystem may stamp from the coarse clock alone, behind the marker's fine stamp:
// its files are compared with the start less the coarse clock's lag (slackMs).

/** A moment on the filesystems' clock: what a file written after it is stamped at least. */
export interface FsTime {
  /** The marker's mtime: on device `dev`, a file written after this is stamped no earlier. */
  ms: number;
  /** The marker's device; -1 when the marker could not be written (wall clock instead). */
  dev: number;
  /** How much earlier than `ms` a file on another device may be stamped though written after. */
  slackMs: number;
}

/** Stamps at or after this, on `dev`, may have been written after `t`. */
export function sinceMs(t: FsTime, dev: number): number {
  return dev === t.dev ? t.ms : t.ms - t.slackMs;
}

/** Whether a file with these times was last changed (content or inode) provably before `t`. */
export function changedBefore(t: FsTime, st: { dev: number; mtimeMs: number; ctimeMs: number }): boolean {
  const since = sinceMs(t, st.dev);
  return st.mtimeMs < since && st.ctimeMs < since;
}

/** Whether an output stamped `mtimeMs` (whole ms or finer) on `dev` was provably written before `t`: not by the compile. */
export function writtenBefore(t: FsTime, dev: number, mtimeMs: number): boolean {
  return Math.floor(mtimeMs) < Math.floor(sinceMs(t, dev));
}

// How far a file's stamp may lag the time it was written: stamps come from a coarse clock
// that lags real time by about a tick (4 ms at HZ=250, 10 ms at HZ=100) and a little more
// (5.49 ms measured at HZ=250 on the benchmark VM). Two ticks and a millisecond, or 20 ms
// when the tick is unknown.
export function coarseSlackMs(tickNs: number | undefined): number {
  return tickNs !== undefined && tickNs > 0 && tickNs <= 12e6 ? 2 * Math.ceil(tickNs / 1e6) + 1 : 20;
}

const BYTE = Buffer.from('.');

export class FsClock {
  private fd: number;

  private constructor(
    fd: number,
    private readonly slackMs: number,
    private readonly wall: () => number,
  ) {
    this.fd = fd;
  }

  /** The clock on the marker `dir/fs-clock` (created); without it, the wall clock less the slack. */
  static open(dir: string, opts: { wall?: () => number; slackMs?: number } = {}): FsClock {
    const slack = opts.slackMs ?? coarseSlackMs(loadAddon()?.coarseClockNs?.());
    let fd = -1;
    try {
      fd = fs.openSync(path.join(dir, 'fs-clock'), fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW, 0o600);
    } catch {
      // read-only or gone: the wall clock, with the slack for every device
    }
    return new FsClock(fd, slack, opts.wall ?? Date.now);
  }

  /** Now, as a file written now would be stamped (see above). Four system calls. */
  now(): FsTime {
    if (this.fd >= 0) {
      try {
        fs.writeSync(this.fd, BYTE, 0, 1, 0);
        fs.fstatSync(this.fd); // the stat makes the next write in this tick take a fine-grained stamp
        fs.writeSync(this.fd, BYTE, 0, 1, 0);
        const st = fs.fstatSync(this.fd);
        return { ms: st.mtimeMs, dev: st.dev, slackMs: this.slackMs };
      } catch {
        // e.g. a full disk: the wall clock for this one
      }
    }
    return { ms: this.wall(), dev: -1, slackMs: this.slackMs };
  }

  close(): void {
    if (this.fd < 0) return;
    try {
      fs.closeSync(this.fd);
    } catch {
      // already closed
    }
    this.fd = -1;
  }
}
