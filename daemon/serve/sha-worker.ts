import crypto from 'node:crypto';
import { parentPort } from 'node:worker_threads';

// SHA-256 of uploads, off the server's main thread (see sha-off-thread.ts). Messages:
// { id, data: ArrayBuffer } → update, answered { id, ack: bytes }; { id, end: true } →
// answered { id, hex }; { id, drop: true } forgets the upload.
const hashes = new Map<number, crypto.Hash>();

parentPort!.on('message', (m: { id: number; data?: ArrayBuffer; end?: boolean; drop?: boolean }) => {
  if (m.drop) {
    hashes.delete(m.id);
    return;
  }
  let h = hashes.get(m.id);
  if (!h) hashes.set(m.id, (h = crypto.createHash('sha256')));
  if (m.data) {
    h.update(new Uint8Array(m.data));
    parentPort!.postMessage({ id: m.id, ack: m.data.byteLength });
  }
  if (m.end) {
    hashes.delete(m.id);
    parentPort!.postMessage({ id: m.id, hex: h.digest('hex') });
  }
});
