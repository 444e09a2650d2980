import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import { memoryLogger } from '../../daemon/log.js';
import { LocalStore } from '../../daemon/store/local.js';
import { HttpTier } from '../../daemon/tiers/http.js';
import { TieredStore, type TieredOptions } from '../../daemon/tiers/tiered.js';
import { age, CLI, type Instance } from './instance.js';
import { refusingPort } from './ports.js';

function which(bin: string): string | undefined {
  try {
    return execFileSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

// Real servers and clients come from Debian, installed by install.sh in one step (a test that
// installed them raced another test file's install on dpkg's lock): a missing one fails the
// test with what to run, it is never skipped.
export function ensureTool(bin: string, pkg: string): string {
  const found = which(bin) ?? (fs.existsSync(`/usr/sbin/${bin}`) ? `/usr/sbin/${bin}` : undefined);
  if (!found) throw new Error(`${bin} is missing: \`bash install.sh --no-demo\` installs ${pkg} with what else the tests need`);
  return found;
}

export function tmpDir(t: ExecutionContext, prefix = 'vrift-r-'): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.teardown(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

export interface Served {
  url: string;
  port: number;
  proc: ChildProcess;
  accessLog: string[];
  stop(): Promise<void>;
  /** The access log, parsed, once `until` holds for it: a line is written when its response
   * has closed, so it can reach the test after the client has exited. Throws, with the
   * condition and the log, when it does not hold within 10 s. */
  logged(until: (lines: Record<string, unknown>[]) => boolean): Promise<Record<string, any>[]>;
}

/** `vrift serve` as its own process on a free loopback port; stopped when the test ends. */
export async function startServe(t: ExecutionContext, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Served> {
  const proc = spawn(process.execPath, [CLI, 'serve', '--port', '0', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const accessLog: string[] = [];
  let out = '';
  proc.stdout!.on('data', (d) => {
    out += d;
    const lines = out.split('\n');
    out = lines.pop()!;
    accessLog.push(...lines);
  });
  let err = '';
  const url = await new Promise<string>((resolve, reject) => {
    proc.stderr!.on('data', (d) => {
      err += d;
      const m = /listening on (\S+),/.exec(err);
      if (m) resolve(m[1]);
    });
    proc.on('exit', (code) => reject(new Error(`vrift serve exited ${code}: ${err}`)));
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`vrift serve did not say where it listens within 30 s: ${err}`));
    }, 30_000);
    proc.stderr!.on('data', () => {
      if (/listening on (\S+),/.test(err)) clearTimeout(timer);
    });
    proc.once('exit', () => clearTimeout(timer));
  });
  // A server that does not end on SIGTERM fails the test (and is killed, not left behind).
  const stop = async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const gone = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const ended = await Promise.race([gone.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), 15_000)))]);
    clearTimeout(timer);
    if (ended) return;
    proc.kill('SIGKILL');
    await gone;
    throw new Error(`vrift serve did not exit within 15 s of SIGTERM: ${err.slice(-2000)}`);
  };
  t.teardown(stop);
  const logged = async (until: (lines: Record<string, unknown>[]) => boolean) => {
    const parsed = () => accessLog.map((l) => JSON.parse(l) as Record<string, any>);
    for (let i = 0; i < 200; i++) {
      if (until(parsed())) return parsed();
      await new Promise((r) => setTimeout(r, 50));
    }
    if (until(parsed())) return parsed();
    throw new Error(`waited 10 s for an access log where ${until.toString()}; it has:\n${accessLog.join('\n')}`);
  };
  return { url, port: Number(new URL(url).port), proc, accessLog, stop, logged };
}

/** A loopback HTTP server whose behaviour the test decides; closed when the test ends. */
export async function fakeServer(t: ExecutionContext, handler: http.RequestListener): Promise<{ url: string; requests: string[]; server: http.Server }> {
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    handler(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests, server };
}

/** A URL on which connections are refused for as long as the test runs (helpers/ports.ts). */
export async function refusingUrl(t: ExecutionContext): Promise<string> {
  return `http://127.0.0.1:${await refusingPort(t)}`;
}

export interface Reply {
  status: number;
  body: Buffer;
  headers: http.IncomingHttpHeaders;
}

/** One plain request (no keep-alive), body collected. */
export function request(url: string, opts: { method?: string; body?: Buffer | string; headers?: http.OutgoingHttpHeaders } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    // The path goes out as written (URL parsing would resolve `..`).
    const m = /^http:\/\/([^/:]+):(\d+)(\/.*)?$/.exec(url);
    if (!m) throw new Error(`bad test URL ${url}`);
    const req = http.request(
      { host: m[1], port: Number(m[2]), path: m[3] ?? '/', method: opts.method ?? 'GET', headers: opts.headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d) => chunks.push(d));
        res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks), headers: res.headers }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

export interface Nginx {
  url: string;
  root: string;
  log: string;
}

/** nginx with WebDAV PUT (notes: remote-protocols §4); its worker runs as nobody. */
export async function startNginx(t: ExecutionContext): Promise<Nginx> {
  const bin = ensureTool('nginx', 'nginx');
  const dir = tmpDir(t, 'vrift-nginx-');
  fs.chmodSync(dir, 0o755);
  for (const d of ['data', 'tmp', 'logs']) fs.mkdirSync(path.join(dir, d));
  execFileSync('chown', ['-R', 'nobody:nogroup', path.join(dir, 'data'), path.join(dir, 'tmp')]);
  // nginx cannot bind port 0 and say which port it got: the test binds it and hands the
  // socket over as nginx's inherited listening socket (fd 3, named in $NGINX).
  const sock = net.createServer();
  await new Promise<void>((r) => sock.listen(0, '127.0.0.1', r));
  const port = (sock.address() as AddressInfo).port;
  fs.writeFileSync(
    path.join(dir, 'nginx.conf'),
    `worker_processes 1; pid ${dir}/nginx.pid; daemon off;
error_log ${dir}/logs/error.log warn;
events { worker_connections 256; }
http {
  access_log ${dir}/logs/access.log;
  client_body_temp_path ${dir}/tmp;
  server {
    listen 127.0.0.1:${port}; root ${dir}/data; client_max_body_size 1g;
    location / {
      dav_methods PUT DELETE; create_full_put_path on; dav_access user:rw group:r all:r;
      limit_except GET HEAD PUT DELETE { deny all; }
    }
  }
}
`,
  );
  const fd = (sock as unknown as { _handle: { fd: number } })._handle.fd;
  const proc = spawn(bin, ['-c', path.join(dir, 'nginx.conf')], { stdio: ['ignore', 'ignore', 'ignore', fd], env: { ...process.env, NGINX: '3;' } });
  sock.close(); // nginx holds it now; the test must not accept on it
  t.teardown(async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      const gone = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGQUIT');
      await gone;
    }
    // The master exits once its workers have: 0 is a clean stop with nothing left behind.
    if (proc.exitCode !== 0) throw new Error(`nginx exited ${proc.exitCode ?? proc.signalCode} (see ${dir}/logs/error.log)`);
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try {
      await request(`${url}/`);
      break;
    } catch (e) {
      if (i > 200 || proc.exitCode !== null) throw new Error(`nginx did not start: ${(e as Error).message}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }
  return { url, root: path.join(dir, 'data'), log: path.join(dir, 'logs', 'access.log') };
}

/** Deadlines for tests whose subject is not a deadline: a loaded CI machine can take seconds to connect or answer. */
export const PATIENT = { connectTimeoutMs: 10_000, timeoutMs: 10_000 } as const;
/** The same for a daemon's remote (its environment), where a hit from the remote is what the test looks at. */
export const PATIENT_REMOTE = { VRIFT_REMOTE_TIMEOUT: '10s', VRIFT_REMOTE_WAIT: '10s' } as const;

/** A local store under dir/name with a TieredStore over an HTTP remote in front; both closed when the test ends. */
export async function tieredAt(
  t: ExecutionContext,
  dir: string,
  name: string,
  url: string,
  o: Partial<TieredOptions> & { timeoutMs?: number; connectTimeoutMs?: number } = {},
): Promise<{ local: LocalStore; store: TieredStore }> {
  const log = memoryLogger().child(name);
  const local = new LocalStore({ root: path.join(dir, name) });
  await local.open();
  const { timeoutMs = PATIENT.timeoutMs, connectTimeoutMs = PATIENT.connectTimeoutMs, ...rest } = o;
  const store = new TieredStore({ local, remote: new HttpTier(url, { log, timeoutMs, connectTimeoutMs }), log, ...rest });
  t.teardown(async () => {
    await store.close();
    await local.close();
  });
  return { local, store };
}

// A small C project shared by machines in one test: two sources on a common header, one on
// a system header too.
const SOURCES: Record<string, string> = {
  'a.c': '#include "common.h"\nint a(void) { return COMMON + 1; }\n',
  'b.c': '#include "common.h"\nint b(void) { return COMMON + 2; }\n',
  'c.c': '#include <stdio.h>\n#include "common.h"\nint main(void) { printf("%d\\n", COMMON); return 0; }\n',
  'common.h': '#define COMMON 42\n',
};

/** Writes the project into dir, aged so that its files may be cached. */
export function writeProject(dir: string): void {
  for (const [f, text] of Object.entries(SOURCES)) fs.writeFileSync(path.join(dir, f), text);
  age(...Object.keys(SOURCES).map((f) => path.join(dir, f)));
}

/** Compiles each of `files` (one after another) in the instance's directory; their objects by name. */
export async function buildProject(t: ExecutionContext, inst: Instance, files = ['a.c', 'b.c', 'c.c']): Promise<Record<string, Buffer>> {
  const out: Record<string, Buffer> = {};
  for (const f of files) {
    const o = f.replace(/\.c$/, '.o');
    fs.rmSync(path.join(inst.dir, o), { force: true });
    const r = await inst.cc(['-O2', '-c', f, '-o', o]);
    t.is(r.code, 0, r.err);
    t.is(r.err, '');
    out[o] = fs.readFileSync(path.join(inst.dir, o));
  }
  return out;
}
