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

// Anything that does not look right reads as absent: a bad entry is a miss, never a crash.
export function decodeManifest(buf: Buffer | undefined): Manifest | undefined {
  if (!buf) return undefined;
  try {
    const m = packr.unpack(buf) as Manifest;
    return m && m.v === 2 && Array.isArray(m.entries) ? m : undefined;
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
    return r;
  } catch {
    return undefined;
  }
}
