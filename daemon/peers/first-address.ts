import net from 'node:net';
import { VriftError } from '../../ipc/errors.js';

/**
 * Which of a peer's addresses takes a TCP connection first. mDNS announces every interface's
 * (IPv4 and IPv6, docker0, VPN tunnels), and some lead nowhere from here. Attempts start in
 * the order given, `staggerMs` apart or at once when the one before fails (RFC 8305's happy
 * eyeballs, with a LAN's stagger), each bounded by `connectMs`; the first to connect wins
 * and the others are dropped. Rejects with the last failure when none connects.
 */
export function firstToConnect(addresses: readonly string[], port: number, connectMs: number, staggerMs: number): Promise<string> {
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
    const start = () => {
      clearTimeout(stagger);
      if (done || next >= addresses.length) return;
      const addr = addresses[next++];
      const s = net.connect({ host: addr, port });
      sockets.add(s);
      const timer = setTimeout(
        () => s.destroy(new VriftError('ETIMEOUT', `connect to ${addr} timed out after ${connectMs} ms`, { fields: { addr, ms: connectMs } })),
        connectMs,
      );
      timers.add(timer);
      s.once('connect', () => {
        if (done) return;
        finish();
        resolve(addr);
      });
      s.once('error', (e) => {
        clearTimeout(timer);
        sockets.delete(s);
        if (done) return;
        if (++failed === addresses.length) {
          finish();
          reject(e);
        } else start();
      });
      if (next < addresses.length) stagger = setTimeout(start, staggerMs);
    };
    start();
  });
}
