import path from 'node:path';

// How each real project is configured, built, cleaned and checked. A workload never
// knows which cache runs under it: it gets a compiler launcher (argv prefix, empty for
// plain gcc) and turns it into CC="<launcher> gcc" or CMAKE_<LANG>_COMPILER_LAUNCHER.

export interface Cmd {
  argv: string[];
  cwd: string;
}

export interface WorkloadCtx {
  srcDir: string; // writable copy of the pristine tree
  buildDir: string; // out-of-tree build dir (cmake); unused by in-tree builds
  launcher: string[]; // [] = plain compiler
  jobs: number;
  /** For cmake's link steps (CMAKE_<LANG>_LINKER_LAUNCHER): vrift caches links, ccache and sccache don't. */
  linkLauncher: string[];
}

export type Language = 'c' | 'rust';

export interface Workload {
  name: string; // also the key into bench/workloads.json, unless `source` says otherwise
  /** The source package (bench/workloads.json) when it is not `name`. */
  source?: string;
  /** Not in the default set: run when named in --workloads. */
  extra?: boolean;
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
  /** 'rust': the launcher becomes RUSTC_WRAPPER (one executable), so ccache cannot take part. Default 'c'. */
  language?: Language;
  /** Environment every configure, build and clean command of this workload gets. */
  env?(ctx: WorkloadCtx): NodeJS.ProcessEnv;
  /** File name endings compared across tools (default .o and .a). */
  artifacts?: string[];
  /** The name an artifact is compared under, when its path depends on the tool. */
  artifactName?(rel: string): string;
}

const ccVar = (launcher: string[], cc: string): string => [...launcher, cc].join(' ');
const luaDir = (ctx: WorkloadCtx): string => path.join(ctx.srcDir, 'deps', 'lua', 'src');

function cmakeWorkload(name: string, describe: string, extra: string[], micro?: Workload['micro']): Workload {
  return {
    name,
    describe,
    configure: (ctx) => {
      const args = [
        'cmake',
        '-S',
        ctx.srcDir,
        '-B',
        ctx.buildDir,
        '-DCMAKE_BUILD_TYPE=RelWithDebInfo',
        '-DCMAKE_EXPORT_COMPILE_COMMANDS=ON',
        '-DCMAKE_C_COMPILER=gcc',
        '-DCMAKE_CXX_COMPILER=g++',
        ...extra,
      ];
      if (ctx.launcher.length > 0) {
        const l = ctx.launcher.join(';');
        args.push(`-DCMAKE_C_COMPILER_LAUNCHER=${l}`, `-DCMAKE_CXX_COMPILER_LAUNCHER=${l}`);
      }
      if (ctx.linkLauncher.length > 0) {
        const l = ctx.linkLauncher.join(';');
        args.push(`-DCMAKE_C_LINKER_LAUNCHER=${l}`, `-DCMAKE_CXX_LINKER_LAUNCHER=${l}`);
      }
      return [{ argv: args, cwd: ctx.srcDir }];
    },
    build: (ctx) => ({ argv: ['make', `-j${ctx.jobs}`], cwd: ctx.buildDir }),
    clean: (ctx) => ({ argv: ['make', 'clean'], cwd: ctx.buildDir }),
    artifactRoot: (ctx) => ctx.buildDir,
    micro,
  };
}

// ripgrep 13 from Debian's source package, offline against the crates Debian packages
// under /usr/share/cargo/registry (a cargo directory source), as shared/notes/workloads.md
// says: Cargo.lock pins versions Debian lacks and Debian's grep has no simd-accel.
// Release profile (as the issue measured it); incremental is off there anyway.
export const CARGO_REGISTRY = '/usr/share/cargo/registry';

export function cargoHomeConfig(registry = CARGO_REGISTRY): string {
  return `[source.crates-io]\nreplace-with = "debian"\n[source.debian]\ndirectory = "${registry}"\n[net]\noffline = true\n`;
}

export const ripgrep: Workload = {
  name: 'ripgrep',
  describe: "ripgrep 13, cargo build --release against Debian's crates, RUSTC_WRAPPER=<tool>; clean = cargo clean",
  language: 'rust',
  env: (ctx) => {
    const env: NodeJS.ProcessEnv = { CARGO_HOME: path.join(ctx.buildDir, 'cargo-home'), CARGO_INCREMENTAL: '0', CARGO_TERM_COLOR: 'never' };
    if (ctx.launcher.length > 0) env.RUSTC_WRAPPER = ctx.launcher[0];
    return env;
  },
  configure: (ctx) => [
    {
      argv: [
        'sh',
        '-c',
        [
          `mkdir -p "$CARGO_HOME" && printf '%s' '${cargoHomeConfig()}' > "$CARGO_HOME/config.toml"`,
          'if [ -f Cargo.lock ]; then mv Cargo.lock Cargo.lock.orig; fi',
          "sed -i '/^simd-accel = /d' Cargo.toml",
          'cargo generate-lockfile --offline',
        ].join(' && '),
      ],
      cwd: ctx.srcDir,
    },
  ],
  build: (ctx) => ({ argv: ['cargo', 'build', '--release', `-j${ctx.jobs}`, '--offline'], cwd: ctx.srcDir }),
  clean: (ctx) => ({ argv: ['cargo', 'clean'], cwd: ctx.srcDir }),
  artifactRoot: (ctx) => path.join(ctx.srcDir, 'target', 'release'),
  artifacts: ['.rlib', '.rmeta'],
};

export const WORKLOADS: readonly Workload[] = Object.freeze([
  {
    name: 'redis',
    describe: 'redis 7.0.15, make MALLOC=libc, CC="<tool> gcc"; clean = make distclean (deps rebuilt too)',
    // src/release.h embeds "<hostname>-<time of the tree's first build>" and survives distclean,
    // so every tool's copy would compile a different release.o. Pin it once per copy
    // (mkreleasehdr.sh keeps an existing release.h whose SHA1 and DIRTY still match).
    configure: (ctx) => [
      {
        argv: ['sh', '-c', 'sh mkreleasehdr.sh && sed -i \'s/^#define REDIS_BUILD_ID .*/#define REDIS_BUILD_ID "vrift-bench"/\' release.h'],
        cwd: path.join(ctx.srcDir, 'src'),
      },
    ],
    build: (ctx) => ({
      argv: ['make', 'MALLOC=libc', `-j${ctx.jobs}`, `CC=${ccVar(ctx.launcher, 'gcc')}`],
      cwd: ctx.srcDir,
    }),
    clean: (ctx) => ({ argv: ['make', 'distclean'], cwd: ctx.srcDir }),
    artifactRoot: (ctx) => ctx.srcDir,
  },
  {
    name: 'lua',
    source: 'redis',
    extra: true,
    describe:
      'Lua 5.1 as redis 7.0.15 vendors it (deps/lua/src, 38 C files), its own Makefile: make o, CC="<tool> gcc"; clean = make clean. Small: quick pairs on a loaded machine',
    configure: () => [],
    build: (ctx) => ({ argv: ['make', `-j${ctx.jobs}`, 'o', `CC=${ccVar(ctx.launcher, 'gcc')}`], cwd: luaDir(ctx) }),
    clean: (ctx) => ({ argv: ['make', 'clean'], cwd: luaDir(ctx) }),
    artifactRoot: (ctx) => luaDir(ctx),
  },
  cmakeWorkload('libuv', 'libuv 1.44.2, cmake RelWithDebInfo with tests, launcher; clean = make clean', ['-DLIBUV_BUILD_TESTS=ON'], {
    file: 'src/unix/core.c',
    target: 'uv_a',
  }),
  {
    name: 'zstd',
    describe: 'zstd 1.5.4, top-level make, CC="<tool> gcc"; clean = make clean',
    configure: () => [],
    build: (ctx) => ({ argv: ['make', `-j${ctx.jobs}`, `CC=${ccVar(ctx.launcher, 'gcc')}`], cwd: ctx.srcDir }),
    clean: (ctx) => ({ argv: ['make', 'clean'], cwd: ctx.srcDir }),
    artifactRoot: (ctx) => ctx.srcDir,
    // lib/obj/conf_<md5 of CC and flags>/: the directory name differs per tool, the objects must not.
    artifactName: (rel) => rel.replace(/\/conf_[0-9a-f]{32}\//, '/conf_*/'),
  },
  cmakeWorkload('leveldb', 'leveldb 1.23, C++, cmake RelWithDebInfo with tests and benchmarks, launcher; clean = make clean', []),
  ripgrep,
]);

export function workloadByName(name: string): Workload {
  const w = WORKLOADS.find((x) => x.name === name);
  if (!w) throw new Error(`unknown workload ${name} (have: ${WORKLOADS.map((x) => x.name).join(', ')})`);
  return w;
}

/** Whether a cache tool can sit under this workload's compiler (ccache has no rustc support). */
export function supports(w: Workload, tool: string): boolean {
  return w.language !== 'rust' || tool !== 'ccache';
}

/** A tool's environment plus what the workload adds (e.g. RUSTC_WRAPPER). */
export function workloadEnv(w: Workload, ctx: WorkloadCtx, toolEnv: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return w.env ? { ...toolEnv, ...w.env(ctx) } : toolEnv;
}

/** Layout of one tool's copy while it is being built: always the same absolute path, see run.ts. */
export function ctxAt(slot: string, launcher: string[], jobs: number, linkLauncher: string[] = []): WorkloadCtx {
  return { srcDir: path.join(slot, 'src'), buildDir: path.join(slot, 'build'), launcher, jobs, linkLauncher };
}
