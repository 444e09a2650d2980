import { Request } from 'zeromq';
import { decode, encode } from './codec.js';
import { VriftError, type ErrorCode } from './errors.js';
import type { ErrorReply, Kind, Outgoing, ReplyOf } from './messages/index.js';
import { BUILD_ID, PROTOCOL_VERSION } from './version.js';

// A REQ client for the CLI and the TypeScript shim. One request at a time per client.
// Requests and replies are typed by the protocol map (messages/index.ts): an unknown kind or
// a field of another kind does not compile. Replies are not validated: the daemon is of the
// same build (the version gate), and a reply's fields are read as the map says.
export class IpcClient {
  private sock: Request;
  private busy = false;

  constructor(
    readonly endpoint: string,
    private readonly timeoutMs = 5000,
  ) {
    this.sock = new Request({ linger: 0, receiveTimeout: timeoutMs, sendTimeout: timeoutMs });
    this.sock.connect(endpoint);
  }

  /** The daemon's reply: its kind's, or an `error` (which a shim treats as pass). */
  async request<K extends Kind>(msg: Outgoing<K> & { t: K }): Promise<ReplyOf<K> | ErrorReply> {
    if (this.busy) throw new VriftError('EINTERNAL', 'IpcClient is not re-entrant');
    this.busy = true;
    try {
      await this.sock.send(encode({ v: PROTOCOL_VERSION, build: BUILD_ID, ...msg }));
      const [reply] = await this.sock.receive();
      return decode(reply) as unknown as ReplyOf<K> | ErrorReply;
    } catch (cause) {
      if (cause instanceof VriftError) throw cause;
      const code = (cause as { code?: string }).code;
      if (code === 'EAGAIN') throw new VriftError('ETIMEOUT', `no answer from ${this.endpoint} within ${this.timeoutMs} ms`, { cause });
      throw cause;
    } finally {
      this.busy = false;
    }
  }

  close(): Promise<void> {
    this.sock.close();
    return Promise.resolve();
  }
}

/** Whether a reply is the daemon's `error` answer. */
export function isErrorReply(r: { t: string }): r is ErrorReply {
  return r.t === 'error';
}

// One-shot helper: send, wait, close. An `error` reply is thrown as the VriftError it carries
// (its code unchanged), so what comes back is always the kind's own reply.
export async function ipcCall<K extends Kind>(endpoint: string, msg: Outgoing<K> & { t: K }, timeoutMs = 5000): Promise<ReplyOf<K>> {
  const c = new IpcClient(endpoint, timeoutMs);
  try {
    const r = await c.request(msg);
    if (isErrorReply(r)) throw new VriftError(r.code as ErrorCode, r.message, { fields: { remote: true } });
    return r;
  } finally {
    await c.close();
  }
}
