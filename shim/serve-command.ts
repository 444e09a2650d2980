import { spawn } from 'node:child_process';
import type { Command } from 'commander';
import { serveFlags } from '../config/serve-flags.js';
import { DAEMON_MAIN } from './daemon-control.js';

// `vrift serve` is `vriftd serve` with the same flags (daemon/serve/command.ts): the server is
// the daemon's program. The flags are read here first, so help and refusals come from this
// command as from any other. The server runs in a session of its own and every SIGINT and
// SIGTERM sent here is passed on once (a Ctrl-C in the terminal reaches only this process):
// it stops as `vrift serve` always did, and this process ends as the server ends, by the same
// exit code or signal. Should this process be killed outright, the server sees its IPC
// channel close and stops too.
export function registerServe(program: Command): void {
  serveFlags(program.command('serve')).action(() => runServer(process.argv.slice(process.argv.indexOf('serve', 2) + 1)));
}

function runServer(args: string[]): Promise<void> {
  return new Promise(() => {
    const child = spawn(process.execPath, [DAEMON_MAIN, 'serve', ...args], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], detached: true });
    const pass = (sig: NodeJS.Signals) => void child.kill(sig);
    process.on('SIGINT', pass);
    process.on('SIGTERM', pass);
    child.on('error', (e) => {
      process.stderr.write(`vrift serve: cannot run ${DAEMON_MAIN}: ${e.message}\n`);
      process.exit(2);
    });
    child.on('exit', (code, sig) => {
      process.off('SIGINT', pass);
      process.off('SIGTERM', pass);
      if (sig) process.kill(process.pid, sig);
      else process.exit(code ?? 1);
    });
  });
}
