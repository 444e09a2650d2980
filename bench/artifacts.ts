import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

// Byte-level comparison of build outputs: every *.o and *.a under a directory, by sha256.
// Objects that differ between two plain builds (build ids, timestamps) are not the
// cache's fault; they are reported as nondeterministic and excluded from the verdict.

export type ArtifactMap = Record<string, string>; // relative path -> sha256

const DEFAULT_ENDINGS = ['.o', '.a'];
// cmake's compiler-identification probes are made at configure time, not by the build.
const skipDir = (rel: string) => /(^|\/)CMakeFiles\/\d[^/]*$|(^|\/)CMakeTmp$/.test(rel);

/** `rename` maps a path to the name it is compared under (e.g. a directory named after a hash of the flags). */
export function hashArtifacts(root: string, endings = DEFAULT_ENDINGS, rename: (rel: string) => string = (r) => r): ArtifactMap {
  const isArtifact = (name: string) => endings.some((e) => name.endsWith(e));
  const out: ArtifactMap = {};
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const abs = path.join(dir, e.name);
      const rel = path.relative(root, abs);
      if (e.isDirectory()) {
        if (!skipDir(rel)) walk(abs);
      } else if (e.isFile() && isArtifact(e.name)) {
        out[rename(rel)] = crypto.createHash('sha256').update(fs.readFileSync(abs)).digest('hex');
      }
    }
  };
  walk(root);
  return out;
}

export interface Comparison {
  compared: number;
  identical: number;
  differ: string[]; // excluding nondeterministic ones
  missing: string[]; // in the reference, not in this build
  extra: string[]; // in this build, not in the reference
  nondeterministic: string[];
  ok: boolean;
}

/** Files that differ between any two of the given (plain) builds. */
export function nondeterministic(refs: ArtifactMap[]): Set<string> {
  const out = new Set<string>();
  for (let i = 1; i < refs.length; i++) {
    for (const [k, v] of Object.entries(refs[i])) if (refs[0][k] !== undefined && refs[0][k] !== v) out.add(k);
  }
  return out;
}

export function compare(ref: ArtifactMap, got: ArtifactMap, nondet: Set<string>): Comparison {
  const differ: string[] = [];
  const missing: string[] = [];
  let identical = 0;
  for (const [k, v] of Object.entries(ref)) {
    if (got[k] === undefined) missing.push(k);
    else if (got[k] === v) identical++;
    else if (!nondet.has(k)) differ.push(k);
  }
  const extra = Object.keys(got).filter((k) => ref[k] === undefined);
  return {
    compared: Object.keys(ref).length,
    identical,
    differ,
    missing,
    extra,
    nondeterministic: [...nondet].filter((k) => ref[k] !== undefined),
    ok: differ.length === 0 && missing.length === 0 && extra.length === 0,
  };
}
