import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

// The overlays of one VRIFT_HOME: each overlay process writes a record of what it mounted, the
// CLI (`vrift mounts`, `vrift unmount`) and the daemon read them. Shared by both sides, so here.
// A record outlives a killed process: whether its DIR is still mounted is read from the
// kernel's table (/proc/self/mounts), never trusted from the record.

/** The filesystem type the kernel lists for a vrift overlay (`fuse.` + the subtype). */
export const OVERLAY_FSTYPE = 'fuse.vrift';

export interface MountRecord {
  /** Absolute, as mounted. */
  dir: string;
  /** The overlay process. */
  pid: number;
  /** ms since the epoch. */
  since: number;
}

export function mountsDir(runDir: string): string {
  return path.join(runDir, 'mounts');
}

export function mountRecordFile(runDir: string, dir: string): string {
  return path.join(mountsDir(runDir), `${crypto.createHash('sha256').update(dir).digest('hex').slice(0, 24)}.json`);
}

export function writeMountRecord(runDir: string, rec: MountRecord): void {
  fs.mkdirSync(mountsDir(runDir), { recursive: true, mode: 0o700 });
  const file = mountRecordFile(runDir, rec.dir);
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(rec));
  fs.renameSync(tmp, file);
}

export function removeMountRecord(runDir: string, dir: string, pid?: number): void {
  const file = mountRecordFile(runDir, dir);
  // A newer overlay of the same DIR wrote its own record: not ours to remove.
  if (pid !== undefined && readMountRecord(runDir, dir)?.pid !== pid) return;
  fs.rmSync(file, { force: true });
}

export function readMountRecord(runDir: string, dir: string): MountRecord | undefined {
  try {
    const r = JSON.parse(fs.readFileSync(mountRecordFile(runDir, dir), 'utf8')) as MountRecord;
    return typeof r.dir === 'string' && Number.isInteger(r.pid) ? r : undefined;
  } catch {
    return undefined;
  }
}

export function listMountRecords(runDir: string): MountRecord[] {
  let names: string[];
  try {
    names = fs.readdirSync(mountsDir(runDir));
  } catch {
    return [];
  }
  const out: MountRecord[] = [];
  for (const n of names) {
    if (!n.endsWith('.json')) continue;
    try {
      const r = JSON.parse(fs.readFileSync(path.join(mountsDir(runDir), n), 'utf8')) as MountRecord;
      if (typeof r.dir === 'string' && Number.isInteger(r.pid)) out.push(r);
    } catch {
      // half-written or foreign: skipped
    }
  }
  return out.sort((a, b) => a.dir.localeCompare(b.dir));
}

// /proc/mounts escapes space, tab, newline and backslash as octal.
const unescapeMount = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));

/** The directories a vrift overlay is mounted on now, by the kernel's table. */
export function mountedOverlays(mountsText?: string): Set<string> {
  let text = mountsText;
  if (text === undefined) {
    try {
      text = fs.readFileSync('/proc/self/mounts', 'utf8');
    } catch {
      return new Set();
    }
  }
  const out = new Set<string>();
  for (const line of text.split('\n')) {
    const [, dir, type] = line.split(' ');
    if (dir && type === OVERLAY_FSTYPE) out.add(unescapeMount(dir));
  }
  return out;
}

/** Why FUSE cannot be used here (undefined: /dev/fuse is there and ours to open). */
export function fuseUnavailable(dev = '/dev/fuse'): string | undefined {
  try {
    fs.accessSync(dev, fs.constants.R_OK | fs.constants.W_OK);
    return undefined;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT' ? `no ${dev} here` : `no permission to use ${dev}`;
  }
}

/**
 * `dir` as the kernel's mount table names it: through symlinks (realpath). A part that cannot be
 * read (missing, or a dead mount answering ENOTCONN) is kept by name under its real parent.
 */
export function realDir(dir: string): string {
  const abs = path.resolve(dir);
  try {
    return fs.realpathSync(abs);
  } catch {
    const parent = path.dirname(abs);
    return parent === abs ? abs : path.join(realDir(parent), path.basename(abs));
  }
}

/** Whether a process with this pid exists (signal 0). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
