import bytes from 'bytes';
import path from 'node:path';
import type { Command } from 'commander';
import type { InstancePaths } from '../ipc/paths.js';
import { listMounts, mountDir, unmountDir, usersOf } from './overlay-control.js';

export interface MountCommandDeps {
  paths: () => InstancePaths;
  env: NodeJS.ProcessEnv;
  /** The project's lazy_dirs (absolute), for a command given no DIR. */
  lazyDirs: () => string[];
  out: (s: string) => void;
  err: (s: string) => void;
  fail: (msg: string) => never;
}

/** Mounts each dir; says once when FUSE cannot be used here (the build then goes on as before). */
export async function mountAll(dirs: string[], d: Pick<MountCommandDeps, 'paths' | 'env' | 'err'>): Promise<'ok' | 'unavailable'> {
  for (const dir of dirs) {
    const r = await mountDir(d.paths(), dir, d.env);
    if (r.state === 'unavailable') {
      d.err(`vrift: FUSE is unavailable here (${r.reason}): outputs are written as before\n`);
      return 'unavailable';
    }
    d.err(r.state === 'mounted' ? `vrift: ${dir} mounted (overlay pid ${r.pid}); \`vrift unmount ${dir}\` to stop\n` : `vrift: ${dir} is already mounted\n`);
  }
  return 'ok';
}

export function registerMount(program: Command, d: MountCommandDeps): void {
  const dirsOf = (dirs: string[]): string[] => {
    const out = dirs.length ? dirs.map((x) => path.resolve(x)) : d.lazyDirs();
    if (out.length === 0) d.fail('no DIR given and no lazy_dirs configured (velo.toml or VRIFT_LAZY_DIRS)');
    return out;
  };
  program
    .command('mount')
    .description("mount vrift's overlay over build output directories (default: the project's lazy_dirs); it stays mounted until `vrift unmount`")
    .argument('[dir...]', 'directories to mount over (made if missing)')
    .action(async (dirs: string[]) => {
      await mountAll(dirsOf(dirs), d).catch((e) => d.fail((e as Error).message));
    });
  program
    .command('unmount')
    .description("unmount the overlay from directories (default: the project's lazy_dirs); what the build wrote stays in them")
    .argument('[dir...]', 'mounted directories')
    .option('--force', 'unmount even while processes use files inside (they then get ENOTCONN)')
    .action(async (dirs: string[], o: { force?: boolean }) => {
      let missing = 0;
      for (const dir of dirsOf(dirs)) {
        // Once the overlay stops, what a process still holds inside answers ENOTCONN: a
        // running build would fail. Said, not done, unless forced.
        const users = o.force ? [] : usersOf(dir);
        if (users.length) {
          const who = users.map((u) => `${u.name} (pid ${u.pid})`).join(', ');
          d.err(`vrift: ${dir} is in use by ${who}: unmounting now would fail their reads and writes (ENOTCONN); let them finish, or --force\n`);
          process.exitCode = 1;
          continue;
        }
        if (await unmountDir(d.paths(), dir)) d.err(`vrift: ${dir} unmounted\n`);
        else {
          d.err(`vrift: ${dir} is not mounted\n`);
          missing++;
        }
      }
      if (missing) process.exitCode = 1;
    });
  program
    .command('mounts')
    .description('list the directories vrift has mounted')
    .option('--json', 'machine-readable JSON')
    .action((o) => {
      const lines = listMounts(d.paths());
      if (o.json) return d.out(`${JSON.stringify(lines, null, 2)}\n`);
      if (lines.length === 0) return d.out('no directories mounted\n');
      for (const l of lines) {
        const lazy = l.lazy.files ? `  ${l.lazy.files} lazy files (${bytes(l.lazy.bytes) ?? '0B'}) not yet materialized` : '';
        d.out(`${l.dir}  ${l.state === 'mounted' ? `pid ${l.pid}` : 'stale (its overlay process is gone: vrift unmount it)'}${lazy}\n`);
      }
    });
}
