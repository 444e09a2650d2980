import './v8-flags.js';
import { instancePaths } from '../ipc/paths.js';
import { clearStartFailure, writeStartFailure } from '../ipc/start-failure.js';
import { Daemon } from './daemon.js';

// vriftd: normally started by the shim or `vrift daemon start`, holding the instance lock
// (an inherited flock'd fd in VRIFT_LOCK_FD, or under flock(1)) for its whole life.
const argv = process.argv.slice(2);
if (argv.includes('--help') || argv.includes('-h')) {
  process.stdout.write(`Usage: vriftd [--help]
       vriftd serve --port <n> --store <dir|s3://bucket/prefix> [options]

The vrift daemon: serves compile lookups for one instance (VRIFT_HOME, default ~/.vrift)
on ipc://$VRIFT_HOME/run/vriftd.sock. It is started on demand by vrift-shim and by
'vrift daemon start'; stop it with 'vrift daemon stop'. Logs: $VRIFT_HOME/log/vriftd.ndjson.
'vriftd serve' is the team cache server ('vrift serve' runs it; 'vriftd serve --help').
`);
  process.exit(0);
}

// A start that fails says why where the CLI and the shims look (ipc/start-failure.ts): with
// no daemon there is no log they could be pointed to.
const home = instancePaths().home;
// Tests move the daemon's clock (a __DATE__ entry expires the next day) and not the machine's.
const skewMs = Number(process.env.VRIFT_TEST_CLOCK_SKEW_MS) || 0;
const daemon = await Daemon.start(skewMs ? { now: () => Date.now() + skewMs } : {}).catch((err) => {
  const reason = (err as Error).message;
  writeStartFailure(home, reason);
  process.stderr.write(`vriftd: cannot start: ${reason}\n`);
  process.exit(1);
});
clearStartFailure(home);
// The first SIGTERM or SIGINT (CI teardown, systemctl stop, Ctrl-C) writes what waits and
// lets queued uploads finish, 10 s at most (Daemon.close); a second one ends the process at
// once. Either way no build depends on the daemon: a shim that loses it compiles itself.
function stopOnSignals(daemon: Daemon): void {
  let signalled = false;
  const stop = (sig: NodeJS.Signals) => {
    if (signalled) process.exit(128 + (sig === 'SIGINT' ? 2 : 15));
    signalled = true;
    daemon.ctx.log.log('info', 'daemon', 'stopping on signal', {
      signal: sig,
      pending: daemon.ctx.pending.size,
      uploads: daemon.ctx.remote?.stats().queued ?? 0,
    });
    void daemon.close();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
stopOnSignals(daemon);
process.on('uncaughtException', (err) => {
  daemon.ctx.log.log('error', 'daemon', 'uncaught exception', { err });
  void daemon.close().finally(() => process.exit(1));
});
await daemon.closed;
process.exit(0);
