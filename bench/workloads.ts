import path from 'node:path';

// How each real project is configured, built, cleaned and checked. A workload never
// knows which cache runs under it: it gets a compiler launcher (argv prefix, empty for
// plain gcc) and turns it into CC="<launcher> gcc" or CMAKE_<LANG>_COMPILER_LAUNCHER.

export interface Cmd {
  argv: string[];
  cwd: string;
}

export interface WorkloadCtx {
  srcDir: string;        // writable copy of the pristine tree
  buildDir: string;      // out-of-tree build dir (cmake); unused by in-tree builds
  launcher: string[];    // [] = plain compiler
  jobs: number;
}

export interface Workload {
  name: string;          // also the key into bench/workloads.json
  describe: string;
  /** Untimed, once per fresh tree. */
  configure(ctx: WorkloadCtx): Cmd[];
  /** The timed command. */
  build(ctx: WorkloadCtx): Cmd;
  /** Untimed, before every build but the first. */
  clean(ctx: WorkloadCtx): Cmd;
  /** Directory whose *.o / *.a files are compared across tools. */
  artifactRoot(ctx: WorkloadCtx): string;
  /** Single-TU hit latency: source path relative to srcDir, and the cmake target whose flags to use. */
  micro?: { file: string; target: string };
}

const ccVar = (launcher: string[], cc: string): string => [...launcher, cc].join(' ');

function cmakeWorkload(
  name: string,
  describe: string,
  extra: string[],
  micro?: Workload['micro'],
): Workload {
  return {
    name,
    describe,
    configure: (ctx) => {
      const args = [
        'cmake', '-S', ctx.srcDir, '-B', ctx.buildDir,
        '-DCMAKE_BUILD_TYPE=RelWithDebInfo',
        '-DCMAKE_EXPORT_COMPILE_COMMANDS=ON',
        '-DCMAKE_C_COMPILER=gcc', '-DCMAKE_CXX_COMPILER=g++',
        ...extra,
      ];
      if (ctx.launcher.length > 0) {
        const l = ctx.launcher.join(';');
        args.push(`-DCMAKE_C_COMPILER_LAUNCHER=${l}`, `-DCMAKE_CXX_COMPILER_LAUNCHER=${l}`);
      }
      return [{ argv: args, cwd: ctx.srcDir }];
    },
    build: (ctx) => ({ argv: ['make', `-j${ctx.jobs}`], cwd: ctx.buildDir }),
    clean: (ctx) => ({ argv: ['make', 'clean'], cwd: ctx.buildDir }),
    artifactRoot: (ctx) => ctx.buildDir,
    micro,
  };
}

export const WORKLOADS: readonly Workload[] = Object.freeze([
  {
    name: 'redis',
    describe: 'redis 7.0.15, make MALLOC=libc, CC="<tool> gcc"; clean = make distclean (deps rebuilt too)',
    // src/release.h embeds "<hostname>-<time of the tree's first build>" and survives distclean,
    // so every tool's copy would compile a different release.o. Pin it once per copy
    // (mkreleasehdr.sh keeps an existing release.h whose SHA1 and DIRTY still match).
    configure: (ctx) => [{
      argv: ['sh', '-c', 'sh mkreleasehdr.sh && sed -i \'s/^#define REDIS_BUILD_ID .*/#define REDIS_BUILD_ID "vrift-bench"/\' release.h'],
      cwd: path.join(ctx.srcDir, 'src'),
    }],
    build: (ctx) => ({
      argv: ['make', 'MALLOC=libc', `-j${ctx.jobs}`, `CC=${ccVar(ctx.launcher, 'gcc')}`],
      cwd: ctx.srcDir,
    }),
    clean: (ctx) => ({ argv: ['make', 'distclean'], cwd: ctx.srcDir }),
    artifactRoot: (ctx) => ctx.srcDir,
  },
  cmakeWorkload(
    'libuv',
    'libuv 1.44.2, cmake RelWithDebInfo with tests, launcher; clean = make clean',
    ['-DLIBUV_BUILD_TESTS=ON'],
    { file: 'src/unix/core.c', target: 'uv_a' },
  ),
  {
    name: 'zstd',
    describe: 'zstd 1.5.4, top-level make, CC="<tool> gcc"; clean = make clean',
    configure: () => [],
    build: (ctx) => ({ argv: ['make', `-j${ctx.jobs}`, `CC=${ccVar(ctx.launcher, 'gcc')}`], cwd: ctx.srcDir }),
    clean: (ctx) => ({ argv: ['make', 'clean'], cwd: ctx.srcDir }),
    artifactRoot: (ctx) => ctx.srcDir,
  },
  cmakeWorkload(
    'leveldb',
    'leveldb 1.23, C++, cmake RelWithDebInfo with tests and benchmarks, launcher; clean = make clean',
    [],
  ),
]);

export function workloadByName(name: string): Workload {
  const w = WORKLOADS.find((x) => x.name === name);
  if (!w) throw new Error(`unknown workload ${name} (have: ${WORKLOADS.map((x) => x.name).join(', ')})`);
  return w;
}

/** Layout of one tool's copy while it is being built: always the same absolute path, see run.ts. */
export function ctxAt(slot: string, launcher: string[], jobs: number): WorkloadCtx {
  return { srcDir: path.join(slot, 'src'), buildDir: path.join(slot, 'build'), launcher, jobs };
}
