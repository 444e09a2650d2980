import type { Attach } from '../store/contract.js';
import type { IdleWriter } from '../store/idle-writer.js';
import type { LocalStore } from '../store/local.js';
import type { ChannelLogger } from '../log.js';
import { PACK_BYTES_MAX, PACK_MEMBERS_MAX, encodeBundle, encodePack, type Bundle } from './bundle.js';
import type { RemoteTier } from './types.js';
import { readBundle, valueOf, type Upload } from './upload.js';

export interface PackWriterOptions {
  remote: RemoteTier;
  local: LocalStore;
  later: IdleWriter;
  log: ChannelLogger;
  /** A pack is sealed after this long without a new member... */
  quietMs: number;
  /** ... or once its first member has waited this long. */
  maxAgeMs: number;
  /** True while compiles run: their results join the open pack (up to maxAgeMs). */
  busy: () => boolean;
  /** A sealed pack's members, handed to the upload queue as one job. */
  sealed: (members: Upload[]) => void;
  /** True (and counted) when an attachment is neither on the server nor in the bundle. */
  orphaned: (attach: Attach | undefined, b: Bundle | undefined) => boolean;
}

// The writing side of packs (bundle.ts): the entries with attachments that the upload queue
// takes one after another are held in one open pack, sealed together, and go up as one CAS
// blob followed by each member's thin value.
export class PackWriter {
  private open: Upload[] = [];
  private openedAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private uploaded = 0;

  constructor(private readonly o: PackWriterOptions) {}

  add(u: Upload): void {
    if (this.open.length === 0) this.openedAt = Date.now();
    this.open.push(u);
    if (this.open.length >= PACK_MEMBERS_MAX) this.seal();
    else this.arm();
  }

  // The entries waiting in the open pack go up together, as one upload job.
  seal(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.open.length === 0) return;
    this.o.sealed(this.open.splice(0));
  }

  /** Packs that went up. */
  count(): number {
    return this.uploaded;
  }

  // A sealed pack's members: their bundles go up as one pack blob (or several, PACK_BYTES_MAX
  // each) first, then each member's own value: thin (the value and its pack's name; the
  // attachments are in the pack, and every attachment is also on the server on its own). A
  // pack that fails to go up leaves its members uploaded as whole bundles; a member that
  // fails is dropped (logged). Returns the members that did not go up because the remote
  // switched off (a failure, or an answer too slow, that started a cool-down): the queue
  // tries them again once it answers.
  async upload(members: Upload[], after: Promise<unknown>[]): Promise<Upload[]> {
    const { remote, log } = this.o;
    await Promise.allSettled(after);
    if (remote.coolingDown()) return members;
    const left: Upload[] = [];
    let group: [Upload, Bundle, Buffer][] = [];
    let bytes = 0;
    const send = async () => {
      const g = group;
      group = [];
      bytes = 0;
      let pack: string | undefined;
      if (g.length > 1) {
        try {
          pack = await remote.putBlob(encodePack(g.map(([m, , plain]) => [m.key, plain])));
          this.uploaded++;
        } catch (e) {
          log.debug('pack upload failed', { members: g.length, err: e });
        }
      }
      let next = 0;
      const worker = async () => {
        while (next < g.length && !remote.coolingDown()) {
          const [m, b, plain] = g[next++];
          try {
            // Named in its pack, a member goes up thin: its attachments are in the pack.
            await remote.putEntry(m.key, pack ? encodeBundle({ value: b.value, entries: [], blobs: [], pack }) : plain);
          } catch (e) {
            log.debug('upload failed', { kind: 'entry', key: m.key, err: e });
            if (remote.coolingDown()) left.push(m);
          }
        }
      };
      await Promise.all([worker(), worker(), worker(), worker()]);
      for (const [m] of g.slice(next)) left.push(m);
    };
    for (const m of members) {
      const b = await readBundle(m.data!, m.attach!, this.o.later, this.o.local);
      if (this.o.orphaned(m.attach, b)) continue;
      const plain = valueOf(b);
      if (group.length > 0 && bytes + plain.length > PACK_BYTES_MAX) await send();
      group.push([m, b, plain]);
      bytes += plain.length;
    }
    if (group.length > 0) await send();
    return left;
  }

  /** Stops the sealing timer; what is still open goes nowhere (the queue seals it first when draining). */
  close(): Promise<void> {
    clearTimeout(this.timer);
    return Promise.resolve();
  }

  // Sealed once quiet for quietMs with no compile running, or maxAgeMs after it opened:
  // a build's results close together share a pack, and a long build's still go up within seconds.
  private arm(): void {
    clearTimeout(this.timer);
    const left = this.openedAt + this.o.maxAgeMs - Date.now();
    this.timer = setTimeout(
      () => {
        if (this.o.busy() && this.openedAt + this.o.maxAgeMs > Date.now()) this.arm();
        else this.seal();
      },
      Math.max(0, Math.min(this.o.quietMs, left)),
    );
    this.timer.unref();
  }
}
