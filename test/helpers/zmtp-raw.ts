import net from 'node:net';

// A ZMTP 3 peer written out byte by byte (as native/zmtp.c speaks it), for tests that send
// the daemon's socket what no zeromq library would: broken greetings, frames of any flags and
// declared size, bodies cut short. It reads what comes back as frames, or sees the close.

export const FLAG_MORE = 0x01;
export const FLAG_LONG = 0x02;
export const FLAG_CMD = 0x04;

/** The 64-byte greeting of a NULL-mechanism client (version 3.0). */
export function greeting(): Buffer {
  const g = Buffer.alloc(64);
  g[0] = 0xff;
  g[9] = 0x7f;
  g[10] = 3;
  g.write('NULL', 12, 'latin1');
  return g;
}

/** A frame head and body: short form up to 255 bytes unless `long`, `size` as declared (may lie). */
export function frame(body: Buffer, flags = 0, size: bigint = BigInt(body.length)): Buffer {
  const long = (flags & FLAG_LONG) !== 0 || size > 255n;
  const head = Buffer.alloc(long ? 9 : 2);
  head[0] = flags | (long ? FLAG_LONG : 0);
  if (long) head.writeBigUInt64BE(size, 1);
  else head[1] = Number(size);
  return Buffer.concat([head, body]);
}

/** A command frame: name-length, name, then the data. */
export function command(name: string, data: Buffer = Buffer.alloc(0)): Buffer {
  const n = Buffer.from(name, 'latin1');
  return frame(Buffer.concat([Buffer.from([n.length]), n, data]), FLAG_CMD);
}

/** READY with one Socket-Type property. */
export function ready(socketType = 'REQ'): Buffer {
  const name = Buffer.from('Socket-Type', 'latin1');
  const value = Buffer.from(socketType, 'latin1');
  const len = Buffer.alloc(4);
  len.writeUInt32BE(value.length);
  return command('READY', Buffer.concat([Buffer.from([name.length]), name, len, value]));
}

/** A REQ request on the wire: empty delimiter with MORE, then the body. */
export function request(body: Buffer): Buffer {
  return Buffer.concat([frame(Buffer.alloc(0), FLAG_MORE), frame(body)]);
}

export type Outcome = { kind: 'reply'; frames: Buffer[] } | { kind: 'closed' } | { kind: 'timeout' };

/** One connection to a unix socket with a byte buffer read as ZMTP frames. */
export class RawConn {
  private buf = Buffer.alloc(0);
  private ended = false;
  private wake: (() => void) | undefined;
  private readonly sock: net.Socket;
  private readonly opened: Promise<void>;

  constructor(socketPath: string) {
    this.sock = net.createConnection({ path: socketPath });
    this.opened = new Promise((resolve, reject) => {
      this.sock.once('connect', resolve);
      this.sock.once('error', reject);
    });
    this.sock.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake?.();
    });
    const end = () => {
      this.ended = true;
      this.wake?.();
    };
    this.sock.on('close', end);
    this.sock.on('end', end);
    this.sock.on('error', end);
  }

  get closed(): boolean {
    return this.ended;
  }

  async open(): Promise<void> {
    await this.opened;
  }

  write(b: Buffer): void {
    if (!this.ended && !this.sock.destroyed) this.sock.write(b);
  }

  /** Stops sending (the daemon reads an end of stream) and waits for it to close its side. */
  end(): void {
    if (!this.sock.destroyed) this.sock.end();
  }

  destroy(): void {
    this.sock.destroy();
  }

  /** Waits until `n` bytes are buffered; false when the connection closed or `deadline` passed first. */
  private async need(n: number, deadline: number): Promise<boolean> {
    while (this.buf.length < n) {
      if (this.ended) return false;
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
    return true;
  }

  private take(n: number): Buffer {
    const b = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return b;
  }

  /** The server's greeting and READY: true when both came. */
  async handshake(timeoutMs: number, socketType = 'REQ'): Promise<boolean> {
    await this.open();
    this.write(Buffer.concat([greeting(), ready(socketType)]));
    const deadline = Date.now() + timeoutMs;
    if (!(await this.need(64, deadline))) return false;
    this.take(64);
    const f = await this.frame(deadline);
    return f !== undefined && (f.flags & FLAG_CMD) !== 0 && f.body.subarray(1, 6).toString('latin1') === 'READY';
  }

  private async frame(deadline: number): Promise<{ flags: number; body: Buffer } | undefined> {
    if (!(await this.need(2, deadline))) return undefined;
    const flags = this.buf[0];
    const long = (flags & FLAG_LONG) !== 0;
    if (long && !(await this.need(9, deadline))) return undefined;
    const size = long ? Number(this.buf.readBigUInt64BE(1)) : this.buf[1];
    const head = long ? 9 : 2;
    if (!(await this.need(head + size, deadline))) return undefined;
    this.take(head);
    return { flags, body: Buffer.from(this.take(size)) };
  }

  /** The next message (command frames skipped), the close, or a timeout. */
  async next(timeoutMs: number): Promise<Outcome> {
    const deadline = Date.now() + timeoutMs;
    const frames: Buffer[] = [];
    for (;;) {
      const f = await this.frame(deadline);
      if (!f) return this.ended ? { kind: 'closed' } : { kind: 'timeout' };
      if (f.flags & FLAG_CMD) continue;
      frames.push(f.body);
      if (!(f.flags & FLAG_MORE)) return { kind: 'reply', frames };
    }
  }

  /** After `end()`: resolves 'closed' once the daemon closed its side, or 'timeout'. */
  async closedWithin(timeoutMs: number): Promise<'closed' | 'timeout'> {
    const deadline = Date.now() + timeoutMs;
    while (!this.ended) {
      if (!(await this.need(this.buf.length + 1, deadline)) && !this.ended) return 'timeout';
      this.buf = Buffer.alloc(0);
    }
    return 'closed';
  }
}
