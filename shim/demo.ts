import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { PACKAGE_ROOT } from './daemon-control.js';

// `vrift demo`: libuv (Debian's source package) configured with CMake, built once cold and
// once after `make clean` through `vrift run`, in its own VRIFT_HOME so the first build is
// really cold. Prints both times, the hit rate and the speed-up.
function sh(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; quiet?: boolean } = {},
): { code: number; stderr: string; secs: number } {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    stdio: ['ignore', opts.quiet ? 'ignore' : 'inherit', 'pipe'],
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  if (!opts.quiet && r.stderr) process.stderr.write(r.stderr);
  return { code: r.status ?? 1, stderr: r.stderr ?? '', secs };
}

export async function runDemo(dir: string, env: NodeJS.ProcessEnv): Promise<number> {
  const say = (s: string) => process.stdout.write(`demo: ${s}\n`);
  const fetch = path.join(PACKAGE_ROOT, 'scripts', 'fetch-sources.sh');
  const srcCache = env.VRIFT_SRC_CACHE || path.join(env.HOME || '/root', '.cache', 'vrift', 'src');
  say(`fetching libuv from Debian sources into ${srcCache}`);
  if (sh('bash', [fetch, srcCache, 'libuv'], { quiet: true }).code !== 0) {
    say('could not fetch libuv sources (see scripts/fetch-sources.sh)');
    return 1;
  }
  const tree = fs.readdirSync(srcCache).find((n) => n.startsWith('libuv-') && fs.statSync(path.join(srcCache, n)).isDirectory());
  if (!tree) {
    say('libuv tree not found after fetching');
    return 1;
  }
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const src = path.join(dir, 'libuv');
  fs.cpSync(path.join(srcCache, tree), src, { recursive: true });
  const build = path.join(src, 'build');
  const demoEnv = { ...env, VRIFT_HOME: path.join(dir, 'vrift-home') };
  const vrift = [path.join(PACKAGE_ROOT, 'dist', 'shim', 'cli.js')];
  say('configuring with cmake (RelWithDebInfo, tests on)');
  if (
    sh(
      'cmake',
      [
        '-S',
        src,
        '-B',
        build,
        '-DCMAKE_BUILD_TYPE=RelWithDebInfo',
        '-DLIBUV_BUILD_TESTS=ON',
        `-DCMAKE_C_COMPILER_LAUNCHER=${path.join(PACKAGE_ROOT, 'native', 'build', 'vrift-shim')}`,
      ],
      { env: demoEnv, quiet: true },
    ).code !== 0
  ) {
    say('cmake failed');
    return 1;
  }
  const jobs = String(Math.max(2, (await import('node:os')).cpus().length));
  say(`build 1 (cold cache): make -j${jobs}`);
  const cold = sh(process.execPath, [...vrift, 'run', '--', 'make', '-s', `-j${jobs}`], { cwd: build, env: demoEnv, quiet: true });
  if (cold.code !== 0) {
    process.stderr.write(cold.stderr);
    return cold.code;
  }
  sh('make', ['clean'], { cwd: build, env: demoEnv, quiet: true });
  say(`build 2 (after make clean, warm cache): make -j${jobs}`);
  const warm = sh(process.execPath, [...vrift, 'run', '--', 'make', '-s', `-j${jobs}`], { cwd: build, env: demoEnv, quiet: true });
  if (warm.code !== 0) {
    process.stderr.write(warm.stderr);
    return warm.code;
  }
  const summary = (s: string) =>
    s
      .split('\n')
      .filter((l) => l.startsWith('vrift: '))
      .pop() ?? '';
  say(`cold: ${summary(cold.stderr)}`);
  say(`warm: ${summary(warm.stderr)}`);
  say(`speed-up of the warm rebuild: ${(cold.secs / warm.secs).toFixed(1)}x (${cold.secs.toFixed(1)} s -> ${warm.secs.toFixed(1)} s)`);
  sh(process.execPath, [...vrift, 'daemon', 'stop'], { env: demoEnv, quiet: true });
  return 0;
}
