import fsp from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { compress, CompressStream } from 'zstd-napi';
import { BUILD_ID } from '../../ipc/version.js';
import type { ChannelLogger } from '../log.js';
import { Authorizer, type Access, type AuthResult } from './auth.js';
import type { Backend } from './backend.js';
import { snakeKeys } from '../snake-keys.js';
import { ServeMetrics } from './metrics.js';
import { digestWant, HttpError, receiveBody } from './receive.js';
import { parseRoute, storageKey, type ObjectRoute } from './routes.js';
import { Sha256Worker } from './sha-off-thread.js';

export interface ServeOptions {
  backend: Backend;
  port: number;
  host: string;
  tokens?: Map<string, Access>;
  /** Decides who may read and write instead of `tokens` (a daemon serving its store to LAN peers). */
  authorize?: (req: http.IncomingMessage, write: boolean) => AuthResult;
  allowAnonymousRead?: boolean;
  /**
   * Every request is authorized (as a read) before its path or method is looked at, `/`
   * included: anyone else gets the same bare 401 whatever they ask (a daemon's store to LAN
   * peers). Without it, `/` answers everybody (health checks) and a bad path or method is
   * refused before the token is checked.
   */
  membersOnly?: boolean;
  /** With membersOnly: headers on every answer to a member (a peer's key fingerprint), never on the bare 401. */
  memberHeaders?: Record<string, string>;
  /** Largest single upload, after decompression. */
  maxBlobSize: number;
  tls?: { cert: Buffer; key: Buffer };
  /** Receives one NDJSON line per request. */
  accessLog?: (line: string) => void;
  /** What a GET of an action-cache value sends instead of the value (a daemon's attachments for its LAN peers). */
  acValue?: (value: Buffer, req: http.IncomingMessage) => Promise<Buffer>;
  /** Told of every request answered: who asked (a member's name), the status and the bytes sent. */
  answered?: (who: string | undefined, status: number, bytesOut: number) => void;
  log: ChannelLogger;
  now?: () => number;
  /** GET bodies at least this big are zstd-compressed for clients that accept it. */
  compressMin?: number;
  /** How long close() lets requests under way (uploads) finish before it cuts their connections. */
  drainMs?: number;
}

// The empty blob under both digests: always present, as bazel-remote does.
const EMPTY = new Set([
  'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', // sha256
  'af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262', // blake3
]);

function acceptsZstd(req: http.IncomingMessage): boolean {
  const h = req.headers['accept-encoding'];
  return typeof h === 'string' && /(^|[,\s])zstd(\s*;\s*q=(?!0(\.0*)?\s*($|,))[\d.]+)?\s*($|,)/i.test(h);
}

function counter(onBytes: (n: number) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _e, cb) {
      onBytes(chunk.length);
      cb(null, chunk);
    },
  });
}

// `vrift serve`: the Bazel HTTP cache layout plus opaque keys, over node:http.
export class CacheServer {
  private readonly server: http.Server;
  private readonly auth: Authorizer;
  readonly metrics = new ServeMetrics();
  private readonly sha = new Sha256Worker();
  private readonly now: () => number;
  private readonly startedAt: number;
  private closing: Promise<void> | undefined;
  // What a stop would cut short: the requests being answered (method and path), and the step
  // close() is at.
  private readonly underWay = new Set<{ what: string }>();
  private closeStep: string | undefined;

  private constructor(private readonly o: ServeOptions) {
    this.now = o.now ?? Date.now;
    this.startedAt = this.now();
    this.auth = new Authorizer(o.tokens, !!o.allowAnonymousRead);
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => void this.handle(req, res);
    this.server = o.tls ? https.createServer({ cert: o.tls.cert, key: o.tls.key }, handler) : http.createServer(handler);
    this.server.keepAliveTimeout = 65_000;
    this.server.requestTimeout = 0; // large uploads on slow links; idle sockets are cut by `timeout`
    this.server.timeout = 120_000;
  }

  static async start(o: ServeOptions): Promise<CacheServer> {
    const s = new CacheServer(o);
    await new Promise<void>((resolve, reject) => {
      s.server.once('error', reject);
      s.server.listen(o.port, o.host, () => {
        s.server.off('error', reject);
        resolve();
      });
    });
    o.log.info('serving', { url: s.url, store: o.backend.description, auth: o.tokens ? `${o.tokens.size} tokens` : 'none', maxBlobSize: o.maxBlobSize });
    return s;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  get url(): string {
    const a = this.server.address() as AddressInfo;
    const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
    return `${this.o.tls ? 'https' : 'http'}://${host}:${a.port}`;
  }

  status(): Record<string, unknown> {
    return {
      version: BUILD_ID,
      uptime_s: Math.round((this.now() - this.startedAt) / 1000),
      store: this.o.backend.description,
      ...snakeKeys(this.o.backend.usage()),
      max_blob_size: this.o.maxBlobSize,
      auth: !!this.o.tokens,
      ...this.metrics.summary(),
    };
  }

  /** How long close() lets requests under way finish before it cuts their connections. */
  get drainMs(): number {
    return this.o.drainMs ?? 2000;
  }

  /** What is under way now (what a stop cut short, if one must): requests being answered, and what close() waits for. */
  pending(): { requests: number; under_way: string[]; closing?: string } {
    const all = [...this.underWay];
    return {
      requests: all.length,
      under_way: all.slice(0, 20).map((r) => r.what),
      ...(this.closeStep ? { closing: this.closeStep } : {}),
    };
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closeStep = 'requests under way';
      const closed = new Promise<void>((r) => this.server.close(() => r()));
      // Node (≥ 19) closes idle keep-alive connections in close() itself. Calling
      // closeIdleConnections() again here also cut an upload whose body was still arriving
      // (a client saw "socket hang up" mid-PUT during a drain).
      const force = setTimeout(() => this.server.closeAllConnections(), this.drainMs);
      await closed;
      clearTimeout(force);
      this.closeStep = 'the SHA-256 worker';
      await this.sha.close();
      this.closeStep = 'the store';
      await this.o.backend.close();
      this.closeStep = undefined;
    })();
    return this.closing;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const t0 = this.now();
    const method = req.method ?? '';
    const line: Record<string, unknown> = { method, path: (req.url ?? '').slice(0, 300), ip: req.socket.remoteAddress };
    let bytesIn = 0;
    let bytesOut = 0;
    const mine = { what: `${method} ${String(line.path)}` };
    this.underWay.add(mine);
    res.on('close', () => {
      this.underWay.delete(mine);
      this.metrics.request(method, res.statusCode, bytesIn, bytesOut);
      this.o.answered?.(line.who as string | undefined, res.statusCode, bytesOut);
      if (this.o.accessLog) {
        line.time = new Date(t0).toISOString();
        line.status = res.statusCode;
        line.in = bytesIn;
        line.out = bytesOut;
        line.ms = this.now() - t0;
        if (!res.writableFinished) line.aborted = true;
        try {
          this.o.accessLog(JSON.stringify(line));
        } catch {
          // a broken log sink never stops serving
        }
      }
    });
    try {
      if (this.o.membersOnly && !this.allowed(req, false).ok) throw new HttpError(401, 'authentication required');
      if (this.o.memberHeaders) for (const [k, v] of Object.entries(this.o.memberHeaders)) res.setHeader(k, v);
      const route = parseRoute(req.url ?? '/');
      if (route.t === 'bad') throw new HttpError(400, route.why);
      if (route.t === 'root' || route.t === 'status' || route.t === 'metrics') {
        if (method !== 'GET' && method !== 'HEAD') throw new HttpError(405, 'method not allowed');
        // The numbers and the store's location are for readers; `/` always answers (health
        // checks), without them to anybody else.
        const reader = this.allowed(req, false);
        if (!reader.ok && route.t !== 'root') {
          if (reader.status === 401) res.setHeader('www-authenticate', 'Basic realm="vrift", charset="UTF-8"');
          throw new HttpError(reader.status, 'authentication required');
        }
        return this.info(route.t, method, res, (n) => (bytesOut = n), reader.ok);
      }
      if (method !== 'GET' && method !== 'HEAD' && method !== 'PUT') {
        res.setHeader('allow', 'GET, HEAD, PUT');
        throw new HttpError(405, 'method not allowed');
      }
      const write = method === 'PUT';
      const a = this.allowed(req, write);
      if (!a.ok) {
        if (a.status === 401) res.setHeader('www-authenticate', 'Basic realm="vrift", charset="UTF-8"');
        throw new HttpError(a.status, a.status === 401 ? 'authentication required' : 'this token may only read');
      }
      line.who = a.who;
      if (write) {
        const r = await this.put(route as ObjectRoute, req);
        bytesIn = r;
        res.writeHead(200, { 'content-length': 0 });
        res.end();
      } else {
        await this.get(route as ObjectRoute, method, req, res, (n) => (bytesOut += n));
      }
    } catch (e) {
      const status = e instanceof HttpError ? e.status : 500;
      if (status === 413 && method === 'PUT') {
        this.metrics.rejected++;
        this.metrics.tooLarge++;
      }
      if (status === 500) this.o.log.error('request failed', { method, path: line.path, err: e });
      line.error = (e as Error).message;
      if (res.headersSent) {
        res.destroy();
        return;
      }
      // An unread request body cannot be skipped cheaply: end the connection after answering.
      if (method === 'PUT' && !req.readableEnded) res.setHeader('connection', 'close');
      const body = `${(e as Error).message}\n`;
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) });
      res.end(method === 'HEAD' ? undefined : body);
    }
  }

  private allowed(req: http.IncomingMessage, write: boolean): AuthResult {
    return this.o.authorize ? this.o.authorize(req, write) : this.auth.check(req.headers.authorization, write);
  }

  private async put(route: ObjectRoute, req: http.IncomingMessage): Promise<number> {
    const want = route.t === 'cas' ? digestWant(req) : { blake3: false, sha256: false };
    const got = await receiveBody(req, this.o.backend.tmpDir, this.o.maxBlobSize, want, this.sha);
    try {
      if (route.t === 'cas' && got.blake3 !== route.hash && got.sha256 !== route.hash) {
        this.metrics.rejected++;
        throw new HttpError(400, 'content does not match its digest (BLAKE3 or SHA-256)');
      }
      await this.o.backend.commit(storageKey(route), got.file, got.size);
      this.metrics.stored(got.size);
      return got.wireBytes;
    } catch (e) {
      await fsp.rm(got.file, { force: true });
      if (e instanceof HttpError) throw e;
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOTDIR' || code === 'EISDIR' || code === 'EEXIST') throw new HttpError(409, 'key conflicts with an existing key path');
      throw e;
    }
  }

  private async get(route: ObjectRoute, method: string, req: http.IncomingMessage, res: http.ServerResponse, out: (n: number) => void): Promise<void> {
    if (route.t === 'cas' && EMPTY.has(route.hash)) {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': 0 });
      res.end();
      return;
    }
    const key = storageKey(route);
    if (method === 'HEAD') {
      const size = await this.o.backend.stat(key);
      this.metrics.lookup(size !== undefined);
      res.writeHead(size === undefined ? 404 : 200, { 'content-type': 'application/octet-stream', 'content-length': size ?? 0 });
      res.end();
      return;
    }
    const obj = await this.o.backend.open(key);
    this.metrics.lookup(obj !== undefined);
    if (!obj) {
      res.writeHead(404, { 'content-type': 'text/plain', 'content-length': 10 });
      res.end('not found\n');
      return;
    }
    const headers: http.OutgoingHttpHeaders = { 'content-type': 'application/octet-stream', vary: 'accept-encoding' };
    if (obj.data) {
      const data = route.t === 'ac' && this.o.acValue ? await this.o.acValue(obj.data, req) : obj.data;
      const zstd = acceptsZstd(req) && data.length >= (this.o.compressMin ?? 4096);
      const body = zstd ? compress(data, { compressionLevel: 1 }) : data;
      if (zstd) headers['content-encoding'] = 'zstd';
      headers['content-length'] = body.length;
      res.writeHead(200, headers);
      res.end(body);
      out(body.length);
      return;
    }
    const zstd = acceptsZstd(req) && obj.size >= (this.o.compressMin ?? 4096);
    if (zstd) headers['content-encoding'] = 'zstd';
    else headers['content-length'] = obj.size;
    res.writeHead(200, headers);
    const stages: (Readable | Transform)[] = [obj.body];
    if (zstd) stages.push(new CompressStream({ compressionLevel: 1 }));
    stages.push(counter(out));
    try {
      await pipeline([...stages, res] as unknown as [Readable, ...Transform[], http.ServerResponse]);
    } catch (e) {
      obj.body.destroy();
      res.destroy();
      if ((e as NodeJS.ErrnoException).code !== 'ERR_STREAM_PREMATURE_CLOSE') this.o.log.warn('GET stream failed', { key, err: e });
    }
  }

  private info(what: 'root' | 'status' | 'metrics', method: string, res: http.ServerResponse, out: (n: number) => void, reader: boolean): void {
    let body: string;
    let type: string;
    if (what === 'status') {
      body = JSON.stringify(this.status()) + '\n';
      type = 'application/json';
    } else if (what === 'metrics') {
      body = this.metrics.prometheus(this.o.backend.usage());
      type = 'text/plain; version=0.0.4';
    } else if (!reader) {
      body = '<!doctype html><title>vrift cache</title><h1>vrift cache</h1><p>A token is needed to read it.</p>\n';
      type = 'text/html; charset=utf-8';
    } else {
      const s = this.status();
      body = `<!doctype html><title>vrift cache</title><h1>vrift cache</h1><pre>${Object.entries(s)
        .map(([k, v]) => `${k}: ${String(v).replace(/[<&]/g, (c) => (c === '<' ? '&lt;' : '&amp;'))}`)
        .join(
          '\n',
        )}</pre><p>Bazel layout: <code>/ac/&lt;hex&gt;</code>, <code>/cas/&lt;hex&gt;</code>; <a href="/status">/status</a>, <a href="/metrics">/metrics</a></p>\n`;
      type = 'text/html; charset=utf-8';
    }
    res.writeHead(200, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
    res.end(method === 'HEAD' ? undefined : body);
    out(Buffer.byteLength(body));
  }
}
