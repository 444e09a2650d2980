import fs from 'node:fs';
import path from 'node:path';

// Who uses a mounted DIR now: processes with a file open inside it, their cwd, root or running
// binary there. `vrift unmount` asks before unmounting: once the overlay stops, a detached
// mount answers ENOTCONN to them (a build still running would fail).

export interface MountUser {
  pid: number;
  /** The process's name (/proc/<pid>/comm). */
  name: string;
}

/** The processes using `dir` (readable ones: other users' are not ours to see), less `skip`. */
export function mountUsers(dir: string, skip: (pid: number) => boolean, procDir = '/proc'): MountUser[] {
  const inside = (p: string) => p === dir || p.startsWith(`${dir}/`);
  const link = (p: string) => {
    try {
      return fs.readlinkSync(p);
    } catch {
      return '';
    }
  };
  const out: MountUser[] = [];
  for (const pid of processIds(procDir)) {
    if (pid === process.pid || skip(pid)) continue;
    const base = path.join(procDir, String(pid));
    let uses = ['cwd', 'root', 'exe'].some((l) => inside(link(path.join(base, l))));
    if (!uses) {
      let fds: string[] = [];
      try {
        fds = fs.readdirSync(path.join(base, 'fd'));
      } catch {
        // gone, or not ours to read
      }
      uses = fds.some((fd) => inside(link(path.join(base, 'fd', fd))));
    }
    if (!uses) continue;
    let name = '?';
    try {
      name = fs.readFileSync(path.join(base, 'comm'), 'utf8').trim();
    } catch {
      // gone meanwhile
    }
    out.push({ pid, name });
  }
  return out;
}

/** The pids listed in `procDir` now (none when it cannot be read). */
export function processIds(procDir = '/proc'): number[] {
  try {
    return fs
      .readdirSync(procDir)
      .filter((n) => /^\d+$/.test(n))
      .map(Number);
  } catch {
    return [];
  }
}
