import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import { CLI, run, type RunResult, type Stats } from './instance.js';

// Two "machines" on this host: network namespaces joined to the root namespace by veth
// pairs, each in its own /24 of 10.213.0.0/16 that exists only on these veths (notes:
// remote-protocols §6). The root side of A's pair carries the address a server binds;
// B reaches it through its own pair (a /32 route, no default route: nothing leaves the host).

export interface Machine {
  ns: string;
  /** This machine's address on its veth. */
  ip: string;
  /**
   * Runs a command inside the namespace. `ip netns exec` also gives every command a private
   * mount namespace; with `view`, this machine's directory `from` is bind-mounted at `at`
   * there first, so two machines can see their own checkouts at the same path.
   */
  exec(cmd: string, args: string[], opts?: { cwd?: string; env?: NodeJS.ProcessEnv }): Promise<RunResult>;
  view?: { from: string; at: string };
}

export interface Lab {
  serverIp: string;
  a: Machine;
  b: Machine;
}

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });

/** A third octet pair (n, n+1) whose subnets no interface on this host uses yet. */
function freeSubnets(): number {
  const used = execFileSync('ip', ['-o', '-4', 'addr', 'show'], { encoding: 'utf8' });
  for (let i = 0; i < 120; i++) {
    const n = 2 + ((process.pid + i * 2) % 240);
    if (!used.includes(`10.213.${n}.`) && !used.includes(`10.213.${n + 1}.`)) return n;
  }
  throw new Error('no free 10.213.x.0/24 pair for the test network');
}

function machine(ns: string, addr: string): Machine {
  const m: Machine = {
    ns,
    ip: addr,
    exec: (cmd, args, o = {}) => {
      if (!m.view) return run('ip', ['netns', 'exec', ns, cmd, ...args], { cwd: o.cwd, env: o.env });
      // cwd may lie under the view, so it is entered after the mount.
      const script = 'mount --bind "$1" "$2" && cd "$3" && shift 3 && exec "$@"';
      return run('ip', ['netns', 'exec', ns, 'sh', '-c', script, 'sh', m.view.from, m.view.at, o.cwd ?? '/', cmd, ...args], { env: o.env });
    },
  };
  return m;
}

/** Creates the two namespaces and their links; everything is removed when the test ends, even after a failure. */
export function netLab(t: ExecutionContext): Lab {
  if (process.getuid?.() !== 0) throw new Error('network namespaces need root');
  const id = `${process.pid}${Math.floor(Math.random() * 1000)}`.slice(-9);
  const n = freeSubnets();
  const nsA = `vrift-a-${id}`;
  const nsB = `vrift-b-${id}`;
  // Interface names are at most 15 characters.
  const hostA = `vra${id}`;
  const hostB = `vrb${id}`;
  const inA = `vra${id}n`;
  const inB = `vrb${id}n`;
  t.teardown(() => {
    for (const l of [hostA, hostB]) {
      try {
        ip('link', 'del', l);
      } catch {
        /* never created, or gone with its namespace */
      }
    }
    for (const ns of [nsA, nsB]) {
      try {
        ip('netns', 'del', ns);
      } catch {
        /* never created */
      }
    }
  });
  const serverIp = `10.213.${n}.1`;
  const aIp = `10.213.${n}.2`;
  const bIp = `10.213.${n + 1}.2`;
  for (const [ns, host, inner, hostAddr, innerAddr] of [
    [nsA, hostA, inA, serverIp, aIp],
    [nsB, hostB, inB, `10.213.${n + 1}.1`, bIp],
  ]) {
    ip('netns', 'add', ns);
    ip('link', 'add', host, 'type', 'veth', 'peer', 'name', inner);
    ip('link', 'set', inner, 'netns', ns);
    ip('addr', 'add', `${hostAddr}/24`, 'dev', host);
    ip('link', 'set', host, 'up');
    ip('-n', ns, 'link', 'set', 'lo', 'up');
    ip('-n', ns, 'addr', 'add', `${innerAddr}/24`, 'dev', inner);
    ip('-n', ns, 'link', 'set', inner, 'up');
  }
  ip('-n', nsB, 'route', 'add', `${serverIp}/32`, 'via', `10.213.${n + 1}.1`, 'dev', inB);
  return { serverIp, a: machine(nsA, aIp), b: machine(nsB, bIp) };
}

export type RemoteStats = Stats & { remote?: Record<string, number | string | boolean> };

export interface NsInstance {
  home: string;
  dir: string;
  env: NodeJS.ProcessEnv;
  vrift(args: string[], opts?: { cwd?: string }): Promise<RunResult>;
  stats(): Promise<RemoteStats>;
  stop(): Promise<void>;
}

/** A vrift instance (own VRIFT_HOME) whose CLI, shim and so daemon all run inside `m`'s namespace. */
export function nsInstance(t: ExecutionContext, m: Machine, extraEnv: NodeJS.ProcessEnv = {}): NsInstance {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'vrift-netns-'));
  const home = path.join(base, 'home');
  const dir = path.join(base, 'proj');
  fs.mkdirSync(dir, { recursive: true });
  const env: NodeJS.ProcessEnv = { ...process.env, VRIFT_HOME: home, VRIFT_IDLE_TIMEOUT: '300', LC_ALL: 'C', ...extraEnv };
  delete env.VRIFT_SESSION;
  const vrift = (args: string[], o: { cwd?: string } = {}) => m.exec(process.execPath, [CLI, ...args], { cwd: o.cwd ?? dir, env });
  const inst: NsInstance = {
    home,
    dir,
    env,
    vrift,
    stats: async () => {
      const r = await vrift(['stats', '--json']);
      if (r.code !== 0) throw new Error(`vrift stats in ${m.ns} failed: ${r.err}`);
      return JSON.parse(r.out) as RemoteStats;
    },
    stop: async () => {
      await vrift(['daemon', 'stop']);
    },
  };
  t.teardown(async () => {
    await inst.stop();
    fs.rmSync(base, { recursive: true, force: true });
  });
  return inst;
}

/** The network namespace a process lives in, as the kernel names it (`net:[4026…]`). */
export function netnsOf(pid: number): string {
  return fs.readlinkSync(`/proc/${pid}/ns/net`);
}

export interface BridgeLab {
  /** The bridge's own address (root namespace): a server in the test process listens here. */
  gatewayIp: string;
  machines: Machine[];
  /** The root-side end of machine i's veth (tc netem goes on it). */
  hostLinks: string[];
}

/**
 * `count` machines on one Ethernet segment: each namespace's veth is enslaved to a Linux
 * bridge in the root namespace whose multicast snooping is off, so mDNS multicast reaches
 * every machine. Each machine's default route goes through the bridge's address (which also
 * gives multicast a route). Everything is removed when the test ends.
 */
export function bridgeLab(t: ExecutionContext, count: number): BridgeLab {
  if (process.getuid?.() !== 0) throw new Error('network namespaces need root');
  const id = `${process.pid}${Math.floor(Math.random() * 1000)}`.slice(-8);
  const n = freeSubnets();
  const br = `vrbr${id}`;
  const links = Array.from({ length: count }, (_, i) => `vr${i}${id}`);
  const spaces = Array.from({ length: count }, (_, i) => `vrift-m${i}-${id}`);
  t.teardown(() => {
    for (const l of [...links, br]) {
      try {
        ip('link', 'del', l);
      } catch {
        /* never created, or gone with its namespace */
      }
    }
    for (const ns of spaces) {
      try {
        ip('netns', 'del', ns);
      } catch {
        /* never created */
      }
    }
  });
  const gatewayIp = `10.213.${n}.1`;
  ip('link', 'add', br, 'type', 'bridge');
  execFileSync('sh', ['-c', `echo 0 > /sys/class/net/${br}/bridge/multicast_snooping`]);
  ip('addr', 'add', `${gatewayIp}/24`, 'dev', br);
  ip('link', 'set', br, 'up');
  const machines = spaces.map((ns, i) => {
    const inner = `${links[i]}n`;
    const addr = `10.213.${n}.${i + 2}`;
    ip('netns', 'add', ns);
    ip('link', 'add', links[i], 'type', 'veth', 'peer', 'name', inner);
    ip('link', 'set', inner, 'netns', ns);
    ip('link', 'set', links[i], 'master', br);
    ip('link', 'set', links[i], 'up');
    ip('-n', ns, 'link', 'set', 'lo', 'up');
    ip('-n', ns, 'addr', 'add', `${addr}/24`, 'dev', inner);
    ip('-n', ns, 'link', 'set', inner, 'up');
    ip('-n', ns, 'route', 'add', 'default', 'via', gatewayIp);
    return machine(ns, addr);
  });
  return { gatewayIp, machines, hostLinks: links };
}
