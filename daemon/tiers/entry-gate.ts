import type { PublicKey } from '../../trust/keys.js';
import { describeKeys } from '../../trust/keys.js';
import { openEntry, verifyEntry } from '../../trust/entry-signature.js';
import type { ChannelLogger } from '../log.js';

export interface EntryGateOptions {
  /** Only entries signed by one of these keys pass (when `require`). */
  trusted: readonly PublicKey[];
  /** False: any well-formed entry passes, signed or not (a team remote the user trusts as it is). */
  require: boolean;
  log: ChannelLogger;
  now: () => number;
  /** What the log calls the tier the entries come from ("remote", a peer's name). */
  source: string;
  /** Why a payload that passed the signature check must still not be used (an output path out of its directory), or undefined. */
  inspect?: (payload: Buffer) => string | undefined;
}

// Log lines per signer: the first refusal at warn (with the keys involved), then at debug for
// this long, so a build of a thousand refused entries says it once a minute, not a thousand times.
const WARN_EVERY_MS = 60_000;

// Where entries from another machine are let in, or not. Nothing is remembered about a refused
// entry: the next lookup asks and checks again (a key added to trusted_keys takes effect on the
// next daemon start, and a signature that was missing may be there next time).
export class EntryGate {
  private refused = 0;
  private readonly warned = new Map<string, number>();

  constructor(private readonly o: EntryGateOptions) {}

  get required(): boolean {
    return this.o.require;
  }

  /** Entries refused so far (the `untrusted` count). */
  untrusted(): number {
    return this.refused;
  }

  /**
   * True when `stored`, found under `key`, may be used; a refusal is counted and logged.
   * `source` names where it came from when that is more than the gate's (one peer of many).
   */
  accept(key: string, stored: Buffer, source = this.o.source): boolean {
    if (!this.o.require) {
      const e = openEntry(stored);
      if (!e) return this.refuse(key, source, undefined, 'malformed signed entry');
      return this.inspected(key, source, e.signer, e.payload);
    }
    const v = verifyEntry(key, stored, this.o.trusted);
    return v.ok ? this.inspected(key, source, v.signer, v.payload) : this.refuse(key, source, v.signer, v.reason);
  }

  private inspected(key: string, source: string, signer: string | undefined, payload: Buffer): boolean {
    const bad = this.o.inspect?.(payload);
    return bad === undefined || this.refuse(key, source, signer, bad);
  }

  private refuse(key: string, source: string, signer: string | undefined, reason: string): false {
    this.refused++;
    const who = signer ?? '(unsigned)';
    const now = this.o.now();
    const last = this.warned.get(who);
    const fields = { key, source, signer: who, trusted: describeKeys(this.o.trusted), reason };
    if (last === undefined || now - last >= WARN_EVERY_MS) {
      if (this.warned.size >= 1000) this.warned.clear();
      this.warned.set(who, now);
      this.o.log.warn(`entry from ${source} refused: ${reason}`, fields);
    } else {
      this.o.log.debug(`entry from ${source} refused: ${reason}`, fields);
    }
    return false;
  }
}
