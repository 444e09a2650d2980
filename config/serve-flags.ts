import type { Command } from 'commander';
import { portArg, positiveSizeArg, sizeArg } from './arg-parsers.js';

// The flags of the team cache server, defined once: `vrift serve` reads them (its help, and
// refusals said before anything starts) and `vriftd serve`, the program it runs, reads the same.

/** What the flags read to (sizes in bytes). */
export interface ServeFlags {
  port: number;
  store: string;
  host?: string;
  maxSize?: number;
  maxBlobSize?: number;
  tokens?: string;
  allowAnonymousRead?: boolean;
  tlsCert?: string;
  tlsKey?: string;
  accessLog: string; // a file, '-' (stdout) or 'off'
}

export function serveFlags(cmd: Command): Command {
  return cmd
    .description('run a team cache server (Bazel HTTP cache layout; also ccache subdirs/flat keys)')
    .requiredOption('--port <n>', '(required) TCP port (0: any free port, printed on start)', portArg)
    .requiredOption('--store <dir|s3://bucket/prefix>', '(required) a directory, or a bucket shared by several servers')
    .option('--host <addr>', 'address to bind (default 127.0.0.1 without --tokens, 0.0.0.0 with)')
    .option('--max-size <size>', 'evict least recently used objects above this size (directory store), e.g. 20G', sizeArg)
    .option('--max-blob-size <size>', 'largest single upload (default 1GiB, at most --max-size); larger gets 413', positiveSizeArg)
    .option(
      '--tokens <file>',
      'one "token ro|rw" a line; clients send it as Bearer, or as the Basic password (/status and /metrics then need a read token too)',
    )
    .option('--allow-anonymous-read', 'with --tokens: GET/HEAD without credentials')
    .option('--tls-cert <file>', 'serve HTTPS with this certificate (PEM)')
    .option('--tls-key <file>', 'and this key (PEM)')
    .option('--access-log <file|-|off>', 'NDJSON access log', '-')
    .addHelpText(
      'after',
      `
Clients: vrift (remote_url = "http://host:port"), ccache (remote_storage = "http://host:port/x|layout=bazel",
or the default subdirs layout), Bazel (--remote_cache=http://host:port).`,
    );
}
