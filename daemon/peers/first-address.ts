import http from 'node:http';
import net from 'node:net';
import { VriftError } from '../../ipc/errors.js';

/** The response header a peer server tells members its key fingerprint in (never to anyone else). */
export const KEY_HEADER = 'x-vrift-key';

/** Checks that a connected socket leads to the peer wanted; rejects when it does not. */
export type Confirm = (socket: net.Socket, addr: string) => Promise<void>;

/**
 * Which of a peer's addresses takes a TCP connection first. mDNS announces every interface's
 * (IPv4 and IPv6, docker0, VPN tunnels), and some lead nowhere from here, or somewhere else:
 * this host's own docker0, another machine on a VPN. Attempts start in the order given,
 * `staggerMs` apart or at once when the one before fails (RFC 8305's happy eyeballs, with a
 * LAN's stagger); an address that connects wins once `confirm` (when given) accepts it, each
 * attempt bounded by `connectMs` in all, and the others are dropped. Rejects with the last
 * failure when none wins.
 */
export function firstToConnect(addresses: readonly string[], port: number, connectMs: number, staggerMs: number, confirm?: Confirm): Promise<string> {
  if (addresses.length === 0) return Promise.reject(new VriftError('ENOTFOUND', 'no address to try'));
  return new Promise((resolve, reject) => {
    const sockets = new Set<net.Socket>();
    const timers = new Set<NodeJS.Timeout>();
    let next = 0;
    let failed = 0;
    let done = false;
    let stagger: NodeJS.Timeout | undefined;
    const finish = () => {
      done = true;
      clearTimeout(stagger);
      for (const t of timers) clearTimeout(t);
      for (const s of sockets) s.destroy();
    };
    const win = (addr: string) => {
      finish();
      resolve(addr);
    };
    const start = () => {
      clearTimeout(stagger);
      if (done || next >= addresses.length) return;
      const addr = addresses[next++];
      const s = net.connect({ host: addr, port });
      sockets.add(s);
      let lost = false;
      // Each attempt fails once, whichever of its error, its deadline or `confirm` says so first.
      const lose = (e: Error) => {
        if (lost) return;
        lost = true;
        clearTimeout(timer);
        sockets.delete(s);
        s.destroy();
        if (done) return;
        if (++failed === addresses.length) {
          finish();
          reject(e);
        } else start();
      };
      const timer = setTimeout(
        () => lose(new VriftError('ETIMEOUT', `connect to ${addr} timed out after ${connectMs} ms`, { fields: { addr, ms: connectMs } })),
        connectMs,
      );
      timers.add(timer);
      s.on('error', lose);
      s.once('connect', () => {
        if (done || lost) return;
        if (!confirm) return win(addr);
        confirm(s, addr).then(() => {
          if (!done && !lost) win(addr);
        }, lose);
      });
      if (next < addresses.length) stagger = setTimeout(start, staggerMs);
    };
    start();
  });
}

/**
 * A Confirm: the address answers a member's signed `GET /status` with `fingerprint` in
 * KEY_HEADER, so it is the peer that announced that key and not whatever else listens on
 * that port there. Against wrong routes, not against a liar (any server can send the header):
 * what a peer gives is checked by its signatures and digests either way.
 */
export function answersAs(fingerprint: string, sign: (method: string, target: string) => Record<string, string>): Confirm {
  return (socket, addr) =>
    new Promise<void>((resolve, reject) => {
      const req = http.request({ host: addr, method: 'GET', path: '/status', headers: sign('GET', '/status'), createConnection: () => socket }, (res) => {
        res.resume();
        const got = res.headers[KEY_HEADER];
        if (got === fingerprint) return resolve();
        const as = typeof got === 'string' ? `key ${got}` : `HTTP ${res.statusCode} without a key`;
        reject(new VriftError('ENOTFOUND', `${addr} answered as ${as}, not the announced ${fingerprint}`, { fields: { addr, fingerprint, got } }));
      });
      req.on('error', reject);
      req.end();
    });
}
