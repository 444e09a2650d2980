import { createRequire } from 'node:module';
import path from 'node:path';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { VriftError } from '../../ipc/errors.js';
import { fuseUnavailable } from '../../ipc/mounts.js';
import type { FuseOps } from './fuse-types.js';

// fuse-native, with its binding built by native/Makefile (one fix: utimens lost the mtime)
// in place of the package's prebuilt one, and `nonempty` added to its mount options.

interface FuseNative {
  mount(cb: (err: Error | null) => void): void;
}
export type FuseCtor = new (mnt: string, ops: FuseOps, opts: Record<string, unknown>) => FuseNative;

const FIXED_BINDING = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'native', 'build', 'fuse_native.node');

/** fuse-native, or why it cannot be had here (an EFUSE VriftError). */
export function loadFuse(binding = FIXED_BINDING): FuseCtor | VriftError {
  const why = fuseUnavailable();
  if (why) return new VriftError('EFUSE', why);
  if (!fs.existsSync(binding)) return new VriftError('EFUSE', `${binding} is not built (make -C native; Debian libfuse2 and fuse)`);
  try {
    const req = createRequire(import.meta.url);
    const pkg = path.dirname(req.resolve('fuse-native'));
    // fuse-native loads its binding with require('node-gyp-build')(its dir): that one call
    // is answered with the fixed build, any other goes to node-gyp-build as before.
    const gypPath = createRequire(path.join(pkg, 'index.js')).resolve('node-gyp-build');
    const gyp = req(gypPath) as (dir: string) => unknown;
    const mod = req.cache[gypPath];
    if (mod && !(gyp as { vriftFixed?: true }).vriftFixed) {
      const fixed = Object.assign((dir: string) => (path.resolve(dir) === pkg ? req(binding) : gyp(dir)), gyp, { vriftFixed: true as const });
      mod.exports = fixed;
    }
    const Fuse = req('fuse-native') as new (...a: unknown[]) => { _fuseOptions(): string };
    // libfuse 2 refuses to mount over a directory that holds files unless told `nonempty`,
    // and fuse-native has no option for it: the overlay is mounted over DIR itself.
    return class extends Fuse {
      _fuseOptions(): string {
        const o = super._fuseOptions();
        return o ? `${o},nonempty` : '-ononempty';
      }
    } as unknown as FuseCtor;
  } catch (e) {
    return new VriftError('EFUSE', `fuse-native does not load: ${(e as Error).message.split('\n')[0]}`, { cause: e });
  }
}
