import net from 'node:net';
import type { Readable } from 'node:stream';
import { LRUCache } from 'lru-cache';
import type { PeerRecord, PeerTable } from '../../discovery/index.js';
import { VriftError } from '../../ipc/errors.js';
import type { ChannelLogger } from '../log.js';
import type { PeerAuth } from '../peers/auth.js';
import { BUNDLE_HEADER } from '../peers/attach.js';
import { answersAs, firstToConnect } from '../peers/first-address.js';
import { decodeBundle, encodeBundle, isBundle } from './bundle.js';
import { emptyRemoteCounters, type RemoteCounters } from './counters.js';
import { HttpTier } from './http.js';
import type { RemoteTier } from './types.js';

export interface PeerTierOptions {
  table: PeerTable;
  auth: PeerAuth;
  /** How long a lookup waits for peers (peer_wait); their later answers are kept for the next lookup. */
  waitMs: number;
  log: ChannelLogger;
  now?: () => number;
  connectTimeoutMs?: number;
  timeoutMs?: number;
  /**
   * Whether an entry a peer returned may be used (its signature, by a trusted key); a refused
   * one is a miss, counted as untrusted. `where`: the address it came from (host:port).
   */
  accept?: (key: string, value: Buffer, peer: PeerRecord, where: string) => boolean;
  /** What a log line calls a peer (its instance, address, key); its id when not given. */
  describe?: (peer: PeerRecord, where: string) => string;
}

export interface PeerStats {
  peers_up: number;
  peers_cooling: number;
  peers_slow: number; // asked, but not waited for: a request of theirs went unanswered for 4 × peer_wait
  hits: number; // lookups a peer answered first
  misses: number; // lookups every peer asked answered "no"
  late: number; // lookups that went on without peers: after peer_wait, or at once when every peer asked is slow
  late_kept: number; // answers that came after peer_wait and were kept for the next lookup
  errors: number; // refused connections, bad statuses, content that failed verification
  timeouts: number;
  untrusted: number; // entries refused: not signed by a trusted key
  bytes_down: number;
  bytes_up: number; // what this daemon served to peers
}

// Peers on a LAN answer in a millisecond or two, or not at all: short deadlines.
const CONNECT_MS = 300;
const IDLE_MS = 1000;
// Peers that answered a lookup lately, asked first for its outputs.
const RECENT = 4;
const LATE_KEEP_MS = 60_000;
// A key every peer asked answered "no" for is not asked of them again for this long (the read
// that merges a miss's new entry into its manifest asks right after the lookup did).
const NO_KEEP_MS = 60_000;
// A peer whose request is still unanswered this many peer_waits after it was sent is not waited for (until it answers).
const SLOW_WAITS = 4;
// A peer with several addresses: the next one is tried this long after the one before, unless it failed sooner.
const STAGGER_MS = 50;

const GONE_CODES = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL']);

/**
 * LAN peers as one tier: a lookup asks every peer that may be asked at once; the first
 * verified answer wins; when every one has said "no" the lookup ends at once, and after
 * `waitMs` it goes on without them (an answer that comes later is kept for the next lookup
 * of that key). A hit's objects are fetched from the peers that answered lately, verified
 * against their digest by the HTTP client (one HttpTier per peer: the same checks as the
 * remote), and enter the local store through the TieredStore in front like remote objects.
 * Liveness is the peer table's: every failure is reported there and decides whether the
 * peer is asked again.
 */
export class PeerTier implements RemoteTier {
  readonly name = 'peers';
  readonly url = 'LAN peers';
  private readonly clients = new Map<string, { tier: HttpTier; base: string }>();
  // Per peer id: the address that took a connection, chosen among the ones it announced (`from`).
  private readonly chosen = new Map<string, { from: string; addr: Promise<string | undefined> }>();
  private readonly late: LRUCache<string, { value: Buffer; peer: PeerRecord }>;
  // Per key: the peer whose entry a lookup returned, so that a refusal of it names the peer.
  private readonly gaveEntry: LRUCache<string, PeerRecord>;
  // Per key: the peers (ids) that answered "no" lately.
  private readonly saidNo: LRUCache<string, ReadonlySet<string>>;
  private recent: PeerRecord[] = [];
  // Peers (ids) with a request unanswered for slowMs, until they answer one.
  private readonly slow = new Set<string>();
  private readonly slowMs: number;
  private readonly s = { hits: 0, misses: 0, late: 0, late_kept: 0, untrusted: 0, bytes_down: 0, bytes_up: 0 };
  private readonly now: () => number;
  private closed = false;

  constructor(private readonly o: PeerTierOptions) {
    this.now = o.now ?? Date.now;
    this.slowMs = SLOW_WAITS * o.waitMs;
    this.late = new LRUCache({ max: 4096, ttl: LATE_KEEP_MS, ttlAutopurge: false });
    this.gaveEntry = new LRUCache({ max: 4096, ttl: LATE_KEEP_MS, ttlAutopurge: false });
    this.saidNo = new LRUCache({ max: 16384, ttl: NO_KEEP_MS, ttlResolution: 0, ttlAutopurge: false, perf: { now: this.now } });
  }

  stats(): PeerStats {
    const known = this.o.table.known();
    let errors = 0;
    let timeouts = 0;
    for (const p of this.o.table.view()) {
      errors += p.errors;
      timeouts += p.timeouts;
    }
    return {
      peers_up: known.filter((p) => p.live.state === 'up').length,
      peers_cooling: known.filter((p) => p.live.state === 'cooling').length,
      peers_slow: known.filter((p) => this.slow.has(p.ad.id)).length,
      hits: this.s.hits,
      misses: this.s.misses,
      late: this.s.late,
      late_kept: this.s.late_kept,
      errors,
      timeouts,
      untrusted: this.s.untrusted,
      bytes_down: this.s.bytes_down,
      bytes_up: this.s.bytes_up,
    };
  }

  /** Bytes this daemon's peer server sent. */
  served(bytes: number): void {
    this.s.bytes_up += bytes;
  }

  // ---- RemoteTier ----

  async getEntry(key: string): Promise<Buffer | undefined> {
    if (this.closed) return undefined;
    const kept = this.late.get(key);
    if (kept) {
      this.late.delete(key);
      this.s.hits++;
      this.answeredBy(kept.peer);
      this.gaveEntry.set(key, kept.peer);
      return kept.value;
    }
    const asked = this.o.table.candidates();
    if (asked.length === 0) return undefined;
    const no = this.saidNo.get(key);
    if (no && asked.every((p) => no.has(p.ad.id))) {
      this.s.misses++;
      return undefined;
    }
    const nos = new Set<string>();
    // A peer with a request unanswered for SLOW_WAITS × peer_wait is asked but not waited for
    // until it answers again: a dead peer costs the lookups of its first moments peer_wait,
    // not every lookup until it has timed out often enough to cool down.
    const waited = asked.filter((p) => !this.slow.has(p.ad.id));
    // Every peer asked said "no", even after the lookup went on: the read that merges the
    // miss's new entry into its manifest right after need not ask them again.
    const allSaidNo = () => nos.size === asked.length && this.saidNo.set(key, nos);
    if (waited.length === 0) {
      for (const p of asked) void this.ask(p, key, nos).then((v) => (v ? this.keepLate(key, v, p) : allSaidNo()));
      this.s.late++;
      return undefined;
    }
    return new Promise<Buffer | undefined>((resolve) => {
      const pending = new Set(waited);
      let done = false;
      const finish = (v: Buffer | undefined) => {
        done = true;
        clearTimeout(timer);
        resolve(v);
      };
      const timer = setTimeout(() => {
        if (done) return;
        this.s.late++;
        // Still unanswered a while later (not a moment's load here or there): slow.
        const later = setTimeout(() => {
          for (const p of pending) if (!this.closed) this.slow.add(p.ad.id);
        }, this.slowMs - this.o.waitMs);
        later.unref();
        finish(undefined);
      }, this.o.waitMs);
      timer.unref();
      for (const p of asked) {
        void this.ask(p, key, nos).then((v) => {
          pending.delete(p);
          if (v && !done) {
            this.s.hits++;
            this.answeredBy(p);
            this.gaveEntry.set(key, p);
            finish(v);
          } else if (v) this.keepLate(key, v, p);
          else {
            allSaidNo();
            if (pending.size === 0 && !done) {
              this.s.misses++;
              finish(undefined);
            }
          }
        });
      }
    });
  }

  private keepLate(key: string, value: Buffer, peer: PeerRecord): void {
    this.s.late_kept++;
    this.late.set(key, { value, peer });
  }

  async getBlob(digest: string): Promise<Buffer | undefined> {
    for (const p of this.sources()) {
      const t0 = this.now();
      const c = await this.clientFor(p);
      if (!c) continue;
      const misses = c.counters().misses;
      const b = await c.getBlob(digest);
      if (b) {
        this.o.table.delivered(p, this.now() - t0, b.length);
        this.s.bytes_down += b.length;
        return b;
      }
      if (c.counters().misses > misses) this.o.table.delivered(p, this.now() - t0, 0);
    }
    return undefined;
  }

  async getBlobStream(digest: string, size?: number): Promise<Readable | undefined> {
    for (const p of this.sources()) {
      const s = await (await this.clientFor(p))?.getBlobStream(digest, size);
      if (s) {
        s.on('end', () => void (this.s.bytes_down += size ?? 0));
        return s;
      }
    }
    return undefined;
  }

  async hasBlob(): Promise<boolean> {
    return false; // nothing is uploaded to peers
  }

  putBlob(): Promise<string> {
    return Promise.reject(new VriftError('ESTORE', 'LAN peers are read-only'));
  }

  putEntry(): Promise<void> {
    return Promise.reject(new VriftError('ESTORE', 'LAN peers are read-only'));
  }

  putBlobStream(): Promise<void> {
    return Promise.reject(new VriftError('ESTORE', 'LAN peers are read-only'));
  }

  counters(): RemoteCounters {
    const st = this.stats();
    return { ...emptyRemoteCounters(), hits: st.hits, misses: st.misses, errors: st.errors, timeouts: st.timeouts, bytes_down: st.bytes_down };
  }

  coolingDown(): boolean {
    return false; // per peer: the table
  }

  health(): Record<string, unknown> {
    return { url: this.url };
  }

  // The entry a peer gave did not hold together (a bundle whose parts fail their digests):
  // a lie, counted on the peer and logged naming it, like a refused signature.
  rejected(key: string, e: Error): void {
    const p = this.gaveEntry.get(key);
    this.gaveEntry.delete(key);
    if (!p) return void this.o.log.warn('peer entry refused', { key, err: e });
    const where = this.clients.get(p.ad.id)?.base ?? '';
    this.o.table.lied(p, `entry refused: ${e.message}`);
    this.o.log.warn('peer entry refused', { key, peer: this.o.describe?.(p, where) ?? p.ad.id, err: e });
  }

  probed(): Promise<void> {
    return Promise.resolve();
  }

  check(): Promise<void> {
    return Promise.resolve();
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.clients.values()].map((c) => c.tier.close()));
    this.clients.clear();
    this.chosen.clear();
    this.late.clear();
    this.gaveEntry.clear();
    this.saidNo.clear();
    this.slow.clear();
  }

  // ---- internals ----

  // `nos`: where a clean "no" from `p` is noted.
  private async ask(p: PeerRecord, key: string, nos: Set<string>): Promise<Buffer | undefined> {
    const t0 = this.now();
    const c = await this.clientFor(p);
    if (!c) return undefined;
    const misses = c.counters().misses;
    const v = await c.getEntry(key);
    if (v || c.counters().misses > misses) this.slow.delete(p.ad.id);
    if (!v) {
      // A clean "no" (404); a failure was reported to the table by the client already.
      if (c.counters().misses > misses) {
        this.o.table.answered(p, this.now() - t0, false);
        nos.add(p.ad.id);
      }
      return undefined;
    }
    const checked = this.checked(key, v, p);
    if (!checked) {
      this.o.table.answered(p, this.now() - t0, false);
      return undefined;
    }
    this.o.table.answered(p, this.now() - t0, true, v.length);
    this.s.bytes_down += v.length;
    return checked;
  }

  // A peer's answer through `accept`: the value, and each entry attached to it (a bundle: the
  // result a manifest points at), as if each had been asked for alone. A refused value is a
  // miss; a refused attachment is left out (asked for on its own later, and refused there
  // again). Attached blobs are checked against their digests by the reader (RemoteReads).
  private checked(key: string, v: Buffer, p: PeerRecord): Buffer | undefined {
    const where = this.clients.get(p.ad.id)?.base ?? '';
    const ok = (k: string, e: Buffer) => {
      if (!this.o.accept || this.o.accept(k, e, p, where)) return true;
      this.s.untrusted++;
      return false;
    };
    if (!isBundle(v)) return ok(key, v) ? v : undefined;
    let b: ReturnType<typeof decodeBundle>;
    try {
      b = decodeBundle(v);
    } catch (e) {
      this.o.table.lied(p, `malformed bundle: ${(e as Error).message}`);
      this.o.log.warn('peer entry refused', { key, peer: this.o.describe?.(p, where) ?? p.ad.id, err: e });
      return undefined;
    }
    if (!ok(key, b.value)) return undefined;
    const entries = b.entries.filter(([k, e]) => ok(k, e));
    // A peer's bundle names no pack (packs are the remote's): one that does is not followed.
    return entries.length === b.entries.length && !b.pack ? v : encodeBundle({ value: b.value, entries, blobs: b.blobs });
  }

  // Where a hit's objects are asked for: the peers that answered lately and may be asked now.
  private sources(): PeerRecord[] {
    if (this.closed) return [];
    return this.recent.filter((p) => p.live.state === 'up');
  }

  private answeredBy(p: PeerRecord): void {
    this.recent = [p, ...this.recent.filter((x) => x !== p)].slice(0, RECENT);
  }

  private async clientFor(p: PeerRecord): Promise<HttpTier | undefined> {
    const addr = await this.address(p);
    return addr === undefined || this.closed ? undefined : this.client(p, addr);
  }

  // The address to ask a peer on: its only one, or the first of several to take a connection
  // (kept until a request on it fails). None taking one is the peer's failure, like a refusal.
  private address(p: PeerRecord): Promise<string | undefined> {
    const all = p.ad.addresses;
    if (all.length <= 1) return Promise.resolve(all[0]);
    const from = all.join();
    const have = this.chosen.get(p.ad.id);
    if (have && have.from === from) return have.addr;
    const connectMs = this.o.connectTimeoutMs ?? CONNECT_MS;
    // With the key it announced, an address must answer as that key (not this host's own docker0, say).
    const confirm = p.ad.fingerprint ? answersAs(p.ad.fingerprint, (m, t) => this.o.auth.sign(m, t)) : undefined;
    const addr = firstToConnect(all, p.ad.port, connectMs, STAGGER_MS, confirm).then(
      (a) => {
        this.o.log.info('peer address chosen', { peer: p.ad.id, address: a, addresses: all });
        return a;
      },
      (e: unknown) => {
        if (this.chosen.get(p.ad.id)?.addr === addr) this.chosen.delete(p.ad.id);
        this.failed(p, e, true);
        return undefined;
      },
    );
    this.chosen.set(p.ad.id, { from, addr });
    return addr;
  }

  private client(p: PeerRecord, addr: string): HttpTier {
    const base = `http://${net.isIPv6(addr) ? `[${addr}]` : addr}:${p.ad.port}`;
    const have = this.clients.get(p.ad.id);
    if (have && have.base === base) return have.tier;
    // The peer moved to another address: the old client's requests are cut, and what that
    // does to them (a reset, a closed connection) is this switch, not the peer failing.
    if (have) void have.tier.close();
    const tier: HttpTier = new HttpTier(base, {
      connectTimeoutMs: this.o.connectTimeoutMs ?? CONNECT_MS,
      timeoutMs: this.o.timeoutMs ?? IDLE_MS,
      now: this.now,
      log: this.o.log,
      // Lookups take a manifest's newest result and object along when the peer has them (peers/attach.ts).
      sign: (method, target) => ({ ...this.o.auth.sign(method, target), ...(method === 'GET' && target.startsWith('/ac/') ? { [BUNDLE_HEADER]: '1' } : {}) }),
      onFailure: (e) => {
        if (this.clients.get(p.ad.id)?.tier === tier && !this.closed) this.failed(p, e, false);
      },
    });
    this.clients.set(p.ad.id, { tier, base });
    return tier;
  }

  // `all`: every address the peer announced failed, not only the one a request went to.
  private failed(p: PeerRecord, e: unknown, all: boolean): void {
    const code = (e as { code?: string }).code ?? '';
    const why = `${code ? code + ': ' : ''}${(e as Error).message}`;
    const where = all ? p.ad.addresses.join(', ') : (this.clients.get(p.ad.id)?.base ?? '');
    if (!all && p.ad.addresses.length > 1 && (GONE_CODES.has(code) || code === 'ETIMEOUT')) {
      // One address of several stopped answering: the next lookup tries them all again, and
      // only none answering there drops the peer.
      this.chosen.delete(p.ad.id);
      this.o.table.timedOut(p, `${where}: ${why}`);
    } else if (GONE_CODES.has(code) || (all && code === 'ENOTFOUND'))
      this.o.table.refused(p, why); // no address leads to it
    else if (code === 'ETIMEOUT') this.o.table.timedOut(p, why);
    else this.o.table.lied(p, why);
    this.o.log.warn('peer failed', { peer: p.ad.id, address: where, state: p.live.state, err: e });
  }
}
