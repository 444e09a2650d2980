import fs from 'node:fs';
import path from 'node:path';
import type { Cb, FuseOps, StatLike } from './fuse-types.js';
import { LAZY_TMP_PREFIX, type LazyFiles } from './lazy.js';
import { createPassthroughHandlers, errno } from './passthrough.js';

// The passthrough with lazy files on top (docs/overlay.md, "Lazy hits"): stat and readdir of a
// lazy file answer from the map; any open materializes it first (an open that truncates it for
// writing only forgets it: its old bytes are never read), as do truncate, rename, link, chmod,
// chown and utimens; unlink forgets it. Everything else is the passthrough's.

const EINVAL = -22;
const ENOTEMPTY = -39;
const S_IFREG = 0o100000;

export function createLazyHandlers(root: string, lazy: LazyFiles, ids = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 }): FuseOps {
  const pass = createPassthroughHandlers(root);
  /** Runs `then` once `p` is an ordinary file beneath (or was never lazy); a failed fetch answers its errno. */
  const real =
    <A extends unknown[]>(op: (p: string, ...a: A) => void) =>
    (p: string, ...a: A) => {
      const cb = a[a.length - 1] as Cb;
      void lazy.materialize(p).then((r) => (r === 0 ? op(p, ...a) : cb(r)));
    };
  const stat = (p: string): StatLike | undefined => {
    const e = lazy.get(p);
    if (!e) return undefined;
    const t = new Date(e.mtime);
    return {
      mode: S_IFREG | e.mode,
      uid: ids.uid,
      gid: ids.gid,
      size: e.size,
      nlink: 1,
      blksize: 4096,
      blocks: Math.ceil(e.size / 512),
      atime: t,
      mtime: t,
      ctime: t,
    };
  };
  return {
    ...pass,
    getattr: (p, cb) => {
      const s = stat(p);
      if (s) cb(0, s);
      else pass.getattr(p, cb);
    },
    readdir: (p, cb) =>
      pass.readdir(p, (err, names) => {
        if (err || !names) return cb(err, names);
        const seen = new Set(names);
        const out = names.filter((n) => !n.startsWith(LAZY_TMP_PREFIX));
        for (const n of lazy.namesIn(p)) if (!seen.has(n)) out.push(n);
        cb(0, out);
      }),
    access: (p, mode, cb) => {
      const e = lazy.get(p);
      if (!e) return pass.access(p, mode, cb);
      // Root may read and write anything, and execute what has an x bit; others by the owner's bits (they own it).
      const bits = ids.uid === 0 ? 0o6 | (e.mode & 0o111 ? 1 : 0) : (e.mode >> 6) & 7;
      cb((mode & 7 & ~bits) === 0 ? 0 : -13);
    },
    readlink: (p, cb) => (lazy.get(p) ? cb(EINVAL) : pass.readlink(p, cb)),
    open: (p, flags, cb) => {
      const e = lazy.get(p);
      const writes = (flags & 3) !== fs.constants.O_RDONLY;
      if (e && writes && flags & fs.constants.O_TRUNC) {
        // Its old bytes will not be read: forgotten, made afresh beneath.
        void lazy.settled(p).then(() => {
          lazy.drop(p);
          fs.open(path.join(root, p), flags | fs.constants.O_CREAT, e.mode, (err, fd) => (err ? cb(errno(err)) : cb(0, fd)));
        });
        return;
      }
      real(pass.open)(p, flags, cb);
    },
    create: (p, mode, cb) => {
      // The kernel creates only a name its lookup did not find; a lazy one is replaced all the same.
      void lazy.settled(p).then(() => {
        lazy.drop(p);
        pass.create(p, mode, cb);
      });
    },
    truncate: real(pass.truncate),
    chmod: real(pass.chmod),
    chown: real(pass.chown),
    utimens: real(pass.utimens),
    link: real(pass.link),
    unlink: (p, cb) =>
      void lazy.settled(p).then(() => {
        if (lazy.drop(p)) cb(0);
        else pass.unlink(p, cb);
      }),
    rmdir: (p, cb) => (lazy.hasBelow(p) ? cb(ENOTEMPTY) : pass.rmdir(p, cb)),
    rename: (from, to, cb) =>
      void (async () => {
        const r = await lazy.materialize(from);
        if (r !== 0) return cb(r);
        await lazy.settled(to);
        // Over a directory: only an empty one may be replaced, and lazy files make it non-empty.
        if (lazy.hasBelow(to)) return cb(ENOTEMPTY);
        // Forgotten before the rename is issued: an open of `to` meanwhile must not start a fetch
        // whose own rename would put stale bytes over the renamed-in file.
        const was = lazy.take(to);
        pass.rename(from, to, (err) => {
          if (err) {
            if (was) lazy.restore(to, was);
            return cb(err);
          }
          lazy.renameDir(from, to);
          cb(0);
        });
      })(),
  };
}
