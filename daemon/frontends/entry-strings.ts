import { absentParts, type Manifest, ownBuffer, type Result } from './entries.js';

// Decoded entries share their strings: the same few hundred header paths and hashes
// appear in every manifest of a project, and a decoded manifest kept in memory is then a
// few arrays of pointers instead of ~40 KB of string copies. Bounded: when full, the pool
// starts over (entries keep their strings; only the sharing with later ones is lost).
const POOL_MAX = 100_000;
// The same directory-and-names strings recur in every manifest of a project (they are
// interned): each is split once.
const ABSENT_MEMO_MAX = 50_000;

/** The strings the C/C++ front-end's entries in memory share (one per CcFrontend, cleared by its close()). */
export class EntryStrings {
  private pool = new Map<string, string>();
  private absentMemo = new Map<string, [string, string[]]>();

  intern(s: string): string {
    const have = this.pool.get(s);
    if (have !== undefined) return have;
    if (this.pool.size >= POOL_MAX) this.pool = new Map();
    this.pool.set(s, s);
    return s;
  }

  /** `m`, its strings shared, to be kept in memory. */
  manifest(m: Manifest): Manifest {
    for (const e of m.entries) {
      this.internAll(e.files);
      this.internAll(e.absent);
      for (const p of e.stamps) p[0] = this.intern(p[0]);
    }
    return m;
  }

  /** `r`, its strings shared and its buffers its own, to be kept in memory. */
  result(r: Result): Result {
    this.internAll(r.deps);
    r.out = ownBuffer(r.out);
    r.err = ownBuffer(r.err);
    return r;
  }

  /** absentParts(item), split once per item. */
  absentParts(item: string): [string, string[]] {
    let p = this.absentMemo.get(item);
    if (!p) {
      p = absentParts(item);
      if (this.absentMemo.size >= ABSENT_MEMO_MAX) this.absentMemo = new Map();
      this.absentMemo.set(item, p);
    }
    return p;
  }

  clear(): void {
    this.pool = new Map();
    this.absentMemo = new Map();
  }

  private internAll(list: string[]): void {
    for (let i = 0; i < list.length; i++) list[i] = this.intern(list[i]);
  }
}
