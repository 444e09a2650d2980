#!/usr/bin/env node
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Command, Option } from 'commander';
import { ipcCall } from '../ipc/client.js';
import { instancePaths } from '../ipc/paths.js';
import { BUILD_ID } from '../ipc/version.js';
import { ensureDaemon, NATIVE_SHIM, ping, stopDaemon } from './daemon-control.js';
import { formatStats, hitRate } from './format.js';
import { formatPeers, type PeerLine } from './format-peers.js';
import { ensureShimsDir } from './shims-dir.js';
import { interceptEnv } from './intercept.js';
import { runStoreCommand } from './store-commands.js';
import { showConfig } from './config-command.js';
import { loadConfig } from '../config/config.js';
import { runDemo } from './demo.js';
import { registerServe } from './serve-command.js';
import { registerKeys } from './keys-command.js';
import { liveLoop, liveStatusOf, registerLive } from './live-command.js';
import { mountAll, registerMount } from './mount-command.js';
import { defaultSigningKeyPath } from '../trust/key-file.js';
import { durationArg, remoteUrlArg, sizeArg } from '../config/arg-parsers.js';
import { redactUrl, remoteIdentity } from '../config/remote-url.js';
import { checkHome, reason, userMessage } from '../ipc/user-errors.js';

const program = new Command('vrift')
  .description('vrift: a build-artifact cache under gcc, clang and any build step')
  .version(BUILD_ID)
  // Errors on one line, as every other vrift error (`vrift: option '--max-size <size>' argument '5zz' is invalid. …`).
  .configureOutput({ outputError: (str, write) => write(str.replace(/^error: /, 'vrift: ')) })
  .enablePositionalOptions()
  .addHelpText(
    'after',
    `
Quick use:
  vrift run -- make -j2          build through the cache, print a summary line
  CC="vrift-shim gcc" make       or name the shim yourself (CMake: -DCMAKE_C_COMPILER_LAUNCHER=vrift-shim)
  export PATH="$(vrift shims-dir):$PATH"   masquerade as gcc/cc/g++/c++/clang/clang++/rustc

Environment: VRIFT_HOME (instance dir, default ~/.vrift), VRIFT_DISABLE=1, VRIFT_* config overrides.`,
  );

const env = process.env;
const paths = () => instancePaths(env);
const fail = (msg: string): never => {
  process.stderr.write(`vrift: ${msg}\n`);
  process.exit(2);
};
// `vrift config | head -3`: the reader has gone, so has the need to write.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  fail(userMessage(e));
});

const daemon = program.command('daemon').description('start, stop or inspect the background daemon (vriftd)');
daemon
  .command('start')
  .description('start the daemon unless one of this version runs')
  .action(async () => {
    const info = await ensureDaemon(env).catch((e) => fail(e.message));
    process.stdout.write(`vriftd running, pid ${info.pid}, ${paths().endpoint}\n`);
  });
daemon
  .command('stop')
  .description('stop the daemon (it flushes stats first)')
  .action(async () => {
    const info = await stopDaemon(env).catch((e) => fail(e.message));
    process.stdout.write(info ? `vriftd ${info.pid} stopped\n` : 'vriftd was not running\n');
  });
daemon
  .command('status')
  .description('is the daemon running? exit 0 if so, 1 if not')
  .option('--json', 'machine-readable')
  .action(async (o) => {
    const info = await ping(paths(), 5000); // a daemon busy with a -j build is still running
    // The user's view, in the keys `vrift stats --json` uses; not the wire's hello reply.
    if (o.json)
      process.stdout.write(
        JSON.stringify({
          running: !!info,
          ...(info ? { pid: info.pid, build: info.build, uptime_ms: info.uptimeMs } : {}),
          home: paths().home,
          endpoint: paths().endpoint,
        }) + '\n',
      );
    else
      process.stdout.write(
        info
          ? `vriftd running: pid ${info.pid}, build ${info.build}, up ${Math.round(info.uptimeMs / 1000)} s, ${paths().endpoint}\n`
          : 'vriftd is not running\n',
      );
    process.exitCode = info ? 0 : 1;
  });

program
  .command('stats')
  .description('show cache statistics (they survive daemon restarts)')
  .option('--json', 'machine-readable JSON')
  .option('-z, --zero', 'reset the counters to zero')
  .option('--session <id>', 'only the calls of one `vrift run` (its VRIFT_SESSION)')
  .option('--explain', 'say under each line what it counts')
  .action(async (o) => {
    await ensureDaemon(env).catch((e) => fail(e.message));
    // The daemon first waits for reports in flight and writes what it holds (seconds on a busy
    // machine): "no answer" after the default 5 s would be wrong.
    const r = await ipcCall(paths().endpoint, { t: 'stats', zero: !!o.zero, session: o.session }, 30_000).catch((e) => fail(e.message));
    if (o.json)
      process.stdout.write(JSON.stringify(r.stats, null, 2) + '\n'); // with --zero: the counters as they now are
    else if (o.zero) process.stdout.write('statistics zeroed\n');
    else process.stdout.write(formatStats(r.stats as Record<string, unknown>, paths().home, !!o.explain));
  });

program
  .command('peers')
  .description('LAN peers this daemon knows: addresses, key, state (up, cooling, gone), round trip, hits, bytes')
  .option('--json', 'machine-readable JSON')
  .action(async (o) => {
    await ensureDaemon(env).catch((e) => fail(e.message));
    const r = await ipcCall(paths().endpoint, { t: 'peers' }, 10_000).catch((e) => fail(e.message));
    if (o.json) process.stdout.write(JSON.stringify(r.peers, null, 2) + '\n');
    else process.stdout.write(formatPeers(r.peers as unknown as PeerLine[], !!r.enabled));
  });

program
  .command('clean')
  .description('remove cache entries: everything, or down to a size, or older than an age')
  .option('--max-size <size>', 'evict least recently used entries until the store is at most this big (e.g. 5G, 500M)', sizeArg)
  .option('--older-than <age>', 'remove entries not used for this long (e.g. 30d, 12h, 90m)', durationArg)
  .option('--all', 'remove everything (the default when no other option is given)')
  .action(async (o) => runStoreCommand('clean', o, env));

program
  .command('verify')
  .description('rehash every stored blob and entry; drop and report corrupt ones')
  .option('--json', 'machine-readable result')
  .action(async (o) => runStoreCommand('verify', o, env));

program
  .command('config')
  .description('show what a compile in this directory gets, where each value came from, and what the running daemon does not apply yet')
  .option('--json', 'machine-readable JSON')
  .action(async (o) => {
    await showConfig(o, env, (s) => void process.stdout.write(s)).catch((e) => fail((e as Error).message));
  });

program
  .command('shims-dir')
  .description('print a directory of gcc/cc/g++/c++/clang/clang++/rustc links to the shim, to put first on PATH')
  .action(() => {
    const bad = checkHome(paths());
    if (bad) fail(bad);
    process.stdout.write(ensureShimsDir(paths()) + '\n');
  });

program
  .command('run')
  .description('run a build with every compiler call going through vrift; print a summary line')
  .addOption(
    new Option(
      '--cache-remote <url>',
      'remote cache URL for this build (VRIFT_REMOTE): http(s)://host[:port][/prefix] or s3://bucket[/prefix]; a running daemon with another remote or other credentials is restarted when no compile waits on it',
    ).argParser(remoteUrlArg),
  )
  .option('-q, --quiet', 'no summary line')
  .option('--live', 'then stay: live mode warms what changes, a status line says what; Enter runs the command again, Ctrl-C ends')
  .option('--auto', 'with --live: run the command again by itself once changes are warmed')
  .option(
    '--lazy <dir>',
    "mount vrift's overlay over this build output directory unless mounted (repeatable; lazy_dirs too); it stays mounted",
    (v: string, acc: string[]) => [...acc, path.resolve(v)],
    [] as string[],
  )
  .argument('<command...>', 'the build command, after --')
  .passThroughOptions()
  .action(async (command: string[], o) => {
    const t0 = process.hrtime.bigint(); // the time a user waits includes the daemon's start
    const session = crypto.randomBytes(6).toString('hex');
    const childEnv: NodeJS.ProcessEnv = { ...env, VRIFT_SESSION: session };
    if (o.cacheRemote) childEnv.VRIFT_REMOTE = o.cacheRemote;
    // A daemon this starts runs in live mode (one already running says whether it does).
    if (o.live) childEnv.VRIFT_LIVE = '1';
    let shims: string | undefined;
    try {
      await ensureDaemon(childEnv);
      shims = ensureShimsDir(paths());
      if (o.cacheRemote) await useRemote(childEnv, o.cacheRemote);
    } catch (e) {
      process.stderr.write(`vrift: cache unavailable, building without it: ${(e as Error).message}\n`);
      // Said once here: shims the build names itself (CC="vrift-shim gcc") don't try again.
      if (!shims) childEnv.VRIFT_DISABLE = '1';
    }
    // A bad velo.toml (or VRIFT_* value) here makes this project's compiles go around the cache: say why once.
    if (shims) {
      try {
        loadConfig({ env: childEnv });
      } catch (e) {
        process.stderr.write(`vrift: compiles here go without the cache: ${(e as Error).message}\n`);
      }
    }
    if (shims) {
      // Set after the daemon is up: the daemon never carries the interceptor.
      const ic = interceptEnv(childEnv, shims);
      if (ic.ok) Object.assign(childEnv, ic.env);
      else process.stderr.write(`vrift: compilers are caught only by name on PATH: ${ic.reason}\n`);
      childEnv.PATH = `${shims}${path.delimiter}${env.PATH ?? ''}`;
    }
    // The overlays, before the build writes into their dirs.
    const lazy = [...new Set([...(o.lazy as string[]), ...(shims ? lazyDirs(childEnv) : [])])];
    if (shims && lazy.length) {
      await mountAll(lazy, { paths, env, err: (s) => void process.stderr.write(s) }).catch((e) =>
        process.stderr.write(`vrift: ${(e as Error).message}; outputs are written as before\n`),
      );
      // A cwd inside a DIR still names the directory beneath the mount: by its path again,
      // the build (which inherits it) works through the overlay.
      try {
        process.chdir(process.cwd());
      } catch {
        // the cwd is gone: the build's own spawn says so
      }
    }
    // cargo: the shim as RUSTC_WRAPPER, unless the build already names a wrapper.
    if (shims && env.RUSTC_WRAPPER === undefined && fs.existsSync(NATIVE_SHIM)) childEnv.RUSTC_WRAPPER = NATIVE_SHIM;
    // One run of the command and its summary line (each run its own session: its own counts).
    let runs = 0;
    const once = async (): Promise<number> => {
      const began = runs === 0 ? t0 : process.hrtime.bigint();
      const sess = runs++ === 0 ? session : crypto.randomBytes(6).toString('hex');
      childEnv.VRIFT_SESSION = sess;
      const startedAt = Date.now();
      let started = true;
      const code: number = await new Promise((resolve) => {
        const child = spawn(command[0], command.slice(1), { stdio: 'inherit', env: childEnv });
        child.on('error', (e: NodeJS.ErrnoException) => {
          started = false;
          // As a shell says it: 127 for a command not found, 126 for one that cannot run.
          const notFound = e.code === 'ENOENT';
          process.stderr.write(`vrift run: ${command[0]}: ${notFound ? 'command not found' : reason(e)}\n`);
          resolve(notFound ? 127 : 126);
        });
        child.on('close', (c, sig) => resolve(c ?? (sig ? 128 + 15 : 1)));
      });
      const secs = Number(process.hrtime.bigint() - began) / 1e9;
      if (!o.quiet && shims && started) {
        const r = await ipcCall(paths().endpoint, { t: 'stats', session: sess, fallbacks_since: startedAt }).catch(() => undefined);
        const s = r?.stats as
          | { hits: number; misses: number; compile_failed: number; uncacheable: Record<string, number>; shim_fallbacks?: Record<string, number> }
          | undefined;
        if (s) {
          const sum = (m: Record<string, number> = {}) => Object.values(m).reduce((a, b) => a + b, 0);
          // Calls that went around the cache are not tagged with the session: the count is
          // the instance's since this build started (any concurrent build's included), the
          // interceptor's included (a compiler it could not route).
          const around = sum(s.shim_fallbacks);
          process.stderr.write(
            `vrift: ${secs.toFixed(2)} s, ${s.hits} hits, ${s.misses} misses, ${sum(s.uncacheable)} uncacheable${s.compile_failed ? `, ${s.compile_failed} failed` : ''}, hit rate ${hitRate(s)}` +
              `${around ? `, ${around} calls went around the cache (see ${path.join(paths().home, 'log', 'fallback.ndjson')})` : ''}\n`,
          );
        }
      }
      return code;
    };
    process.exitCode = o.live ? await liveLoop({ once, auto: !!o.auto, status: () => liveStatusOf(paths().endpoint) }) : await once();
  });

program
  .command('demo')
  .description('build a real C project (libuv from Debian sources) twice through vrift and show the speed-up')
  .option('--dir <dir>', 'work directory', path.join(paths().home, 'demo'))
  .action(async (o) => {
    process.exitCode = await runDemo(o.dir, env);
  });

/** The project's lazy_dirs; none when its configuration does not read (vrift config says why). */
function lazyDirs(e: NodeJS.ProcessEnv = env): string[] {
  try {
    return loadConfig({ env: e }).config.lazy_dirs;
  } catch {
    return [];
  }
}

registerServe(program);
registerMount(program, {
  paths,
  env,
  lazyDirs: () => lazyDirs(),
  out: (s) => void process.stdout.write(s),
  err: (s) => void process.stderr.write(s),
  fail,
});
registerLive(program, {
  endpoint: () => paths().endpoint,
  ensureDaemon: () => ensureDaemon(env),
  out: (s) => void process.stdout.write(s),
  err: (s) => void process.stderr.write(s),
  fail,
});
registerKeys(program, {
  home: () => paths().home,
  signingKey: () => {
    // A broken config.toml does not stop `vrift keys`: the key is then looked for where it is by default.
    try {
      const r = loadConfig({ env, project: false });
      return { file: r.config.signing_key, isDefault: r.sources.signing_key.source === 'default' };
    } catch {
      return { file: defaultSigningKeyPath(paths().home), isDefault: true };
    }
  },
  out: (s) => void process.stdout.write(s),
  err: (s) => void process.stderr.write(s),
  fail,
});

// The daemon reads its remote when it starts. A running daemon with another remote (or none,
// or the same one with other credentials) is restarted with this one when no compile is
// waiting for it (its uploads are sent before it exits); while compiles run, it keeps its
// remote and the user is told. Credentials are compared by identity, never printed.
async function useRemote(childEnv: NodeJS.ProcessEnv, wanted: string) {
  const endpoint = paths().endpoint;
  // stats waits for pending reports (up to ~5 s): a busy machine needs more than the default.
  const r = await ipcCall(endpoint, { t: 'stats' }, 20_000).catch(() => undefined);
  const s = r?.stats as { remote?: { url?: string; identity?: string }; daemon?: { pending?: number } } | undefined;
  if (!s) {
    process.stderr.write(
      `vrift: the running daemon did not say which remote it uses; run \`vrift daemon stop\` first to be sure it uses ${redactUrl(wanted)}\n`,
    );
    return;
  }
  const have = s?.remote?.url ?? '';
  let token = childEnv.VRIFT_REMOTE_TOKEN ?? '';
  try {
    token = loadConfig({ env: childEnv }).config.remote_token;
  } catch {
    // the daemon's own start reports a broken configuration
  }
  if ((s?.remote?.identity ?? '') === remoteIdentity(wanted, token)) return;
  const shown = redactUrl(wanted);
  const what = have && have.replace(/\/+$/, '') === shown.replace(/\/+$/, '') ? `${shown} with other credentials` : shown;
  if (s.daemon?.pending === 0) {
    await stopDaemon(childEnv);
    await ensureDaemon(childEnv);
    process.stderr.write(`vrift: restarted the daemon to use remote ${what} (it used ${have || 'none'})\n`);
    return;
  }
  process.stderr.write(`vrift: the running daemon uses remote ${have || '(none)'} and has compiles running; run \`vrift daemon stop\` first to use ${what}\n`);
}

await program.parseAsync(process.argv).catch((e) => fail(userMessage(e, paths())));
