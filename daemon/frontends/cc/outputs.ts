import fs from 'node:fs';
import path from 'node:path';
import type { NotStoredReason } from '../../../ipc/reasons.js';
import type { DoneFile } from '../../../ipc/messages/done.js';
import { writtenBefore } from '../../hot/fs-clock.js';
import { STREAM_MIN } from '../../store/blob-stream.js';
import type { GccCompile } from '../gcc/args.js';
import { parseDepfile, writeDepfile } from '../gcc/depfile.js';
import { filterSystemDeps } from '../gcc/sysdirs.js';
import type { CcPending } from './types.js';

// What a compile wrote, as its report finds it: the object and the dependency list, read
// before the build can change them; the dependencies parsed; and the depfile as the
// compiler would have written it.

export interface Written {
  obj: Buffer | undefined;
  depText: string | undefined;
}

// The same, as the shim read them when the compiler exited (a one-way report, done.ts).
export function sentOutputs(p: CcPending, files: DoneFile[]): Written | { reason: NotStoredReason } {
  const objAbs = path.resolve(p.cwd, p.parsed.output);
  const obj = files.find((f) => f.path === objAbs);
  const dep = p.depfileToRead === null ? undefined : files.find((f) => f.path === p.depfileToRead);
  if (!obj || (p.depfileToRead !== null && !dep)) return { reason: 'output_missing' };
  // Which clock stamped it: its directory's device (unknown: compared with the slack).
  const dev = fs.statSync(path.dirname(objAbs), { throwIfNoEntry: false })?.dev ?? -2;
  if (writtenBefore(p.fsStart, dev, obj.mtimeMs)) return { reason: 'output_not_written' };
  return { obj: obj.data, depText: dep?.data.toString('utf8') };
}

// The object (unless large: streamed into the store later) and the dependency list the
// compiler wrote, read before the build can change them.
export function readOutputs(p: CcPending): Written | { reason: NotStoredReason } {
  const objAbs = path.resolve(p.cwd, p.parsed.output);
  let obj: Buffer | undefined;
  let depText: string | undefined;
  try {
    const st = fs.statSync(objAbs);
    if (writtenBefore(p.fsStart, st.dev, st.mtimeMs)) return { reason: 'output_not_written' };
    if (st.size < STREAM_MIN) obj = fs.readFileSync(objAbs);
    depText = p.depfileToRead === null ? undefined : fs.readFileSync(p.depfileToRead, 'utf8');
  } catch {
    return { reason: 'output_missing' };
  }
  return { obj, depText };
}

export interface Deps {
  deps: string[];
  builtin: string[];
  system: string[];
}

// The dependencies as the depfile spells them (the source alone without one), and which
// of them are system headers.
export async function depsOf(p: CcPending, depText: string | undefined, systemDirs: Promise<string[]>): Promise<Deps | { reason: NotStoredReason }> {
  const deps = depText === undefined ? [p.parsed.source] : parseDepfile(depText).deps;
  if (deps.length === 0) return { reason: 'no_dependencies' };
  const builtin = await systemDirs;
  return { deps, builtin, system: filterSystemDeps(deps, p.parsed.includeDirs, builtin).system };
}

// -MT/-MQ as given, else what the compiler writes by default, in the compiler's own layout.
export function depfileText(parsed: GccCompile, deps: string[]): Buffer {
  const d = parsed.depfile!;
  const targets = d.targets.length ? d.targets : [{ value: d.defaultTarget, quoted: true }];
  return Buffer.from(writeDepfile(targets, deps, d.phony, { compiler: parsed.compiler }));
}
