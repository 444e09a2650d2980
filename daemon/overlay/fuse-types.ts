import type fs from 'node:fs';

// The part of fuse-native's API the overlay uses (the package ships no types). Errors are
// negative errno values, as Node's `err.errno` on Linux; times are milliseconds.
export type Cb<T = void> = T extends void ? (err: number) => void : (err: number, value?: T) => void;

export interface StatLike {
  mode: number;
  uid: number;
  gid: number;
  size: number;
  dev?: number;
  nlink?: number;
  ino?: number;
  rdev?: number;
  blksize?: number;
  blocks?: number;
  atime: Date | number;
  mtime: Date | number;
  ctime: Date | number;
}

export interface FuseOps {
  access(p: string, mode: number, cb: Cb): void;
  statfs(p: string, cb: Cb<Record<string, number>>): void;
  getattr(p: string, cb: Cb<StatLike>): void;
  fgetattr(p: string, fd: number, cb: Cb<StatLike>): void;
  flush(p: string, fd: number, cb: Cb): void;
  fsync(p: string, fd: number, datasync: boolean, cb: Cb): void;
  readdir(p: string, cb: Cb<string[]>): void;
  truncate(p: string, size: number, cb: Cb): void;
  ftruncate(p: string, fd: number, size: number, cb: Cb): void;
  utimens(p: string, atime: number, mtime: number, cb: Cb): void;
  readlink(p: string, cb: Cb<string>): void;
  chown(p: string, uid: number, gid: number, cb: Cb): void;
  chmod(p: string, mode: number, cb: Cb): void;
  open(p: string, flags: number, cb: Cb<number>): void;
  create(p: string, mode: number, cb: Cb<number>): void;
  read(p: string, fd: number, buf: Buffer, len: number, pos: number, cb: (n: number) => void): void;
  write(p: string, fd: number, buf: Buffer, len: number, pos: number, cb: (n: number) => void): void;
  release(p: string, fd: number, cb: Cb): void;
  unlink(p: string, cb: Cb): void;
  rename(from: string, to: string, cb: Cb): void;
  link(from: string, to: string, cb: Cb): void;
  symlink(target: string, p: string, cb: Cb): void;
  mkdir(p: string, mode: number, cb: Cb): void;
  rmdir(p: string, cb: Cb): void;
}

export type { fs };
