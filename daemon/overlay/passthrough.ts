import fs from 'node:fs';
import path from 'node:path';
import type { Cb, FuseOps } from './fuse-types.js';

// Every operation of the mount goes to the real directory beneath it. `root` names that
// directory through a descriptor opened before the mount covered it (`/proc/self/fd/N`):
// the kernel resolves paths below such a name from the descriptor's own directory, not from
// the mount on top, so what the build writes is really in DIR and survives the unmount.
//
// Handlers are a pure factory (as pnpm's createFuseHandlers): the caller mounts them, tests
// can call them directly.

const EIO = -5;
export const errno = (e: NodeJS.ErrnoException | null): number => (e ? (typeof e.errno === 'number' && e.errno < 0 ? e.errno : EIO) : 0);

// libfuse 2 hands fuse-native UTIME_NOW and UTIME_OMIT as a time of 0 s and (2^30 - 1 or 2) ns,
// which fuse-native turns into 1073 ms: both read as "now" (an omitted atime then moves too,
// which no build tool reads).
const UTIME_SPECIAL_MS = 1073;

export function createPassthroughHandlers(root: string): FuseOps {
  const real = (p: string) => path.join(root, p);
  const done = (cb: Cb) => (e: NodeJS.ErrnoException | null) => cb(errno(e));
  const time = (ms: number, now: number) => (ms === UTIME_SPECIAL_MS ? now : ms) / 1000;
  return {
    access: (p, mode, cb) => fs.access(real(p), mode, done(cb)),
    statfs: (_p, cb) =>
      fs.statfs(root, (e, s) =>
        e
          ? cb(errno(e))
          : cb(0, {
              bsize: s.bsize,
              frsize: s.bsize,
              blocks: s.blocks,
              bfree: s.bfree,
              bavail: s.bavail,
              files: s.files,
              ffree: s.ffree,
              favail: s.ffree,
              fsid: 0,
              flag: 0,
              namemax: 255,
            }),
      ),
    getattr: (p, cb) => fs.lstat(real(p), (e, s) => (e ? cb(errno(e)) : cb(0, s))),
    fgetattr: (_p, fd, cb) => fs.fstat(fd, (e, s) => (e ? cb(errno(e)) : cb(0, s))),
    flush: (_p, _fd, cb) => cb(0),
    fsync: (_p, fd, datasync, cb) => (datasync ? fs.fdatasync(fd, done(cb)) : fs.fsync(fd, done(cb))),
    readdir: (p, cb) => fs.readdir(real(p), (e, names) => (e ? cb(errno(e)) : cb(0, ['.', '..', ...names]))),
    truncate: (p, size, cb) => fs.truncate(real(p), size, done(cb)),
    ftruncate: (_p, fd, size, cb) => fs.ftruncate(fd, size, done(cb)),
    utimens: (p, atime, mtime, cb) => {
      const now = Date.now();
      fs.utimes(real(p), time(atime, now), time(mtime, now), done(cb));
    },
    readlink: (p, cb) => fs.readlink(real(p), (e, l) => (e ? cb(errno(e)) : cb(0, l))),
    chown: (p, uid, gid, cb) => fs.lchown(real(p), uid, gid, done(cb)),
    chmod: (p, mode, cb) => fs.chmod(real(p), mode, done(cb)),
    open: (p, flags, cb) => fs.open(real(p), flags, (e, fd) => (e ? cb(errno(e)) : cb(0, fd))),
    // The kernel sends create only after its lookup found no such name.
    create: (p, mode, cb) => fs.open(real(p), fs.constants.O_CREAT | fs.constants.O_RDWR, mode, (e, fd) => (e ? cb(errno(e)) : cb(0, fd))),
    read: (_p, fd, buf, len, pos, cb) => fs.read(fd, buf, 0, len, pos, (e, n) => cb(e ? errno(e) : n)),
    write: (_p, fd, buf, len, pos, cb) => fs.write(fd, buf, 0, len, pos, (e, n) => cb(e ? errno(e) : n)),
    release: (_p, fd, cb) => fs.close(fd, done(cb)),
    unlink: (p, cb) => fs.unlink(real(p), done(cb)),
    rename: (from, to, cb) => fs.rename(real(from), real(to), done(cb)),
    link: (from, to, cb) => fs.link(real(from), real(to), done(cb)),
    // A symlink's target is kept as written: relative ones resolve inside the mount as they would beneath it.
    symlink: (target, p, cb) => fs.symlink(target, real(p), done(cb)),
    mkdir: (p, mode, cb) => fs.mkdir(real(p), { mode }, done(cb)),
    rmdir: (p, cb) => fs.rmdir(real(p), done(cb)),
  };
}
