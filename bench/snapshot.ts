import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import { DAEMON_NODE_FLAGS } from '../shim/daemon-control.js';
import fs from 'node:fs';
import path from 'node:path';

// vrift as it is right now, frozen for the length of a run. The working tree's shim and
// dist/ get rebuilt while others work (a half-written shim made whole builds fail with
// "Permission denied"), so the benchmark runs a copy: the shim binary, dist/, and a
// vriftd launcher the shim starts through VRIFT_DAEMON. node_modules is shared by symlink.

export interface Snapshot {
  root: string; // laid out like the repo: native/build/vrift-shim, dist/...
  env: Record<string, string>; // VRIFT_DAEMON
  shimSha256: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function copyWorkingShim(from: string, to: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    fs.copyFileSync(from, to);
    fs.chmodSync(to, 0o755);
    try {
      execFileSync(to, ['--version'], { stdio: 'ignore', timeout: 5000 });
      return;
    } catch (e) {
      if (attempt >= 10) throw new Error(`${from} does not run: ${(e as Error).message}`);
      await sleep(1000); // probably being relinked right now
    }
  }
}

export async function snapshotVrift(repoRoot: string, dir: string): Promise<Snapshot> {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(path.join(dir, 'native', 'build'), { recursive: true });
  const shim = path.join(dir, 'native', 'build', 'vrift-shim');
  await copyWorkingShim(path.join(repoRoot, 'native', 'build', 'vrift-shim'), shim);
  // The daemon's inotify addon too: without it the daemon stats every input of every lookup
  // (benchmarks from 2026-11-23 until 2026-11-28 15:41 ran that way, the log said "not loadable").
  const watchAddon = path.join(repoRoot, 'native', 'build', 'vrift_watch.node');
  if (fs.existsSync(watchAddon)) fs.copyFileSync(watchAddon, path.join(dir, 'native', 'build', 'vrift_watch.node'));
  else process.stderr.write('bench: native/build/vrift_watch.node is missing (make -C native): vrift runs without its input watcher\n');
  fs.cpSync(path.join(repoRoot, 'dist'), path.join(dir, 'dist'), { recursive: true });
  fs.copyFileSync(path.join(repoRoot, 'package.json'), path.join(dir, 'package.json'));
  fs.symlinkSync(path.join(repoRoot, 'node_modules'), path.join(dir, 'node_modules'));
  const vriftd = path.join(dir, 'vriftd');
  // exec keeps fd 3, the instance lock the shim hands over.
  fs.writeFileSync(vriftd, `#!/bin/sh\nexec '${process.execPath}' ${DAEMON_NODE_FLAGS.join(' ')} '${path.join(dir, 'dist', 'daemon', 'main.js')}' "$@"\n`, {
    mode: 0o755,
  });
  return {
    root: dir,
    env: { VRIFT_DAEMON: vriftd },
    shimSha256: crypto.createHash('sha256').update(fs.readFileSync(shim)).digest('hex'),
  };
}
