// Loopback throughput of `vrift serve` on its own (the full harness runs the same with --remote):
//   node dist/bench/remote.js [--seconds 3] [--concurrency 32]
// Small-object HEAD/GET per second and MB/s for a 64 MB blob (PUT, GET plain, GET zstd,
// and through the daemon's HttpTier), plus the server's VmRSS around the big transfers.
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { serveThroughput } from './serve-throughput.js';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'shim', 'cli.js');

console.log(
  `${os.cpus().length} CPUs, node ${process.version}, load ${os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')}`,
);
const r = await serveThroughput(CLI, { seconds: arg('seconds', 3), concurrency: arg('concurrency', 32), log: (l) => console.log(l) });
const mib = (k?: number) => (k === undefined ? 'n/a' : `${(k / 1024).toFixed(1)} MiB`);
console.log(`server VmRSS before the 64 MB transfers ${mib(r.serverRssKiB.before)}, after ${mib(r.serverRssKiB.after)}`);
