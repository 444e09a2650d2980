import { Worker } from 'node:worker_threads';

// SHA-256 is about half as fast as BLAKE3: an upload that must be checked both ways (Bazel
// and ccache don't name their digest function) was bound by SHA-256 on the server's one
// thread. One worker thread per server, shared by its uploads, hashes SHA-256 while the
// main thread receives, writes and hashes BLAKE3. Bytes handed over but not yet hashed are
// bounded per upload (MAX_AHEAD): the receiver waits, so memory stays flat however large the blob.

const MAX_AHEAD = 8 * 2 ** 20;
// Chunks travel in buffers of this size that the worker hands back for reuse: a buffer
// transferred once and left to the worker's garbage collector kept RSS up long after the
// uploads were done.
const PIECE = 64 * 1024;

interface Upload {
  ahead: number;
  broken?: Error;
  waiting?: () => void;
  done?: (hex: string) => void;
  fail?: (e: Error) => void;
}

/** The SHA-256 worker thread of one server (CacheServer): started by the first upload, ended by close(). */
export class Sha256Worker {
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly uploads = new Map<number, Upload>();
  private readonly spare: ArrayBuffer[] = [];
  private closed = false;

  /** One upload's SHA-256, computed on the worker. */
  upload(): OffThreadSha256 {
    const id = this.nextId++;
    const u: Upload = { ahead: 0 };
    if (this.closed) u.broken = new Error('SHA-256 worker closed');
    else {
      this.get().ref();
      this.uploads.set(id, u);
    }
    return new OffThreadSha256(this, id, u);
  }

  /** Ends the worker; uploads still under way fail (their digest() rejects). */
  async close(): Promise<void> {
    this.closed = true;
    const w = this.worker;
    this.failAll(new Error('SHA-256 worker closed'));
    if (w) await w.terminate();
  }

  /** @internal Hands `chunk` over in PIECE buffers, counting what is not hashed yet. */
  send(id: number, u: Upload, chunk: Buffer): void {
    const w = this.get();
    for (let off = 0; off < chunk.length; off += PIECE) {
      const len = Math.min(PIECE, chunk.length - off);
      const data = this.spare.pop() ?? new ArrayBuffer(PIECE);
      new Uint8Array(data).set(chunk.subarray(off, off + len));
      u.ahead += len;
      w.postMessage({ id, data, len }, [data]);
    }
  }

  /** @internal */
  end(id: number): void {
    this.get().postMessage({ id, end: true });
  }

  /** @internal Forgets an upload that failed before its digest. */
  drop(id: number): void {
    this.forget(id);
    this.worker?.postMessage({ id, drop: true });
  }

  private failAll(e: Error): void {
    for (const u of this.uploads.values()) {
      u.broken = e; // a new worker would hash only the rest: this upload's digest is lost
      u.fail?.(e);
      u.waiting?.();
    }
    this.uploads.clear();
    this.worker = undefined;
  }

  // Referenced while an upload is under way, so a digest being computed keeps the process
  // up; unreferenced otherwise, so a server closing does not wait for an idle worker.
  private forget(id: number): void {
    this.uploads.delete(id);
    if (this.uploads.size === 0) this.worker?.unref();
  }

  private get(): Worker {
    if (this.worker) return this.worker;
    if (this.closed) throw new Error('SHA-256 worker closed');
    const w = new Worker(new URL('./sha-worker.js', import.meta.url));
    w.on('message', (m: { id: number; ack?: number; hex?: string; data?: ArrayBuffer }) => {
      if (m.data && this.spare.length < MAX_AHEAD / PIECE) this.spare.push(m.data);
      const u = this.uploads.get(m.id);
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
        this.forget(m.id);
        u.done?.(m.hex);
      }
    });
    w.on('error', (e) => this.failAll(e));
    w.on('exit', (code) => {
      if (this.worker === w) this.failAll(new Error(`SHA-256 worker exited with code ${code}`));
    });
    return (this.worker = w);
  }
}

/** One upload's SHA-256 (Sha256Worker.upload). */
export class OffThreadSha256 {
  private ended = false;

  constructor(
    private readonly w: Sha256Worker,
    private readonly id: number,
    private readonly u: Upload,
  ) {}

  /** Hands a copy of `chunk` over; resolves at once unless too much is still unhashed. */
  update(chunk: Buffer): Promise<void> | undefined {
    if (this.u.broken) return undefined; // digest() reports it
    this.w.send(this.id, this.u, chunk);
    if (this.u.ahead <= MAX_AHEAD) return undefined;
    return new Promise((r) => (this.u.waiting = r));
  }

  digest(): Promise<string> {
    this.ended = true;
    return new Promise((resolve, reject) => {
      if (this.u.broken) return reject(this.u.broken);
      this.u.done = resolve;
      this.u.fail = reject;
      this.w.end(this.id);
    });
  }

  /** Forgets an upload that failed before digest(). */
  drop(): void {
    if (this.ended || this.u.broken) return;
    this.w.drop(this.id);
  }
}
