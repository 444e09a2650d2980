import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { promisify } from 'node:util';
import { VriftError } from '../../ipc/errors.js';
import { loadFuse } from './fuse.js';
import type { FuseOps } from './fuse-types.js';
import { createPassthroughHandlers } from './passthrough.js';

const run = promisify(execFile);

// One FUSE mount over a directory, served by this process (overlay/main.ts: never the
// daemon's, see docs/overlay.md). fuse-native runs every handler on the JS thread, so nothing
// in this process may block on a path inside the mount.

export interface OverlayOptions {
  dir: string;
  /** Handlers over the real directory (`/proc/self/fd/N`); passthrough by default. */
  handlers?: (root: string) => FuseOps;
  /** How long `close()` retries a plain unmount of a busy DIR before it detaches it. */
  busyWaitMs?: number;
}

export class Overlay {
  private closing: Promise<void> | undefined;

  private constructor(
    readonly dir: string,
    private readonly fd: number,
    private readonly busyWaitMs: number,
  ) {}

  /** Opens DIR, then mounts over it; an EFUSE VriftError when FUSE cannot be used here. */
  static async mount(o: OverlayOptions): Promise<Overlay> {
    const Fuse = loadFuse();
    if (Fuse instanceof VriftError) throw Fuse;
    // Opened before the mount covers it: the handlers reach the real DIR through it.
    const fd = fs.openSync(o.dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
    const root = `/proc/self/fd/${fd}`;
    const fuse = new Fuse(o.dir, (o.handlers ?? createPassthroughHandlers)(root), {
      // A lazy fetch may take as long as the network does; fuse-native's 15 s default would fail it.
      timeout: false,
      fsname: 'vrift',
      subtype: 'vrift',
      // The page cache stays valid while a file's size and mtime do: every write goes through us.
      autoCache: true,
    });
    try {
      await new Promise<void>((resolve, reject) => fuse.mount((e) => (e ? reject(e) : resolve())));
    } catch (e) {
      fs.closeSync(fd);
      throw new VriftError('EFUSE', `cannot mount over ${o.dir}: ${(e as Error).message}`, { cause: e });
    }
    return new Overlay(o.dir, fd, o.busyWaitMs ?? 5000);
  }

  /**
   * Unmounts: plainly while a process still has files open inside (retried), then lazily
   * (detached: what those processes hold goes on through the kernel until they let go, and
   * this process then exits). Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const until = Date.now() + this.busyWaitMs;
      for (;;) {
        try {
          await run('fusermount', ['-u', this.dir]);
          break;
        } catch {
          if (Date.now() >= until) {
            await run('fusermount', ['-uz', this.dir]).catch(() => {});
            break;
          }
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      fs.closeSync(this.fd);
    })();
    return this.closing;
  }
}
