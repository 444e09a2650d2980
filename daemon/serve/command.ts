import fs from 'node:fs';
import { Command } from 'commander';
import { serveFlags, type ServeFlags } from '../../config/serve-flags.js';
import { instancePaths } from '../../ipc/paths.js';
import { reason, userMessage } from '../../ipc/user-errors.js';
import type { ChannelLogger } from '../log.js';
import { startServe } from './open.js';
import { stopOnSignals } from './stop-on-signals.js';

// `vriftd serve …`: the team cache server, the program `vrift serve` runs with the flags it
// was given. What it prints, its exit codes and its signals are those of `vrift serve`.

// How long past close()'s own deadline (when it cuts the connections still open) a drain may
// run before the process ends anyway (stop-on-signals.ts).
const HARD_MARGIN_MS = 5_000;

function stderrLogger(channel: string): ChannelLogger {
  const w = (level: string) => (msg: string, f?: Record<string, unknown>) =>
    process.stderr.write(
      JSON.stringify({
        time: new Date().toISOString(),
        level,
        channel,
        msg,
        ...(f && Object.fromEntries(Object.entries(f).map(([k, v]) => [k, v instanceof Error ? v.message : v]))),
      }) + '\n',
    );
  return { debug: () => {}, info: w('info'), warn: w('warn'), error: w('error') };
}

// The file is opened before the server listens: a log that cannot be written is refused at
// start, not lost line by line. A write that fails later is said once on stderr.
function accessSink(where: string): ((line: string) => void) | undefined {
  if (where === 'off') return undefined;
  if (where === '-') return (l) => void process.stdout.write(l + '\n');
  let fd: number;
  try {
    fd = fs.openSync(where, 'a', 0o644);
  } catch (e) {
    throw new Error(`--access-log: cannot open ${where}: ${reason(e)}`);
  }
  const s = fs.createWriteStream('', { fd });
  s.once('error', (e) => process.stderr.write(`vrift serve: access log ${where}: ${e.message}; no more lines are written there\n`));
  return (l) => void (s.writable && s.write(l + '\n'));
}

async function serve(o: ServeFlags): Promise<void> {
  // Started by `vrift serve`, which is gone once this channel closes (even killed outright):
  // the server goes with it rather than hold the port with no one to stop it.
  const byCli = typeof process.send === 'function';
  const log = stderrLogger('serve');
  let server: Awaited<ReturnType<typeof startServe>>;
  try {
    server = await startServe({ ...o, accessLog: accessSink(o.accessLog), log, env: process.env });
  } catch (e) {
    process.stderr.write(`vrift serve: ${(e as Error).message}\n`);
    process.exit(2);
  }
  process.stderr.write(`vrift serve: listening on ${server.url}, store ${o.store}\n`);
  const stop = stopOnSignals({ server, log, exit: (code) => process.exit(code), marginMs: HARD_MARGIN_MS });
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  if (byCli) {
    if (process.connected) process.once('disconnect', () => stop());
    else stop();
  }
}

/** `argv`: what follows `vriftd`, starting with `serve`. */
export async function serveCommand(argv: string[]): Promise<void> {
  // `--access-log -` into a reader that has gone: the need to write has gone too.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    process.stderr.write(`vrift serve: stdout: ${reason(e)}\n`);
    process.exit(2);
  });
  const program = new Command('vriftd').configureOutput({ outputError: (str, write) => write(str.replace(/^error: /, 'vriftd: ')) }).enablePositionalOptions();
  serveFlags(program.command('serve')).action((o: ServeFlags) => serve(o));
  await program.parseAsync(argv, { from: 'user' }).catch((e) => {
    process.stderr.write(`vrift: ${userMessage(e, instancePaths())}\n`);
    process.exit(2);
  });
}
