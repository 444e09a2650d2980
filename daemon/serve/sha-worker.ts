import crypto from 'node:crypto';
import { type MessagePort, parentPort } from 'node:worker_threads';

// SHA-256 of uploads, off the server's main thread (see sha-off-thread.ts). Messages:
// { id, data: ArrayBuffer, len } → update with its first len bytes, answered { id, ack: len,
// data } (the buffer goes back for reuse); { id, end: true } → answered { id, hex };
// { id, drop: true } forgets the upload.
function serve(port: MessagePort): void {
  const hashes = new Map<number, crypto.Hash>();
  port.on('message', (m: { id: number; data?: ArrayBuffer; len?: number; end?: boolean; drop?: boolean }) => {
    if (m.drop) {
      hashes.delete(m.id);
      return;
    }
    let h = hashes.get(m.id);
    if (!h) hashes.set(m.id, (h = crypto.createHash('sha256')));
    if (m.data) {
      h.update(new Uint8Array(m.data, 0, m.len));
      port.postMessage({ id: m.id, ack: m.len, data: m.data }, [m.data]);
    }
    if (m.end) {
      hashes.delete(m.id);
      port.postMessage({ id: m.id, hex: h.digest('hex') });
    }
  });
}

serve(parentPort!);
