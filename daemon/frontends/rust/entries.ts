import { Packr } from 'msgpackr';
import type { StoreLike } from '../../store/contract.js';

// Action-cache values of the Rust front-end, msgpack-encoded.
//  manifest (key = direct key: rustc identity, normalized arguments, --extern contents,
//    CARGO_* environment, crate root content): the input sets seen, each naming a result;
//  result (key = result key): every file rustc wrote into --out-dir for the crate, and the
//    replayed stdout/stderr. Text that names the target directory (dep-info, the JSON
//    artifact notices on stderr) is stored with the directory replaced by a marker.
export interface RustManifestEntry {
  files: [string, string][]; // [key form, content hash], every source rustc read
  envs: [string, string | null][]; // env-deps: [name, normalized escaped value | null = unset]
  anchor: [string, string] | null; // outputs embed this checkout's location (relativize.ts)
  tdir: string | null; // outputs embed the target directory itself: valid only there
  ws?: string | null; // outputs embed the workspace directory: valid only there
  absent?: [string, string[]][]; // linked crates: [dir key form, libraries that must not appear there]
  result: string;
  time: number;
}
// kind 'link': the same shapes for links through gcc/clang (../link.ts).
export type EntryKind = 'rust' | 'link';
export interface RustManifest {
  v: 1;
  kind: EntryKind;
  entries: RustManifestEntry[];
}

export interface RustOutput {
  name: string; // file name inside --out-dir
  digest: string;
  size: number;
  text: boolean; // stored with the target-directory marker
  exec?: boolean; // written executable (a bin, a build script)
}
export interface RustResult {
  v: 1;
  kind: EntryKind;
  outputs: RustOutput[];
  out: Buffer;
  err: Buffer;
}

const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true });
export const MAX_MANIFEST_ENTRIES = 16;

export function encodeEntry(v: RustManifest | RustResult): Buffer {
  return packr.pack(v);
}

function unpack(buf: Buffer | undefined, kind: EntryKind): Record<string, unknown> | undefined {
  if (!buf) return undefined;
  try {
    const v = packr.unpack(buf);
    return v && typeof v === 'object' && v.v === 1 && v.kind === kind ? v : undefined;
  } catch {
    return undefined;
  }
}

// Anything that does not look right reads as absent: a bad entry is a miss, never a crash.
export function decodeManifest(buf: Buffer | undefined, kind: EntryKind = 'rust'): RustManifest | undefined {
  const m = unpack(buf, kind);
  return m && Array.isArray(m.entries) ? (m as unknown as RustManifest) : undefined;
}

export function decodeResult(buf: Buffer | undefined, kind: EntryKind = 'rust'): RustResult | undefined {
  const r = unpack(buf, kind) as unknown as RustResult | undefined;
  if (!r || !Array.isArray(r.outputs)) return undefined;
  if (r.outputs.some((o) => typeof o.name !== 'string' || o.name.includes('/') || o.name.startsWith('.'))) return undefined;
  r.out = Buffer.from(r.out ?? []);
  r.err = Buffer.from(r.err ?? []);
  return r;
}

/** Read-modify-write of manifests (newest entry first, one per result), serialized per key inside the daemon. */
export class ManifestUpdates {
  private locks = new Map<string, Promise<void>>();
  constructor(
    private readonly store: Pick<StoreLike, 'getEntry' | 'putEntry'>,
    private readonly kind: EntryKind,
  ) {}

  add(key: string, entry: RustManifestEntry): Promise<void> {
    const prev = this.locks.get(key) ?? Promise.resolve();
    const next = prev.then(async () => {
      const m = decodeManifest(await this.store.getEntry(key), this.kind) ?? { v: 1, kind: this.kind, entries: [] };
      const entries = [entry, ...m.entries.filter((x) => x.result !== entry.result)].slice(0, MAX_MANIFEST_ENTRIES);
      await this.store.putEntry(key, encodeEntry({ v: 1, kind: this.kind, entries }));
    });
    const tail = next.catch(() => {});
    this.locks.set(key, tail);
    void tail.then(() => {
      if (this.locks.get(key) === tail) this.locks.delete(key);
    });
    return next;
  }
}
