import fs from 'node:fs';
import { digestHex } from './hash.js';

// Compiler identity: the content hash of the executable (symlinks followed), memoised by
// path + size + mtime + inode. A wrapper script is identified by its own bytes, and a
// replaced or touched-and-changed compiler gets a new identity.
export class CompilerIds {
  private memo = new Map<string, { key: string; id: string }>();

  identity(exe: string): string {
    const st = fs.statSync(exe, { bigint: true });
    const key = `${st.size}:${st.mtimeNs}:${st.ino}:${st.ctimeNs}`;
    const m = this.memo.get(exe);
    if (m && m.key === key) return m.id;
    const id = digestHex(fs.readFileSync(fs.realpathSync(exe)));
    this.memo.set(exe, { key, id });
    return id;
  }
}
