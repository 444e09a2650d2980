import fs from 'node:fs';
import path from 'node:path';

// Directory listings memoised by the directory's mtime: "does <dir>/<name> exist?" costs
// one stat of the directory instead of one stat per candidate path. Used to prove that no
// header appeared earlier on the include path (the shadowing case ccache's direct mode misses).
export class DirCache {
  private memo = new Map<string, { mtimeNs: bigint; ino: bigint; names: Set<string> }>();
  constructor(private readonly now: () => number = Date.now, private readonly recentMs = 2000) {}

  exists(file: string): boolean {
    const dir = path.dirname(file);
    const name = path.basename(file);
    let st: fs.BigIntStats;
    try {
      st = fs.statSync(dir, { bigint: true });
    } catch {
      return false;
    }
    if (!st.isDirectory()) return false;
    const m = this.memo.get(dir);
    if (m && m.mtimeNs === st.mtimeNs && m.ino === st.ino) return m.names.has(name);
    let names: Set<string>;
    try {
      names = new Set(fs.readdirSync(dir));
    } catch {
      return fs.existsSync(file);
    }
    const nowNs = BigInt(this.now()) * 1_000_000n;
    if (nowNs - st.mtimeNs > BigInt(this.recentMs) * 1_000_000n) this.memo.set(dir, { mtimeNs: st.mtimeNs, ino: st.ino, names });
    else this.memo.delete(dir);
    return names.has(name);
  }
}
