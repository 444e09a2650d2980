import { Packr } from 'msgpackr';

// Action-cache values of the C/C++ front-end, msgpack-encoded.
//  manifest (key = direct key): the include sets seen for this source+args+compiler,
//    each pointing at a result;
//  result (key = result key): the object's blob digest, replayed output and the
//    dependency list to regenerate depfiles.
export interface ManifestEntry {
  files: [string, string][];         // [key form, content hash], source first
  absent: [string, string[]][];      // [directory key form, names that must not exist there] (no header shadowing)
  anchor: [string, string] | null;   // outputs embed this checkout's location: valid only where cwd+rel === abs
  date: string | null;               // __DATE__ seen: valid on this local date only
  stamps: [string, string][];        // __TIMESTAMP__ seen: [key form, mtime ns]
  result: string;
  time: number;
}
// pp: direct mode can't be trusted for this key; results are keyed by the preprocessed output.
export interface Manifest { v: 2; entries: ManifestEntry[]; pp?: boolean }

export interface ResultOutput { role: 'obj'; digest: string; size: number }
export interface Result {
  v: 1;
  outputs: ResultOutput[];
  out: Buffer;
  err: Buffer;
  deps: [string, 0 | 1][];           // [key form as the compiler printed it, is-system-header]
}

const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true });
export const MAX_MANIFEST_ENTRIES = 16;

export function encodeEntry(v: Manifest | Result): Buffer {
  return packr.pack(v);
}

// Decoded entries share their strings: the same few hundred header paths and hashes
// appear in every manifest of a project, and a decoded manifest kept in memory is then a
// few arrays of pointers instead of ~40 KB of string copies. Bounded: when full, the pool
// starts over (entries keep their strings; only the sharing with later ones is lost).
const POOL_MAX = 100_000;
let pool = new Map<string, string>();

export function intern(s: string): string {
  const have = pool.get(s);
  if (have !== undefined) return have;
  if (pool.size >= POOL_MAX) pool = new Map();
  pool.set(s, s);
  return s;
}

function internPairs<T>(list: [string, T][]): void {
  for (const p of list) p[0] = intern(p[0]);
}

export function internManifest(m: Manifest): Manifest {
  for (const e of m.entries) {
    for (const f of e.files) {
      f[0] = intern(f[0]);
      f[1] = intern(f[1]);
    }
    for (const a of e.absent) {
      a[0] = intern(a[0]);
      a[1] = a[1].map(intern);
    }
    internPairs(e.stamps);
  }
  return m;
}

export function internResult(r: Result): Result {
  internPairs(r.deps);
  return r;
}

// Memory a decoded entry holds beyond the shared strings (arrays, tuples, pointers), and
// its own bytes: what the in-memory entry cache counts.
export function decodedCost(v: Manifest | Result): number {
  if ('entries' in v) {
    let n = 64;
    for (const e of v.entries) {
      n += 200 + e.files.length * 48 + e.stamps.length * 48;
      for (const [, names] of e.absent) n += 48 + names.length * 8;
    }
    return n;
  }
  return 200 + v.deps.length * 40 + v.out.length + v.err.length;
}

// Anything that does not look right reads as absent: a bad entry is a miss, never a crash.
export function decodeManifest(buf: Buffer | undefined): Manifest | undefined {
  if (!buf) return undefined;
  try {
    const m = packr.unpack(buf) as Manifest;
    if (!m || m.v !== 2 || !Array.isArray(m.entries)) return undefined;
    return internManifest(m);
  } catch {
    return undefined;
  }
}

export function decodeResult(buf: Buffer | undefined): Result | undefined {
  if (!buf) return undefined;
  try {
    const r = packr.unpack(buf) as Result;
    if (!r || r.v !== 1 || !Array.isArray(r.outputs) || !Array.isArray(r.deps)) return undefined;
    r.out = Buffer.from(r.out ?? []);
    r.err = Buffer.from(r.err ?? []);
    return internResult(r);
  } catch {
    return undefined;
  }
}
