import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import { listeningPorts } from './procs.js';
import { ensureTool, request, tmpDir } from './remote.js';
import { waitFor } from './wait.js';

// A one-node Ceph cluster (memstore, auth none) with RGW on loopback, as in
// notes/remote-protocols.md §4. Takes ~30 s; everything is killed when the test ends.
export async function startCephRgw(t: ExecutionContext, o: { monPort?: (attempt: number) => number } = {}): Promise<NodeJS.ProcessEnv> {
  for (const [bin, pkg] of [
    ['ceph-mon', 'ceph-mon'],
    ['ceph-osd', 'ceph-osd'],
    ['ceph-mgr', 'ceph-mgr'],
    ['radosgw', 'radosgw'],
  ])
    ensureTool(bin, pkg);
  const C = tmpDir(t, 'vrift-ceph-');
  const fsid = crypto.randomUUID();
  const conf = path.join(C, 'ceph.conf');
  for (const d of ['run', 'log', 'osd/ceph-0', 'mgr/ceph-x', 'rgw']) fs.mkdirSync(path.join(C, d), { recursive: true });
  const procs: ChildProcess[] = [];
  t.teardown(async () => {
    await Promise.all(
      procs.map((p) => {
        if (p.exitCode !== null || p.signalCode !== null) return undefined;
        const gone = new Promise((r) => p.once('exit', r));
        p.kill('SIGKILL');
        return gone;
      }),
    );
  });
  const x = (cmd: string, args: string[]) => execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 }).toString();
  const daemon = (cmd: string, args: string[]) => {
    const p = spawn(cmd, ['-c', conf, ...args, '-f'], { stdio: 'ignore' });
    procs.push(p);
    return p;
  };
  // The monitor's address is written into the monmap before it starts, so it cannot bind
  // port 0: a port outside the range the kernel hands out for port 0 is tried, and when
  // something else holds it (the monitor exits at its one bind attempt), another, from a
  // fresh monmap.
  const pick = o.monPort ?? (() => 20000 + crypto.randomInt(10000));
  for (let attempt = 1; ; attempt++) {
    const monPort = pick(attempt);
    fs.writeFileSync(conf, cephConf(C, fsid, monPort));
    fs.rmSync(path.join(C, 'mon'), { recursive: true, force: true });
    fs.mkdirSync(path.join(C, 'mon'));
    x('monmaptool', ['--create', '--clobber', '--addv', 'a', `[v2:127.0.0.1:${monPort}]`, '--fsid', fsid, path.join(C, 'monmap')]);
    x('ceph-mon', ['-c', conf, '--mkfs', '-i', 'a', '--monmap', path.join(C, 'monmap')]);
    const mon = daemon('ceph-mon', ['-i', 'a']);
    await waitFor(
      () => mon.exitCode !== null || (mon.pid !== undefined && listeningPorts(mon.pid).includes(monPort)),
      `ceph-mon to listen on port ${monPort} or exit (see ${C}/log/mon.a.log)`,
      { ms: 60_000, everyMs: 100 },
    );
    if (mon.exitCode === null) break;
    if (attempt === 5) throw new Error(`ceph-mon could not listen on any of 5 ports tried, the last ${monPort} (see ${C}/log/mon.a.log)`);
  }
  const ceph = (args: string[]) => x('ceph', ['-c', conf, '--connect-timeout', '30', ...args]);
  const id = ceph(['osd', 'create']).trim();
  x('ceph-osd', ['-c', conf, '-i', id, '--mkfs']);
  ceph(['osd', 'crush', 'add-bucket', 'localhost', 'host']);
  ceph(['osd', 'crush', 'move', 'localhost', 'root=default']);
  ceph(['osd', 'crush', 'add', `osd.${id}`, '1.0', 'host=localhost']);
  daemon('ceph-osd', ['-i', id]);
  daemon('ceph-mgr', ['-i', 'x']);
  // RGW binds port 0; the port it got is read from its listening socket.
  const rgw = daemon('radosgw', ['-n', 'client.rgw.a']);
  let url = '';
  for (let i = 0; ; i++) {
    try {
      const [port] = rgw.pid && rgw.exitCode === null ? listeningPorts(rgw.pid) : [];
      if (port) {
        url = `http://127.0.0.1:${port}`;
        const r = await request(`${url}/`);
        if (r.status < 500) break;
      }
    } catch {
      // not up yet
    }
    if (i > 600 || rgw.exitCode !== null) throw new Error(`radosgw did not come up (see ${C}/log)`);
    await new Promise((r) => setTimeout(r, 200));
  }
  x('radosgw-admin', ['-c', conf, 'user', 'create', '--uid=cache', '--display-name=cache', '--access-key=CACHEKEY', '--secret-key=CACHESECRET']);
  return { ...process.env, AWS_ACCESS_KEY_ID: 'CACHEKEY', AWS_SECRET_ACCESS_KEY: 'CACHESECRET', AWS_REGION: 'us-east-1', VRIFT_S3_ENDPOINT: url };
}

// ms_bind_retry_count 1: a port already taken fails the monitor at once (by default it tries
// again for 15 s), and startCephRgw tries another.
function cephConf(C: string, fsid: string, monPort: number): string {
  return `[global]
fsid = ${fsid}
mon_host = v2:127.0.0.1:${monPort}
ms_bind_retry_count = 1
public_network = 127.0.0.0/8
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
osd_pool_default_size = 1
osd_pool_default_min_size = 1
mon_allow_pool_size_one = true
osd_crush_chooseleaf_type = 0
run_dir = ${C}/run
log_file = ${C}/log/$name.log
admin_socket = ${C}/run/$name.asok
pid_file = ${C}/run/$name.pid
mon_data = ${C}/mon/$cluster-$id
osd_data = ${C}/osd/$cluster-$id
mgr_data = ${C}/mgr/$cluster-$id
keyring = ${C}/keyring
[osd]
osd_objectstore = memstore
memstore_device_bytes = 1073741824
[client.rgw.a]
rgw_frontends = beast endpoint=127.0.0.1:0
rgw_data = ${C}/rgw
ms_mon_client_mode = crc secure
`;
}
