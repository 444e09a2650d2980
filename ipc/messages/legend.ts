import type { AnyReply, Kind, RequestOf } from './index.js';

// Every key on the wire, with a long name and one line of meaning, per message: the keys are
// short because the native shim encodes and decodes them by hand (native/shim.c) and a compile
// sends one request per call. A key added to a message without a line here does not compile;
// docs/design.md's protocol section is this legend (test/protocol-legend.test.ts checks it).
// `common`: the keys of every message (`t`) or every request (`v`, `build`: the client adds them;
// another protocol or build than the daemon's is EVERSION, except for hello and shutdown).
type Common = 't' | 'v' | 'build';
export type KeyLegend<T> = { readonly [P in Exclude<keyof T, Common>]-?: readonly [name: string, meaning: string] };
type ReplyKind = AnyReply['t'];
export interface Legend {
  readonly common: { readonly [P in Common]: readonly [name: string, meaning: string] };
  readonly requests: { readonly [K in Kind]: KeyLegend<RequestOf<K>> };
  readonly replies: { readonly [T in ReplyKind]: KeyLegend<Extract<AnyReply, { t: T }>> };
}

export const LEGEND: Legend = {
  common: {
    t: ['type', 'the message kind (every message)'],
    v: ['protocol', "protocol number (ipc/version.ts, native/proto.h): every request, and hello's reply"],
    build: ['build', "build identity: every request, and hello's reply; keys may differ between builds"],
  },
  requests: {
    hello: {},
    compile: {
      cwd: ['cwd', "the compiler call's working directory"],
      exe: ['executable', 'absolute path of the compiler the shim will run (resolved on PATH, shims skipped)'],
      argv: ['argv', 'the call as the build gave it; argv[0] is the compiler as named'],
      env: ['environment', 'the shim\'s whole environment as "K=V" (the front-end picks what matters)'],
      tty: ['stderr_is_tty', "whether the shim's stderr is a terminal"],
      wf: ['writes_files', "the shim writes a hit's output files itself (they come back in `files`)"],
      sp: ['takes_spares', "... into empty files of the daemon's (a third element in `files`)"],
      ow: ['one_way', 'the shim can report a compile one-way, sending the files `col` names'],
      sx: ['splits', 'the shim can run a `split` reply (a command with several sources)'],
      pid: ['shim_pid', "the shim's process id: once it exited, its one-way report is on its way"],
    },
    done: {
      id: ['pending_id', "the `run` reply's id"],
      code: ['exit_code', "the compiler's exit code"],
      out: ['stdout', 'what the compiler wrote to stdout'],
      err: ['stderr', 'what the compiler wrote to stderr'],
      files: ['collected_files', 'one-way only: [absolute path, bytes, mtime ms] of each file `col` named'],
      nocache: ['not_captured', 'stdout/stderr were not fully captured or delivered: not stored'],
      nr: ['no_reply', 'one-way: the shim has gone; nothing is sent back, errors included'],
      signal: ['signal', 'the signal the compiler died of (native shim; not read yet)'],
    },
    config: {},
    stats: {
      session: ['session', 'only the counters of one `vrift run` (its VRIFT_SESSION)'],
      zero: ['zero', 'reset the counters after reading them'],
      fallbacks_since: ['fallbacks_since', 'count the calls that went around the cache from then (epoch ms)'],
    },
    peers: {},
    live: {
      op: ['operation', "'status', or 'wait': answer once nothing is pending or timeout_ms passed"],
      timeout_ms: ['timeout_ms', 'wait: answer by then at the latest (ms)'],
    },
    shutdown: {},
    'store-op': {
      op: ['operation', "clean, verify, rescan or settle the daemon's store"],
      maxSize: ['max_size', "clean: down to this size (the CLI's option string)"],
      olderThan: ['older_than', "clean: what was not used for this long (the CLI's option string)"],
    },
  },
  replies: {
    hit: {
      out: ['stdout', "the compiler's stdout to replay"],
      err: ['stderr', "the compiler's stderr to replay"],
      code: ['exit_code', 'the exit code to exit with'],
      files: ['files', 'only with wf: [absolute path, bytes, spare file?] to write before replaying'],
    },
    run: {
      id: ['pending_id', 'names the compile in its `done`'],
      argv: ['argv', 'the command to run; argv[0] is the executable'],
      env: ['environment_additions', '"K=V" to add to the shim\'s environment'],
      col: ['collect', 'only with ow: absolute paths to read after the compile and send one-way'],
      mmd: ['mmd_depfile', 'only with col: [full depfile, -MMD depfile to write, phony, targets, search dirs]'],
    },
    pass: {
      reason: ['reason', 'why the call is not cached (ipc/reasons.ts); run the call unchanged'],
    },
    split: {
      cmds: ['compiles', "each compile's arguments (argv[0] left out), run in order through the shim"],
      link: ['link', 'the link to run after them when all succeeded'],
    },
    ok: {},
    error: {
      code: ['error_code', 'a stable code (ipc/errors.ts); a shim treats it as pass'],
      message: ['message', 'what failed, for people'],
    },
    hello: {
      pid: ['daemon_pid', "the daemon's process id"],
      home: ['home', "the daemon's VRIFT_HOME"],
      uptimeMs: ['uptime_ms', 'how long the daemon has run'],
    },
    config: {
      pid: ['daemon_pid', "the daemon's process id"],
      config: ['config', 'the per-instance settings the daemon applies (the token left out)'],
      token_fp: ['token_fingerprint', 'a fingerprint of the remote token, never the token'],
      started_ms: ['started_ms', 'when the daemon started (epoch ms)'],
    },
    stats: {
      stats: ['stats', "the counters, the store's and remote's numbers, lookup latency, the daemon's state"],
    },
    peers: {
      enabled: ['enabled', 'false when the daemon runs with peers = "off"'],
      peers: ['peers', 'each LAN peer: id, addresses, port, key, state (up, cooling, gone), round trip, hits, bytes each way'],
    },
    live: {
      enabled: ['enabled', 'false when the daemon runs without live mode'],
      settled: ['settled', 'nothing pending: no change waiting to settle, no warm run queued or running'],
      status: ['status', "live mode's state and counters (`vrift live status --json`)"],
    },
    'store-op': {
      result: ['result', 'what the operation did (sizes, files checked or removed)'],
    },
  },
};
