// Why a call went around the cache: every reason `vrift stats` can count, with one line of
// meaning each (`vrift stats --explain` prints it, docs/reasons.md lists them; a test checks
// that both agree with this file). The names are stable: users and scripts read them in
// `vrift stats --json`, so one is never renamed or reused for another meaning. A reason not
// listed here does not compile where a reason is carried (a pass reply, a front-end's outcome).

/** Calls the daemon passed through (`pass` reply): the compiler ran as without vrift. */
export const UNCACHEABLE = {
  // Before any front-end (handlers/compile.ts)
  disabled: "VRIFT_DISABLE is set, or the project's configuration turns vrift off",
  config_error: "the project's velo.toml or VRIFT_* variables are invalid (`vrift config` says which)",
  exe_not_absolute: 'the shim did not name the compiler by an absolute path',
  unknown_compiler: 'no front-end takes this program (not gcc, clang or rustc)',
  not_a_lookup: 'never counted: a front-end that only finishes compiles was asked to look one up',
  // C/C++ compiles (frontends/gcc/, frontends/cc.ts)
  link: 'a gcc/clang call that links (no -c or -S) and is not one the link front-end takes',
  preprocess_only: '-E, or a -M/-MM call not taken as a dependency listing: preprocessor output vrift does not cache',
  multiple_sources: 'several sources in one call that could not be split into one compile each',
  no_source: 'no source file to compile among the arguments',
  output_stdout: 'the output goes to stdout (-o -)',
  stdin_source: 'the source is read from stdin (-)',
  unsupported_option: 'an option vrift cannot key or whose extra outputs it does not capture (coverage, profiles, split DWARF, ...)',
  unsupported_language: 'a language vrift does not cache (assembler, already preprocessed input, ...)',
  bad_response_file: 'an @file that could not be read',
  env_depfile: 'DEPENDENCIES_OUTPUT or SUNPRO_DEPENDENCIES asks for a depfile vrift does not write',
  output_to_dir: 'the output names a directory (-o dir/)',
  pch_output: 'a precompiled header is built',
  modules: 'C++ modules (module interfaces, -fmodules): their outputs are not tracked',
  informational: 'the call only prints information (--version, -print-*, -dumpmachine, ...)',
  not_cache_extension: "the object's extension is not in the project's cache_extensions",
  not_cache_target: "the cargo profile is not in the project's cache_targets",
  source_missing: 'the source file does not exist (the compiler will say so)',
  time_macro: 'the source uses __TIME__ (or __DATE__) and SOURCE_DATE_EPOCH is not set',
  incbin: 'the source embeds a file with .incbin, which vrift cannot track',
  preprocessor_failed: 'the preprocessor a stored manifest asks for failed (gcc -E)',
  materialize_failed: "a hit's outputs could not be written: the compiler ran instead",
  input_missing: 'an input named on the command line does not exist',
  // Links through gcc/clang (frontends/link.ts) and rustc's links (frontends/rust/linker.ts)
  link_with_sources: 'a link that also compiles sources (or an LTO link vrift cannot split)',
  link_option: 'a link option vrift cannot key (-fuse-ld, -specs, --sysroot, linker scripts, ...)',
  link_no_output: 'a link without an output file (or to stdout)',
  linker_not_found: 'the linker is not on PATH',
  linker_unknown: 'the linker is not a gcc/clang driver vrift knows how to ask for its inputs',
  linker_no_depfile: 'ld cannot list what it read (gold, lld, binutils before 2.35)',
  // rustc (frontends/rust/)
  response_file: 'rustc given an @file',
  missing_value: 'a rustc option without its value',
  probe: 'rustc asked for information (-V, --print, --explain, ...)',
  emit_stdout: '--emit writes to stdout',
  emit_path: '--emit names an output path of its own',
  emit_unknown: '--emit names an output kind vrift does not know',
  output_file: '-o names the output file (cargo uses --out-dir)',
  test_harness: '--test builds a test harness',
  incremental: 'incremental compilation keeps state vrift cannot cache',
  save_temps: '-C save-temps writes extra files',
  profile_generate: '-C profile-generate instruments the crate',
  no_input: 'no crate root among the arguments',
  multiple_inputs: 'more than one crate root',
  stdin_input: 'the crate root is read from stdin',
  crate_type_implicit: 'no --crate-type: rustc would pick one from the source',
  crate_type_dylib: 'a dylib crate (a shared library rustc links)',
  crate_type_cdylib: 'a cdylib crate (a shared library rustc links)',
  crate_type_staticlib: 'a staticlib crate',
  crate_type_other: 'a crate type vrift does not know',
  link_args: 'a bin or proc-macro crate with link arguments or a linker flavor vrift cannot list',
  no_crate_name: 'no --crate-name',
  no_out_dir: 'no --out-dir',
  rustc_identity: "rustc's identity (its -vV and sysroot) could not be read",
  extern_missing: 'a crate named by --extern does not exist',
} as const satisfies Record<string, string>;

/** Misses whose result was not kept ("compiled, not stored"). */
export const NOT_STORED = {
  compile_failed: 'the compiler exited non-zero: failed compiles are counted apart, never stored',
  output_too_big: 'the shim could not capture all of stdout/stderr (past its cap)',
  output_missing: 'an output the compile should have written is not there',
  output_not_written: 'an output is older than the compile: the compiler did not write it',
  output_changed: 'an output changed after the compile, before the daemon read it',
  output_has_marker: 'an output holds the marker vrift writes for the build directory, so it cannot be relocated',
  no_dependencies: 'the depfile lists no inputs',
  no_link_dependencies: 'the linker listed no inputs',
  deps_unparsed: "-M/-MM's output could not be parsed into one rule per source",
  deps_rerun_failed: 'the -M call that lists system headers after a -MM miss failed',
  needs_preprocessor: 'a -M/-MM call whose key needs the preprocessor (an __has_include that could not be probed)',
  input_missing: 'an input the compiler read is gone when the daemon reads it',
  input_too_new: 'an input changed during or right before the compile: its result may not match its content',
  time_macro: 'a header uses __TIME__ (or __DATE__) and SOURCE_DATE_EPOCH is not set',
  incbin: 'a header embeds a file with .incbin, which vrift cannot track',
  link_thin_archive: 'the link read a thin archive, whose members vrift does not follow',
  link_search_unknown: 'ld found a library in a directory vrift does not know (one that would shadow it could be missed)',
  store_failed: 'building the entry failed (the daemon log says why)',
} as const satisfies Record<string, string>;

/** Calls the shim sent straight to the compiler without an answer it could use (native/,
 * shim/shim.ts: one line each in log/fallback.ndjson). */
export const SHIM_FALLBACKS = {
  connect: 'no daemon answered on the socket',
  start_failed: 'the shim could not start a daemon',
  timeout: 'the daemon did not answer within VRIFT_TIMEOUT_MS',
  oom: 'the shim ran out of memory building the request',
  malformed_reply: "the daemon's reply could not be decoded",
  write_outputs: "a hit's outputs could not be written (e.g. a missing directory): the compiler ran",
  run: 'the command the daemon said to run could not be started: the original call ran',
  done: "the compile's report did not reach the daemon (not stored)",
  split: 'a command split by source could not be run as such: the original call ran',
  argv0: 'the interceptor could not tell which compiler was called',
  intercept_exec: 'the interceptor could not hand the call to the shim',
} as const satisfies Record<string, string>;

/** Compiles live mode does not warm (`vrift live status`): their outputs cannot all be sent to
 * a private place, so a background run could touch the build tree (daemon/live/redirect.ts). */
export const LIVE_SKIPPED = {
  split_dwarf: '-gsplit-dwarf: the object names its .dwo file by path',
  coverage: '--coverage, -ftest-coverage, -fprofile-arcs: the object names its .gcda/.gcno files by path',
  profile: '-fprofile-*, -fauto-profile: profiles written or read by path',
  extra_outputs: 'an option that writes files besides the object and depfile (-save-temps, -fdump-*, -fplugin, -Xclang, ...)',
  not_redirectable: 'the call could not be rewritten to write its outputs elsewhere with the same cache key',
  uncacheable: "the call's lookup passes it through (a reason `vrift stats` counts)",
} as const satisfies Record<string, string>;

export type UncacheableReason = keyof typeof UNCACHEABLE;
export type LiveSkip = keyof typeof LIVE_SKIPPED;
export type NotStoredReason = keyof typeof NOT_STORED;
export type ShimFallback = keyof typeof SHIM_FALLBACKS;

/** The reason groups of `vrift stats` (its JSON keys), each with its registry. */
export const REASONS = { uncacheable: UNCACHEABLE, not_stored: NOT_STORED, shim_fallbacks: SHIM_FALLBACKS } as const;
export type ReasonGroup = keyof typeof REASONS;

/** What a counted reason means, or undefined for one this build does not know (counters
 * persist across versions). */
export function explainReason(group: ReasonGroup, reason: string): string | undefined {
  const g: Record<string, string> = REASONS[group];
  return Object.hasOwn(g, reason) ? g[reason] : undefined;
}
