// Real-project sources for end-to-end tests: the same pinned Debian source packages the
// benchmark builds (bench/workloads.json), fetched by scripts/fetch-sources.sh.
//
//   const tree = await workloadTree('libuv', path.join(tmp, 'libuv'));   // fresh writable copy
export { copyTree, ensureSources, luaTree, pristineTree, readManifest, sourceCacheDir, type SourcePin } from '../../bench/sources.js';
export { WORKLOADS, workloadByName, type Workload, type WorkloadCtx } from '../../bench/workloads.js';

import fs from 'node:fs';
import path from 'node:path';
import { copyTree, ensureSources } from '../../bench/sources.js';

/** Fetches (if needed) and copies the named workload's pristine tree to `to`; returns `to`. */
export function workloadTree(name: string, to: string): string {
  const dest = ensureSources({ quiet: true });
  return copyTree(name, to, dest);
}

/** Every object file under `dir`, by path relative to it, with its bytes. */
export function objects(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.o')) out.set(path.relative(dir, p), fs.readFileSync(p));
    }
  };
  walk(dir);
  return out;
}
