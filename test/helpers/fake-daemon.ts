import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Router } from 'zeromq';
import { decode } from '../../ipc/codec.js';
import { IpcServer, type Reply } from '../../ipc/server.js';

// Stand-ins for vriftd in the native shim's tests: the real libzmq ROUTER (through the
// project's IpcServer) answering scripted replies, plus a raw ROUTER for replies
// IpcServer could never produce (garbage bodies).

export type Msg = Record<string, unknown>;
export type Script = (msg: Msg, nth: number) => Reply | 'hang';

export function socketPath(home: string): string {
  return path.join(home, 'run', 'vriftd.sock');
}

export class FakeDaemon {
  readonly requests: Msg[] = [];
  private readonly hangs: Array<() => void> = [];

  private constructor(private readonly server: IpcServer) {}

  // The server records every request, then answers what `script` says; 'hang' never
  // answers (until close), like a wedged daemon.
  static async start(home: string, script: Script): Promise<FakeDaemon> {
    fs.mkdirSync(path.join(home, 'run'), { recursive: true, mode: 0o700 });
    let fake: FakeDaemon | undefined;
    const server = new IpcServer(async (m) => {
      const f = fake!;
      f.requests.push(m);
      const r = script(m, f.requests.length - 1);
      if (r !== 'hang') return r;
      return new Promise<Reply>((resolve) => f.hangs.push(() => resolve({ t: 'error', code: 'ETIMEOUT', message: 'closing' })));
    });
    fake = new FakeDaemon(server);
    await server.bind(`ipc://${socketPath(home)}`);
    return fake;
  }

  of(t: string): Msg[] {
    return this.requests.filter((m) => m.t === t);
  }

  async close(): Promise<void> {
    for (const h of this.hangs) h();
    await this.server.close();
  }
}

// A ROUTER that answers every request with `body` as the raw reply frame.
export class RawRouter {
  readonly requests: Msg[] = [];
  private readonly sock = new Router({ linger: 0 });
  private loop: Promise<void> | undefined;

  static async start(home: string, body: Buffer): Promise<RawRouter> {
    fs.mkdirSync(path.join(home, 'run'), { recursive: true, mode: 0o700 });
    const r = new RawRouter();
    await r.sock.bind(`ipc://${socketPath(home)}`);
    r.loop = r.run(body);
    return r;
  }

  private async run(body: Buffer): Promise<void> {
    for (;;) {
      let frames: Buffer[];
      try {
        frames = await this.sock.receive();
      } catch {
        return; // closed
      }
      this.requests.push(decode(frames[frames.length - 1]));
      await this.sock.send([frames[0], Buffer.alloc(0), body]).catch(() => {});
    }
  }

  async close(): Promise<void> {
    this.sock.close();
    await this.loop;
  }
}

// Standalone mode: what the shim starts as VRIFT_DAEMON (through a one-line sh script).
// It logs each start and the lock fd it inherited, waits FAKE_BIND_DELAY_MS before
// binding (so concurrent shims all find no daemon), answers `pass`, exits on shutdown.
async function main(): Promise<void> {
  const home = process.env.VRIFT_HOME!;
  const lockFd = Number(process.env.VRIFT_LOCK_FD);
  let lockFdIno = -1;
  try {
    lockFdIno = fs.fstatSync(lockFd).ino;
  } catch {
    // not inherited: recorded as -1 and the test fails
  }
  const lockIno = fs.statSync(path.join(home, 'run', 'vriftd.lock')).ino;
  fs.appendFileSync(
    path.join(home, 'starts.ndjson'),
    JSON.stringify({ pid: process.pid, lockFd, lockFdIno, lockIno, cwd: process.cwd(), disable: process.env.VRIFT_DISABLE }) + '\n',
  );
  await new Promise((r) => setTimeout(r, Number(process.env.FAKE_BIND_DELAY_MS ?? 0)));
  let server: IpcServer | undefined;
  server = new IpcServer(async (m) => {
    fs.appendFileSync(path.join(home, 'requests.ndjson'), JSON.stringify({ t: m.t, argv: m.argv }) + '\n');
    if (m.t === 'shutdown') {
      setTimeout(() => void server!.close().then(() => process.exit(0)), 10);
      return { t: 'ok' };
    }
    return { t: 'pass', reason: 'fake' };
  });
  fs.rmSync(socketPath(home), { force: true });
  await server.bind(`ipc://${socketPath(home)}`);
  process.on('SIGTERM', () => void server!.close().then(() => process.exit(0)));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
