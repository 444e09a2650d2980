import net from 'node:net';
import Bonjour, { type Browser, type Service } from 'bonjour-service';
import { realTimers, type DiscoveryLog, type Timers } from './log.js';
import type { PeerTable } from './table.js';
import { PEER_PROTOCOL, SERVICE_TYPE, type PeerAd } from './types.js';

export interface MdnsOptions {
  table: PeerTable;
  /** This daemon's instance name: unique on the network (a clash would stop its announcement). */
  instance: string;
  /** Where this daemon serves its store to peers. */
  port: number;
  fingerprint: string;
  log: DiscoveryLog;
  /** One interface to use (its address); every interface by default. */
  interface?: string;
  /** A re-query round starts every roundMs[0]..roundMs[1] ms (random within, so peers do not ask in step). */
  roundMs?: [number, number];
  /** How long a round waits for answers before peers that gave none are dropped. */
  answerWindowMs?: number;
  timers?: Timers;
  random?: () => number;
}

const ROUND_MS: [number, number] = [30_000, 45_000];
const ANSWER_WINDOW_MS = 3000;
// A daemon's first query may go out before its socket has joined the group: asked again
// soon after the start, so peers already there are found within 2 s.
const START_REQUERY_MS = [400, 1200];

// Announces this daemon as `_vrift._tcp` and browses for others. bonjour-service's browser
// asks once and never expires what it heard (a crashed peer stays listed for hours), so each
// round starts a fresh browser: it asks again, every peer that is there answers it, and an
// mDNS peer that did not answer within the window is dropped. The fresh browser also hears
// announcements (a new peer, found as soon as it announces) and goodbyes (dropped at once).
export class MdnsDiscovery {
  private readonly bonjour: Bonjour;
  private browser: Browser | undefined;
  private roundTimer: unknown;
  private windowTimer: unknown;
  private seen = new Set<string>();
  private readonly starts: unknown[] = [];
  private readonly timers: Timers;
  private readonly random: () => number;
  private closing: Promise<void> | undefined;

  constructor(private readonly o: MdnsOptions) {
    this.timers = o.timers ?? realTimers;
    this.random = o.random ?? Math.random;
    // multicast-dns options, passed through by bonjour-service (its type says ServiceConfig).
    // With an interface set, binding it alone receives nothing (multicast-dns#53).
    const opts = o.interface ? { interface: o.interface, bind: '0.0.0.0' } : {};
    this.bonjour = new Bonjour(opts as never, (err: Error) => o.log.warn('mDNS error', { err }));
  }

  start(): void {
    this.bonjour.publish({
      name: this.o.instance,
      type: SERVICE_TYPE,
      port: this.o.port,
      host: `${this.o.instance}.local`,
      txt: { v: PEER_PROTOCOL, fp: this.o.fingerprint, port: String(this.o.port) },
      // The instance name is unique by construction: probing would only delay the announcement.
      probe: false,
    });
    this.round();
    for (const ms of START_REQUERY_MS) this.starts.push(this.timers.setTimeout(() => this.browser?.update(), ms));
  }

  /** Starts a re-query round now (tests; the timer does it every 30-45 s). */
  round(): void {
    if (this.closing) return;
    this.timers.clearTimeout(this.roundTimer);
    this.timers.clearTimeout(this.windowTimer);
    this.browser?.stop();
    this.seen = new Set();
    const b = this.bonjour.find({ type: SERVICE_TYPE });
    this.browser = b;
    b.on('up', (s: Service) => this.heard(s));
    b.on('srv-update', (s: Service) => this.heard(s));
    b.on('txt-update', (s: Service) => this.heard(s));
    b.on('down', (s: Service) => {
      if (s.name === this.o.instance) return;
      this.o.table.drop(s.name, 'said goodbye');
    });
    this.windowTimer = this.timers.setTimeout(() => this.endWindow(), this.o.answerWindowMs ?? ANSWER_WINDOW_MS);
    const [lo, hi] = this.o.roundMs ?? ROUND_MS;
    this.roundTimer = this.timers.setTimeout(() => this.round(), lo + this.random() * (hi - lo));
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.timers.clearTimeout(this.roundTimer);
      this.timers.clearTimeout(this.windowTimer);
      for (const h of this.starts) this.timers.clearTimeout(h);
      this.browser?.stop();
      // The goodbye (TTL 0) goes out before the socket closes: peers forget this one at once.
      await new Promise<void>((r) => this.bonjour.unpublishAll(() => r()));
      await new Promise<void>((r) => this.bonjour.destroy(() => r()));
    })();
    return this.closing;
  }

  private endWindow(): void {
    for (const p of this.o.table.known()) {
      if (p.ad.source === 'mdns' && !this.seen.has(p.ad.id)) this.o.table.drop(p.ad.id, 'no answer to the mDNS re-query');
    }
  }

  private heard(s: Service): void {
    if (s.name === this.o.instance) return;
    const txt = (s.txt ?? {}) as Record<string, unknown>;
    if (String(txt.v ?? '') !== PEER_PROTOCOL) {
      this.o.log.debug('mDNS peer of another protocol ignored', { name: s.name, v: txt.v });
      return;
    }
    const port = Number(s.port);
    if (!Number.isInteger(port) || port <= 0 || port > 65535) return;
    // The address the answer came from first: it is the one known to route here.
    const from = (s as Service & { referer?: { address?: string } }).referer?.address;
    const addresses = [...new Set([from, ...(s.addresses ?? [])].filter((a): a is string => !!a && usable(a)))];
    if (addresses.length === 0) return;
    const ad: PeerAd = { id: s.name, addresses, port, fingerprint: String(txt.fp ?? ''), source: 'mdns' };
    this.seen.add(ad.id);
    this.o.table.upsert(ad);
  }
}

// IPv6 link-local addresses need a zone this record does not carry.
function usable(a: string): boolean {
  return net.isIPv4(a) || (net.isIPv6(a) && !/^fe80:/i.test(a));
}
