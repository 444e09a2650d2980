import fs from 'node:fs';
import type { Command } from 'commander';
import type { ChannelLogger } from '../daemon/log.js';
import { startServe } from '../daemon/serve/open.js';
import { portArg, positiveSizeArg, sizeArg } from './arg-parsers.js';
import { reason } from './user-errors.js';

function stderrLogger(channel: string): ChannelLogger {
  const w = (level: string) => (msg: string, f?: Record<string, unknown>) =>
    process.stderr.write(JSON.stringify({ time: new Date().toISOString(), level, channel, msg, ...(f && Object.fromEntries(Object.entries(f).map(([k, v]) => [k, v instanceof Error ? v.message : v]))) }) + '\n');
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

export function registerServe(program: Command): void {
  program.command('serve').description('run a team cache server (Bazel HTTP cache layout; also ccache subdirs/flat keys)')
    .requiredOption('--port <n>', '(required) TCP port (0: any free port, printed on start)', portArg)
    .requiredOption('--store <dir|s3://bucket/prefix>', '(required) a directory, or a bucket shared by several servers')
    .option('--host <addr>', 'address to bind (default 127.0.0.1 without --tokens, 0.0.0.0 with)')
    .option('--max-size <size>', 'evict least recently used objects above this size (directory store), e.g. 20G', sizeArg)
    .option('--max-blob-size <size>', 'largest single upload (default 1GiB, at most --max-size); larger gets 413', positiveSizeArg)
    .option('--tokens <file>', 'one "token ro|rw" a line; clients send it as Bearer, or as the Basic password (/status and /metrics then need a read token too)')
    .option('--allow-anonymous-read', 'with --tokens: GET/HEAD without credentials')
    .option('--tls-cert <file>', 'serve HTTPS with this certificate (PEM)')
    .option('--tls-key <file>', 'and this key (PEM)')
    .option('--access-log <file|-|off>', 'NDJSON access log', '-')
    .addHelpText('after', `
Clients: vrift (remote_url = "http://host:port"), ccache (remote_storage = "http://host:port/x|layout=bazel",
or the default subdirs layout), Bazel (--remote_cache=http://host:port).`)
    .action(async (o) => {
      const log = stderrLogger('serve');
      let server;
      try {
        server = await startServe({ ...o, accessLog: accessSink(o.accessLog), log, env: process.env });
      } catch (e) {
        process.stderr.write(`vrift serve: ${(e as Error).message}\n`);
        process.exit(2);
      }
      process.stderr.write(`vrift serve: listening on ${server.url}, store ${o.store}\n`);
      const stop = () => void server.close().then(() => process.exit(0));
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
}
