import fs from 'node:fs';
import path from 'node:path';
import { VriftError } from '../ipc/errors.js';
import type { InstancePaths } from '../ipc/paths.js';
import { PROJECT_KEYS, SCHEMA, readConfigFile, resolveLayers, type ProjectSettings } from './config.js';

// The project settings a compile gets (docs/configuration.md): defaults, the user's
// config.toml, the nearest velo.toml walking up from the compile's directory, then the
// compile's own VRIFT_* environment; the same layers `vrift config` shows in that directory.
//
// A lookup must stay cheap, so what the files say is cached: per directory, whether it holds
// a velo.toml (absent ones too); per file, its parsed table under its stat signature. Each is
// checked again when older than `recheckMs`: an edit takes effect within that, and at once
// after `vrift config` (which calls forget()).
const RECHECK_MS = 1000;
const MAX_ENTRIES = 4096;

interface FileState {
  sig: string;
  table?: Record<string, unknown>;
  error?: VriftError;
}
interface DirState {
  checked: number;
  file?: string;
}

export class ProjectConfigs {
  private dirs = new Map<string, DirState>();
  private files = new Map<string, FileState & { checked: number }>();
  private merged = new Map<string, ProjectSettings | VriftError>();

  // onError: called once per distinct bad configuration (not per compile).
  constructor(private readonly o: { paths: InstancePaths; userFile: string; now: () => number; recheckMs?: number; onError?: (err: VriftError) => void }) {}

  /** The settings of a compile in `cwd` with `env`, or the ECONFIG of a bad file or variable. */
  resolve(cwd: string, env: Record<string, string>): ProjectSettings | VriftError {
    const now = this.o.now();
    const user = this.file(this.o.userFile, now);
    const projectFile = this.nearest(cwd, now);
    const project = projectFile ? this.file(projectFile, now) : undefined;
    let key = `${user.sig}\0${projectFile ?? ''}\0${project?.sig ?? ''}`;
    for (const k of PROJECT_KEYS) for (const name of SCHEMA[k].env) key += `\0${env[name] ?? ''}`;
    // base_dir may be relative: to the file's directory, or to the cwd for a variable.
    if (env.VRIFT_BASE_DIR) key += `\0${cwd}`;
    let r = this.merged.get(key);
    if (!r) {
      try {
        if (user.error) throw user.error;
        if (project?.error) throw project.error;
        const { config } = resolveLayers({
          paths: this.o.paths,
          env,
          cwd,
          keys: PROJECT_KEYS,
          user: { file: this.o.userFile, table: user.table },
          project: projectFile ? { file: projectFile, table: project?.table } : undefined,
        });
        r = Object.freeze({
          enabled: config.enabled,
          base_dir: config.base_dir,
          cache_targets: config.cache_targets,
          cache_extensions: config.cache_extensions,
        });
      } catch (e) {
        r = e instanceof VriftError ? e : new VriftError('ECONFIG', (e as Error).message, { cause: e });
        this.o.onError?.(r);
      }
      if (this.merged.size >= MAX_ENTRIES) this.merged.clear();
      this.merged.set(key, r);
    }
    return r;
  }

  /** Everything is read again at the next compile. */
  forget(): void {
    this.dirs.clear();
    this.files.clear();
    this.merged.clear();
  }

  private nearest(cwd: string, now: number): string | undefined {
    const recheck = this.o.recheckMs ?? RECHECK_MS;
    const hit = this.dirs.get(cwd);
    if (hit && now - hit.checked < recheck) return hit.file;
    let file: string | undefined;
    for (let dir = cwd; ; dir = path.dirname(dir)) {
      const f = path.join(dir, 'velo.toml');
      if (isFile(f)) {
        file = f;
        break;
      }
      if (path.dirname(dir) === dir) break;
    }
    if (this.dirs.size >= MAX_ENTRIES) this.dirs.clear();
    this.dirs.set(cwd, { checked: now, file });
    return file;
  }

  private file(file: string, now: number): FileState {
    const recheck = this.o.recheckMs ?? RECHECK_MS;
    const had = this.files.get(file);
    if (had && now - had.checked < recheck) return had;
    const st = fs.statSync(file, { throwIfNoEntry: false });
    const sig = st ? `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}` : '-';
    if (had && had.sig === sig) {
      had.checked = now;
      return had;
    }
    let state: FileState;
    try {
      state = { sig, table: st ? readConfigFile(file) : undefined };
    } catch (e) {
      state = { sig, error: e instanceof VriftError ? e : new VriftError('ECONFIG', (e as Error).message, { cause: e }) };
    }
    if (this.files.size >= MAX_ENTRIES) this.files.clear();
    this.files.set(file, { ...state, checked: now });
    return state;
  }
}

// A directory the daemon may not search, a path too long or not a path at all (a NUL, from a
// client that sent garbage) holds no project file: the compile goes on with the user's settings.
function isFile(f: string): boolean {
  try {
    return fs.statSync(f, { throwIfNoEntry: false })?.isFile() === true;
  } catch {
    return false;
  }
}
