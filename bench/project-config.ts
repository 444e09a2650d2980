import { ProjectConfigs } from '../config/project-config.js';
import { instancePaths } from '../ipc/paths.js';

// Cost of the per-compile project settings (config/project-config.ts) in a directory six
// levels deep: the cached path every lookup takes, and the walk it does once a second.
// `node dist/bench/project-config.js [cwd]`
const cwd = process.argv[2] ?? process.cwd();
const env = { ...process.env } as Record<string, string>;
const paths = instancePaths(env);
const time = (recheckMs: number | undefined, n: number) => {
  const pc = new ProjectConfigs({ paths, userFile: paths.userConfig, now: Date.now, recheckMs });
  for (let i = 0; i < Math.min(n, 5000); i++) pc.resolve(cwd, env);
  const t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) pc.resolve(cwd, env);
  return Number(process.hrtime.bigint() - t) / n / 1000;
};
process.stdout.write(`cwd ${cwd}\ncached resolve: ${time(undefined, 200_000).toFixed(2)} µs\nwalk + stat every call: ${time(0, 20_000).toFixed(1)} µs\n`);
