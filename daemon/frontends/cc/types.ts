import type { LazyOutputs } from '../lazy-outputs.js';
import type { CompilerIds } from '../../compilers.js';
import type { FileHashes } from '../../hot/file-hashes.js';
import type { DirCache } from '../../hot/dir-cache.js';
import type { FsTime } from '../../hot/fs-clock.js';
import type { WatchMark } from '../../hot/watcher.js';
import type { StoreLike } from '../../store/contract.js';
import type { ChannelLogger } from '../../log.js';
import type { ProjectSettings } from '../../../config/config.js';
import type { GccCompile, GccDeps } from '../gcc/args.js';
import type { KeyForms, Relativizer } from '../relativize.js';
import type { Deferred } from '../deferred.js';
import type { Frontend, Outcome as FrontendOutcome } from '../types.js';
import type { CcEntries } from './entry-cache.js';
import type { EntryValidity } from './entry-valid.js';
import type { InputCollector } from './inputs.js';
import type { KeyWrites } from './key-writes.js';

// What the C/C++ front-end is given by the daemon, and the state a call carries from its
// lookup to its report.

export interface CcDeps {
  store: StoreLike;
  hashes: FileHashes;
  dirs: DirCache;
  compilers: CompilerIds;
  systemDirs: (exe: string, lang: string, flags: string[]) => Promise<string[]>;
  project: (cwd: string, env: Record<string, string>) => ProjectSettings; // base_dir, cache_extensions of this compile
  log: ChannelLogger;
  now: () => number;
  /** The filesystems' clock: a compile's start as files are stamped (hot/fs-clock.ts). */
  fsNow: () => FsTime;
  tmpDir: string;
  deferred?: Deferred;
  /** Where the calls that are links go (link.ts). */
  links?: Frontend<unknown>;
  /** Key forms computed so far, shared with the other front-ends (relativize.ts). */
  forms: KeyForms;
  /** Told of every compile whose entry was used, run or stored (live mode records them: daemon/live/). */
  observe?: (seen: CcSeen) => void;
  /** A compile of this direct key running elsewhere (live mode warming it): a lookup (for the object `output`, absolute) waits for this first. */
  warming?: (directKey: string, output: string) => Promise<void> | undefined;
  /** Hits' objects inside a mounted overlay DIR are registered there instead of written (lazy-outputs.ts). */
  lazy?: LazyOutputs;
}

/**
 * A compile as live mode records it: `hit` (an entry was used), `ran` (the compiler ran after a
 * miss, `ms` after its lookup), `stored` (its entry was built). `inputs`: the entry's files as
 * [absolute path, content hash] (undefined for a preprocessor-mode hit, whose entry names none).
 */
export interface CcSeen {
  kind: 'hit' | 'ran' | 'stored';
  cwd: string;
  exe: string;
  args: string[];
  env: Record<string, string>;
  output: string; // the object as the call names it
  directKey: string;
  result?: string;
  inputs?: [string, string][];
  ms?: number;
}

export type Outcome = FrontendOutcome<CcPending>;

export interface CcPending {
  args: string[]; // the call as the build made it (for preprocessor mode)
  ppKey?: string; // set when the lookup used preprocessor mode: store the result there
  cwd: string;
  exe: string;
  env: Record<string, string>;
  parsed: GccCompile;
  rel: Relativizer;
  directKey: string;
  start: number; // wall clock: the entry's time, __DATE__
  fsStart: FsTime; // the filesystems' clock, as late as possible before the compiler ran
  depfileToRead: string | null; // null: preprocessed input, the source is the only input
  ownDepfile: string | undefined;
  filterSystem: boolean;
  mark: WatchMark | undefined; // the watcher at the end of the lookup (before the compiler ran)
}

// A `-M`/`-MM` call (GccDeps), run by the shim as the build made it.
export interface DepsPending {
  args: string[];
  cwd: string;
  exe: string;
  env: Record<string, string>;
  parsed: GccDeps;
  rel: Relativizer;
  directKey: string;
  start: number;
  fsStart: FsTime;
  mark: WatchMark | undefined;
}

// The parts the compile and dependency-generation modes share, made once by CcFrontend.
export interface CcParts {
  d: CcDeps;
  entries: CcEntries;
  writes: KeyWrites;
  validity: EntryValidity;
  inputs: InputCollector;
}
