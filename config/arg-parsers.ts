import { InvalidArgumentError } from 'commander';
import { REMOTE_FORMS, remoteUrlProblem } from './remote-url.js';
import { DURATION_FORMS, durationOf, SIZE_FORMS, sizeOf } from './units.js';

// Commander option parsers: a value that does not read is refused before any action runs,
// with the flag, the value and the accepted forms on one line (commander names the first two).

function invalid(msg: string): InvalidArgumentError {
  const e = new InvalidArgumentError(msg);
  e.exitCode = 2; // as every other refused value (config files, environment)
  return e;
}

/** Bytes. */
export function sizeArg(v: string): number {
  const n = sizeOf(v);
  if (n === undefined) throw invalid(`Not a size; use ${SIZE_FORMS}.`);
  return n;
}

/** Bytes, at least 1. */
export function positiveSizeArg(v: string): number {
  const n = sizeArg(v);
  if (n === 0) throw invalid('It must be at least 1 byte.');
  return n;
}

/** Milliseconds. */
export function durationArg(v: string): number {
  const n = durationOf(v);
  if (n === undefined) throw invalid(`Not a duration; use ${DURATION_FORMS}.`);
  return n;
}

/** A TCP port, 0 meaning any free one. */
export function portArg(v: string): number {
  if (!/^\d{1,5}$/.test(v.trim()) || Number(v) > 65535) throw invalid('Not a port; use a number from 0 to 65535 (0: any free port).');
  return Number(v);
}

/** A remote cache URL (not empty: no remote is the default). */
export function remoteUrlArg(v: string): string {
  const why = v === '' ? 'empty' : remoteUrlProblem(v);
  if (why !== undefined) throw invalid(`Not a remote URL (${why}); use ${REMOTE_FORMS}.`);
  return v;
}
