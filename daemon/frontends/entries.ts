import { Packr } from 'msgpackr';

// Action-cache values of the C/C++ front-end, msgpack-encoded.
//  manifest (key = direct key): the include sets seen for this source+args+compiler,
//    each pointing at a result;
//  result (key = result key): the object's blob digest, replayed output and the
//    dependency list to regenerate depfiles.
// Flat lists, not lists of pairs: a decoded entry is kept in memory, and at 10 000 entries a
// two-element array per file was most of the daemon's heap (720 000 arrays, 60 MB).
export interface ManifestEntry {
  files: string[]; // key form, content hash, key form, content hash, …; source first
  absent: string[]; // per directory: the names that must not exist there (no header
  // shadowing), '/'-separated, then '//' and the directory's key form
  anchor: [string, string] | null; // outputs embed this checkout's location: valid only where cwd+rel === abs
  date: string | null; // __DATE__ seen: valid on this local date only
  stamps: [string, string][]; // __TIMESTAMP__ seen: [key form, mtime ns]
  result: string;
  time: number;
}
// pp: direct mode can't be trusted for this key; results are keyed by the preprocessed output.
export interface Manifest {
  v: 3;
  entries: ManifestEntry[];
  pp?: boolean;
}

// 'deps': the file a `-M -MF file` (or `-o file`) call wrote (frontends/cc/deps-mode.ts, dependency generation).
export interface ResultOutput {
  role: 'obj' | 'deps';
  digest: string;
  size: number;
}
export interface Result {
  v: 2;
  outputs: ResultOutput[];
  out: Buffer;
  err: Buffer;
  deps: string[]; // key forms as the compiler printed them
  sys: string; // per dep: '1' = a system header (left out of -MMD depfiles)
}

const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true });
export const MAX_MANIFEST_ENTRIES = 16;

export function encodeEntry(v: Manifest | Result): Buffer {
  return packr.pack(v);
}

// Memory a decoded entry holds beyond the shared strings (arrays, tuples, pointers), and
// its own bytes: what the in-memory entry cache counts.
export function decodedCost(v: Manifest | Result): number {
  if ('entries' in v) {
    let n = 64;
    for (const e of v.entries) {
      n += 200 + e.files.length * 8 + e.stamps.length * 80;
      n += e.absent.length * 8;
    }
    return n;
  }
  return 300 + v.deps.length * 9 + v.out.length + v.err.length;
}

// Names are single path components: never empty, never holding '/', so the first '//' ends them.
export function absentItem(dir: string, names: Iterable<string>): string {
  return `${[...names].join('/')}//${dir}`;
}

/** An absent item (absentItem) split back into its directory's key form and its names. */
export function absentParts(item: string): [string, string[]] {
  const i = item.indexOf('//');
  return [item.slice(i + 2), item.slice(0, i).split('/')]; // well-formed: decodeManifest checked
}

const EMPTY = Buffer.alloc(0);

// A copy with an ArrayBuffer of its own: a small Buffer from Node's pool keeps its whole
// 8 KB slab alive, and decoded entries live long (10 000 of them pinned 80 MB that way).
export function ownBuffer(b: Uint8Array | undefined): Buffer {
  if (!b || b.length === 0) return EMPTY;
  if (Buffer.isBuffer(b) && b.byteOffset === 0 && b.buffer.byteLength === b.length) return b; // already its own
  const out = Buffer.allocUnsafeSlow(b.length);
  out.set(b);
  return out;
}

// Anything that does not look right reads as absent: a bad entry is a miss, never a crash.
// What is kept in memory shares its strings (entry-strings.ts).
export function decodeManifest(buf: Buffer | undefined): Manifest | undefined {
  if (!buf) return undefined;
  try {
    const m = packr.unpack(buf) as Manifest;
    if (m?.v !== 3 || !Array.isArray(m.entries)) return undefined;
    const strings = (l: unknown) => Array.isArray(l) && l.every((f) => typeof f === 'string');
    if (!m.entries.every((e) => strings(e.files) && e.files.length % 2 === 0 && strings(e.absent) && e.absent.every((a: string) => a.indexOf('//') > 0)))
      return undefined;
    return m;
  } catch {
    return undefined;
  }
}

export function decodeResult(buf: Buffer | undefined): Result | undefined {
  if (!buf) return undefined;
  try {
    const r = packr.unpack(buf) as Result;
    if (r?.v !== 2 || !Array.isArray(r.outputs) || !Array.isArray(r.deps) || !r.deps.every((d) => typeof d === 'string')) return undefined;
    if (typeof r.sys !== 'string' || r.sys.length !== r.deps.length) return undefined;
    r.out = ownBuffer(r.out);
    r.err = ownBuffer(r.err);
    return r;
  } catch {
    return undefined;
  }
}
