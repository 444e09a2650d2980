import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import test from './helpers/test.js';
import { instance, run } from './helpers/instance.js';
import { startServe, tmpDir } from './helpers/remote.js';
import { memoryLogger } from '../daemon/log.js';
import { keyAuth } from '../daemon/peers/auth.js';
import { startPeerServer } from '../daemon/peers/server.js';
import { LocalStore } from '../daemon/store/local.js';
import { generateSigningKey } from '../trust/keys.js';
import { signRequest } from '../trust/request-auth.js';

// What another user, and a client that does not play by the rules of HTTP, can do: nothing.

const NOBODY = ['--reuid=nobody', '--regid=nogroup', '--clear-groups', '--'];

// As nobody: connect to the socket, list and read every file of the store (and open the
// store's directories), each attempt's outcome on a line.
const PROBE = `
const fs = require('node:fs'); const net = require('node:net'); const path = require('node:path');
const [sock, store] = process.argv.slice(1);
const out = [];
const walk = (d) => { for (const n of fs.readdirSync(d)) { const p = path.join(d, n); if (fs.lstatSync(p).isDirectory()) walk(p); else out.push(p); } };
const tryRead = (f) => { try { fs.readFileSync(f); return 'read'; } catch (e) { return e.code; } };
const files = [];
// The probe walks as root would list them (passed in), so an unlistable directory hides nothing.
for (const f of JSON.parse(process.env.FILES)) files.push([f, tryRead(f)]);
let listed; try { fs.readdirSync(store); listed = 'listed'; } catch (e) { listed = e.code; }
const c = net.createConnection({ path: sock });
c.on('connect', () => { console.log(JSON.stringify({ socket: 'connected', files, listed })); process.exit(0); });
c.on('error', (e) => { console.log(JSON.stringify({ socket: e.code, files, listed })); process.exit(0); });
`;

function filesUnder(d: string): string[] {
  const out: string[] = [];
  for (const n of fs.readdirSync(d)) {
    const p = path.join(d, n);
    if (fs.lstatSync(p).isDirectory()) out.push(...filesUnder(p));
    else out.push(p);
  }
  return out;
}

test("another user (nobody) can neither connect to the daemon's socket nor read or list its store", async (t) => {
  const inst = instance(t);
  // Directories others may enter (as most homes are), VRIFT_HOME made by the user before vrift
  // did (to write its config.toml in): only vrift's own modes keep the store to its user.
  fs.chmodSync(path.dirname(inst.home), 0o755);
  fs.mkdirSync(inst.home, { mode: 0o755 });
  fs.writeFileSync(path.join(inst.home, 'config.toml'), '');
  inst.files({ 'a.c': 'int a(void) { return 42; }\n' });
  const r = await inst.cc(['-c', 'a.c', '-o', 'a.o']);
  t.is(r.code, 0, r.err);
  await inst.stored(1);
  const store = path.join(inst.home, 'l2');
  const files = filesUnder(store).filter((f) => fs.statSync(f).size > 0);
  t.true(files.length >= 2, 'the store holds the compile');
  const probe = await run('setpriv', [...NOBODY, process.execPath, '-e', PROBE, path.join(inst.home, 'run', 'vriftd.sock'), store], {
    env: { ...process.env, FILES: JSON.stringify(files) },
  });
  t.is(probe.code, 0, probe.err);
  const seen = JSON.parse(probe.out) as { socket: string; files: [string, string][]; listed: string };
  t.log(
    `as nobody: socket ${seen.socket}; store listing ${seen.listed}; ${seen.files.length} store files: ${[...new Set(seen.files.map(([, o]) => o))].join(', ')}`,
  );
  t.is(seen.socket, 'EACCES');
  t.is(seen.listed, 'EACCES');
  t.deepEqual(
    seen.files.filter(([, o]) => o === 'read'),
    [],
    'no store file readable',
  );
  // The owner still is served: the next compile hits.
  fs.rmSync(path.join(inst.dir, 'a.o'));
  t.is((await inst.cc(['-c', 'a.c', '-o', 'a.o'])).code, 0);
  t.is((await inst.stats()).hits, 1);
});

function tally(xs: number[]): Record<number, number> {
  const m: Record<number, number> = {};
  for (const x of xs) m[x] = (m[x] ?? 0) + 1;
  return m;
}

interface RawAnswer {
  status: number;
  text: string;
}

/** One request written byte for byte (no client normalizes its target) and the status line back. */
function raw(port: number, head: string, body: Buffer | string = ''): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const c = net.createConnection({ host: '127.0.0.1', port });
    let got = '';
    const done = () => resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(got)?.[1] ?? 0), text: got.split('\r\n')[0] });
    // Not half-closed: a server reads an end of stream in the middle of a body as the client gone.
    c.on('data', (d) => {
      got += d.toString('latin1');
      if (got.includes('\r\n\r\n')) c.destroy();
    });
    c.on('error', (e) => ((e as NodeJS.ErrnoException).code === 'ECONNRESET' && got ? undefined : reject(e)));
    c.on('close', done);
    c.write(head);
    c.write(body);
  });
}

const H = 'a'.repeat(64);
const TRAVERSALS = [
  `/ac/../../../../etc/passwd`,
  `/ac/..%2f..%2f..%2fetc%2fpasswd`,
  `/%2e%2e/%2e%2e/etc/passwd`,
  `/ac/%2e%2e%2f${H.slice(6)}`,
  `/cas/..\\..\\${H.slice(6)}`,
  `/ac/${H}%00.txt`,
  `/ac/${H}/../../x`,
  `/./ac/${H}`,
  `/ac/./${H}`,
  `/inst/../../ac/${H}`,
  `/%252e%252e/ac/${H}`,
  `/ac/${H.slice(0, 2)}/../${H}`,
  `ac/${H}`,
  `http://evil.example/../ac/${H}`,
];

test('the team server: traversal targets written raw get 400 on GET and PUT, a huge declared body 413, and nothing is stored anywhere', async (t) => {
  const dir = tmpDir(t);
  const store = path.join(dir, 'store');
  const s = await startServe(t, ['--store', store, '--max-size', '64KB']);
  const port = Number(new URL(s.url).port);
  const statuses: Record<string, number> = {};
  for (const target of TRAVERSALS) {
    for (const method of ['GET', 'PUT']) {
      const body = method === 'PUT' ? 'planted' : '';
      const a = await raw(port, `${method} ${target} HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`, body);
      statuses[`${method} ${target}`] = a.status;
      t.is(a.status, 400, `${method} ${target}: ${a.text}`);
    }
  }
  // Declared far past the limit: refused before a byte of it is read.
  const huge = await raw(port, `PUT /ac/${H} HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000000\r\nConnection: close\r\n\r\n`, 'x'.repeat(1000));
  t.is(huge.status, 413, huge.text);
  const chunked = await raw(
    port,
    `PUT /ac/${H} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n`,
    `20000\r\n${'y'.repeat(0x20000)}\r\n0\r\n\r\n`,
  );
  t.is(chunked.status, 413, chunked.text);
  t.log(`${TRAVERSALS.length * 2} traversal requests: ${JSON.stringify(tally(Object.values(statuses)))}; oversized: ${huge.status}, ${chunked.status}`);
  t.deepEqual(fs.existsSync(store) ? filesUnder(store).filter((f) => !f.endsWith('CACHEDIR.TAG')) : [], [], 'nothing stored');
  t.false(fs.existsSync('/etc/passwd.txt'));
});

test("a LAN peer's server: a member's traversal targets written raw get 400, a write with a 10 GB body is refused, and its store is unchanged", async (t) => {
  const alice = generateSigningKey('alice').key;
  const root = path.join(tmpDir(t), 'l2');
  const local = new LocalStore({ root, log: memoryLogger().child('store') });
  await local.open();
  const server = await startPeerServer({
    local,
    pending: () => undefined,
    tmpDir: tmpDir(t),
    port: 0,
    auth: keyAuth(alice, [alice], Date.now),
    log: memoryLogger().child('peers'),
  });
  t.teardown(async () => {
    await server.close();
    await local.close();
  });
  const before = filesUnder(root);
  const signed = (method: string, target: string) =>
    Object.entries(signRequest(alice, method, target, Date.now()))
      .map(([k, v]) => `${k}: ${String(v)}\r\n`)
      .join('');
  const statuses: number[] = [];
  for (const target of TRAVERSALS) {
    const a = await raw(server.port, `GET ${target} HTTP/1.1\r\nHost: x\r\n${signed('GET', target)}Connection: close\r\n\r\n`);
    statuses.push(a.status);
    t.is(a.status, 400, `GET ${target}: ${a.text}`);
  }
  const put = await raw(
    server.port,
    `PUT /ac/${H} HTTP/1.1\r\nHost: x\r\n${signed('PUT', `/ac/${H}`)}Content-Length: 10000000000\r\nConnection: close\r\n\r\n`,
    'x'.repeat(1000),
  );
  t.true(put.status === 403 || put.status === 413, put.text);
  t.log(`${TRAVERSALS.length} traversal requests from a member: ${JSON.stringify(tally(statuses))}; a 10 GB write: ${put.status}`);
  t.deepEqual(filesUnder(root), before, 'the store is unchanged');
});
