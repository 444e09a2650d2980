import { Worker } from 'node:worker_threads';

// SHA-256 runs at ~1.8 GB/s on the benchmark VM, BLAKE3 at ~4 GB/s: an upload that must
// be checked both ways (Bazel and ccache don't name their digest function) was bound by
// SHA-256 on the server's one thread (407-484 MB/s for 64 MB). One worker thread, shared by
// all uploads, hashes SHA-256 while the main thread receives, writes and hashes BLAKE3.
// Bytes handed over but not yet hashed are bounded per upload (MAX_AHEAD): the receiver
// waits, so memory stays flat however large the blob.

const MAX_AHEAD = 8 * 2 ** 20;
// Chunks travel in buffers of this size that the worker hands back for reuse: a buffer
// transferred once and left to the worker's garbage collector kept ~100 MB of RSS around
// after five 64 MB uploads.
const PIECE = 64 * 1024;
const pool: ArrayBuffer[] = [];

interface Upload {
  ahead: number;
  broken?: Error;
  waiting?: () => void;
  done?: (hex: string) => void;
  fail?: (e: Error) => void;
}

let worker: Worker | undefined;
let nextId = 1;
const uploads = new Map<number, Upload>();

function failAll(e: Error): void {
  for (const u of uploads.values()) {
    u.broken = e; // a new worker would hash only the rest: this upload's digest is lost
    u.fail?.(e);
    u.waiting?.();
  }
  uploads.clear();
  worker = undefined;
}

// Referenced while an upload is under way, so a digest being computed keeps the process
// up; unreferenced otherwise, so a server closing does not wait for an idle worker.
function forget(id: number): void {
  uploads.delete(id);
  if (uploads.size === 0) worker?.unref();
}

function getWorker(): Worker {
  if (worker) return worker;
  const w = new Worker(new URL('./sha-worker.js', import.meta.url));
  w.on('message', (m: { id: number; ack?: number; hex?: string; data?: ArrayBuffer }) => {
    if (m.data && pool.length < MAX_AHEAD / PIECE) pool.push(m.data);
    const u = uploads.get(m.id);
    if (!u) return;
    if (m.ack !== undefined) {
      u.ahead -= m.ack;
      if (u.ahead <= MAX_AHEAD && u.waiting) {
        const go = u.waiting;
        u.waiting = undefined;
        go();
      }
    }
    if (m.hex !== undefined) {
      forget(m.id);
      u.done?.(m.hex);
    }
  });
  w.on('error', (e) => failAll(e));
  w.on('exit', (code) => failAll(new Error(`SHA-256 worker exited with code ${code}`)));
  return (worker = w);
}

export class OffThreadSha256 {
  private readonly id = nextId++;
  private readonly u: Upload = { ahead: 0 };
  private ended = false;

  constructor() {
    getWorker().ref();
    uploads.set(this.id, this.u);
  }

  /** Hands a copy of `chunk` over; resolves at once unless too much is still unhashed. */
  update(chunk: Buffer): Promise<void> | undefined {
    if (this.u.broken) return undefined; // digest() reports it
    const w = getWorker();
    for (let off = 0; off < chunk.length; off += PIECE) {
      const len = Math.min(PIECE, chunk.length - off);
      const data = pool.pop() ?? new ArrayBuffer(PIECE);
      new Uint8Array(data).set(chunk.subarray(off, off + len));
      this.u.ahead += len;
      w.postMessage({ id: this.id, data, len }, [data]);
    }
    if (this.u.ahead <= MAX_AHEAD) return undefined;
    return new Promise((r) => (this.u.waiting = r));
  }

  digest(): Promise<string> {
    this.ended = true;
    return new Promise((resolve, reject) => {
      if (this.u.broken) return reject(this.u.broken);
      this.u.done = resolve;
      this.u.fail = reject;
      getWorker().postMessage({ id: this.id, end: true });
    });
  }

  /** Forgets an upload that failed before digest(). */
  drop(): void {
    if (this.ended) return;
    forget(this.id);
    worker?.postMessage({ id: this.id, drop: true });
  }
}
