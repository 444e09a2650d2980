import os from 'node:os';
import path from 'node:path';
import { VriftError } from '../../ipc/errors.js';
import { nullLogger, type ChannelLogger } from '../log.js';
import { defaultIO } from './write.js';
import type { LocalStoreOptions, StoreIO } from './types.js';

const NO_PINS: ReadonlySet<string> = new Set();

export interface ResolvedOptions {
  root: string;
  maxSize: number;
  maxAge: number;
  compressionLevel: number;
  touchDelayMs: number;
  verifiedCacheBytes: number;
  pinned: () => ReadonlySet<string>;
  now: () => number;
  log: ChannelLogger;
  io: StoreIO;
}

export function nonNegative(name: string, v: number | undefined): number {
  if (v === undefined) return 0;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
    throw new VriftError('ECONFIG', `${name} must be a non-negative number, got ${String(v)}`, { fields: { option: name } });
  }
  return v;
}

// Merged with defaults once and frozen: nothing later re-reads the caller's object.
export function resolveOptions(o: LocalStoreOptions): Readonly<ResolvedOptions> {
  if (typeof o.root !== 'string' || o.root === '') throw new VriftError('ECONFIG', 'store root must be a non-empty path');
  // Config files say "~/.vrift/l2"; a literal "~" directory in the cwd would be a silent surprise.
  const root = path.resolve(o.root === '~' || o.root.startsWith('~/') ? path.join(os.homedir(), o.root.slice(1)) : o.root);
  const level = o.compressionLevel ?? 1;
  if (!Number.isInteger(level) || level < 1 || level > 3) {
    throw new VriftError('ECONFIG', `compressionLevel must be 1..3, got ${String(level)}`, { fields: { option: 'compressionLevel' } });
  }
  return Object.freeze({
    root,
    maxSize: nonNegative('maxSize', o.maxSize),
    maxAge: nonNegative('maxAge', o.maxAge),
    compressionLevel: level,
    touchDelayMs: o.touchDelayMs === undefined ? 1000 : nonNegative('touchDelayMs', o.touchDelayMs),
    verifiedCacheBytes: nonNegative('verifiedCacheBytes', o.verifiedCacheBytes),
    pinned: o.pinned ?? (() => NO_PINS),
    now: o.now ?? Date.now,
    log: o.log ?? nullLogger.child('store'),
    io: Object.freeze({ ...defaultIO, ...o.io }),
  });
}
