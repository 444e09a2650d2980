import { Request } from 'zeromq';
import { decode, encode } from './codec.js';
import { VriftError } from './errors.js';
import { BUILD_ID, PROTOCOL_VERSION } from './version.js';

// A REQ client for the CLI and the TypeScript shim. One request at a time per client.
export class IpcClient {
  private sock: Request;
  private busy = false;

  constructor(readonly endpoint: string, private readonly timeoutMs = 5000) {
    this.sock = new Request({ linger: 0, receiveTimeout: timeoutMs, sendTimeout: timeoutMs });
    this.sock.connect(endpoint);
  }

  async request(msg: Record<string, unknown>): Promise<Record<string, unknown>> {
    if (this.busy) throw new VriftError('EINTERNAL', 'IpcClient is not re-entrant');
    this.busy = true;
    try {
      await this.sock.send(encode({ v: PROTOCOL_VERSION, build: BUILD_ID, ...msg }));
      const [reply] = await this.sock.receive();
      return decode(reply);
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

// One-shot helper: send, wait, close.
export async function ipcCall(endpoint: string, msg: Record<string, unknown>, timeoutMs = 5000): Promise<Record<string, unknown>> {
  const c = new IpcClient(endpoint, timeoutMs);
  try {
    return await c.request(msg);
  } finally {
    await c.close();
  }
}
