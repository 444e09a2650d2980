import { Router } from 'zeromq';
import { decode, encode } from './codec.js';
import { VriftError } from './errors.js';

// What a dispatch answers, encoded as a msgpack map (the daemon's: messages/index.ts AnyReply).
export type Reply = object;
export type Dispatch = (msg: Record<string, unknown>) => Promise<Reply>;

// ROUTER socket: requests from many REQ clients are served concurrently; each reply is
// routed back by identity. A handler that throws becomes an `error` reply, never a crash.
export class IpcServer {
  private sock = new Router({ linger: 0 });
  private loop: Promise<void> | undefined;
  private inflight = new Set<Promise<void>>();
  private closed = false;

  constructor(
    private readonly dispatch: Dispatch,
    private readonly onError: (e: unknown) => void = () => {},
  ) {}

  async bind(endpoint: string): Promise<void> {
    await this.sock.bind(endpoint);
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    while (!this.closed) {
      let frames: Buffer[];
      try {
        frames = await this.sock.receive();
      } catch (e) {
        if (this.closed) return;
        this.onError(e);
        continue;
      }
      // REQ envelope: [identity, empty delimiter, body]. Anything else is malformed.
      const identity = frames[0];
      const body = frames.length === 3 && frames[1].length === 0 ? frames[2] : undefined;
      const p = this.serve(identity, frames.length >= 2 ? frames.slice(1, -1) : [], body).finally(() => this.inflight.delete(p));
      this.inflight.add(p);
    }
  }

  private async serve(identity: Buffer, envelope: Buffer[], body: Buffer | undefined): Promise<void> {
    let reply: Reply;
    let oneWay = false;
    try {
      if (body === undefined) throw new VriftError('EBADMSG', 'expected a REQ envelope: empty delimiter then one body frame');
      const msg = decode(body);
      // A one-way message (done.ts): its sender has gone; nothing goes back, errors included.
      oneWay = msg.nr === true;
      reply = await this.dispatch(msg);
    } catch (e) {
      const err = e instanceof VriftError ? e : new VriftError('EINTERNAL', String((e as Error)?.message ?? e), { cause: e });
      if (err.code === 'EINTERNAL') this.onError(e);
      reply = { t: 'error', code: err.code, message: err.message };
    }
    if (this.closed || oneWay) return;
    const delim = envelope.length > 0 ? envelope : [Buffer.alloc(0)];
    try {
      await this.sock.send([identity, ...delim, encode(reply)]);
    } catch (e) {
      if (!this.closed) this.onError(e);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await Promise.allSettled([...this.inflight]);
    this.closed = true;
    this.sock.close();
    await this.loop?.catch(() => {});
  }
}
