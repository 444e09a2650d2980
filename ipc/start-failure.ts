import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

// Why the daemon of an instance could not start, kept where the CLI and the native shim
// read it even when VRIFT_HOME itself is unusable (a file, unwritable, too long for a
// socket): $XDG_RUNTIME_DIR/vrift, else /tmp/vrift-<uid>, one file per instance named by a
// hash of its home. native/daemon.c computes the same name (start_marker_path).
//
// Format, one field a line: "vrift-start-failure 1", "key <K>", the reason. K is what the
// native shim passed in VRIFT_START_KEY (the identity of the configuration it started
// with, "-" when started otherwise): a shim whose key matches does not start it again.

export interface StartFailure {
  key: string;
  reason: string;
  mtimeMs: number;
}

/** FNV-1a 64 of a string's UTF-8 bytes, as 16 hex digits (native/daemon.c fnv1a). */
export function fnv1a64(s: string): string {
  let h = 0xcbf29ce484222325n;
  for (const b of Buffer.from(s, 'utf8')) {
    h ^= BigInt(b);
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return h.toString(16).padStart(16, '0');
}

export function startFailureDir(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_RUNTIME_DIR;
  return xdg?.startsWith('/') ? path.join(xdg, 'vrift') : `/tmp/vrift-${os.userInfo().uid}`;
}

export function startFailureFile(home: string, env: NodeJS.ProcessEnv = process.env): string {
  return path.join(startFailureDir(env), `${fnv1a64(home)}.start`);
}

// The directory is shared space (/tmp): used only when it is ours and nobody else's.
function ownDir(dir: string): boolean {
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = fs.lstatSync(dir);
    return st.isDirectory() && st.uid === process.getuid?.() && (st.mode & 0o077) === 0;
  } catch {
    return false;
  }
}

export function writeStartFailure(home: string, reason: string, env: NodeJS.ProcessEnv = process.env): void {
  const file = startFailureFile(home, env);
  if (!ownDir(path.dirname(file))) return;
  const key = env.VRIFT_START_KEY && /^[0-9a-f]{16}$/.test(env.VRIFT_START_KEY) ? env.VRIFT_START_KEY : '-';
  const tmp = `${file}.${process.pid}`;
  try {
    fs.writeFileSync(tmp, `vrift-start-failure 1\nkey ${key}\n${reason.replace(/\s*\n\s*/g, ' ')}\n`, { mode: 0o600 });
    fs.renameSync(tmp, file);
  } catch {
    fs.rmSync(tmp, { force: true });
  }
}

export function readStartFailure(home: string, env: NodeJS.ProcessEnv = process.env): StartFailure | undefined {
  const file = startFailureFile(home, env);
  try {
    const st = fs.statSync(file);
    const [magic, key, reason] = fs.readFileSync(file, 'utf8').split('\n');
    if (magic !== 'vrift-start-failure 1' || !key.startsWith('key ')) return undefined;
    return { key: key.slice(4), reason: reason ?? '', mtimeMs: st.mtimeMs };
  } catch {
    return undefined;
  }
}

export function clearStartFailure(home: string, env: NodeJS.ProcessEnv = process.env): void {
  const file = startFailureFile(home, env);
  try {
    fs.rmSync(file, { force: true });
    // The shims' "already said" mark (native/daemon.c start_notice) goes with it.
    fs.rmSync(file.replace(/\.start$/, '.told'), { force: true });
  } catch {
    // not ours to remove: nothing was recorded there by us
  }
}
