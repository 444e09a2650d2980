import http from 'node:http';
import https from 'node:https';
import { Transform, type Readable } from 'node:stream';
import { DecompressStream } from 'zstd-napi';
import { VriftError } from '../../ipc/errors.js';
import { digestHex } from '../hash.js';
import type { ChannelLogger } from '../log.js';
import { checkHex } from '../store/layout.js';
import { blobDigest } from '../store/blob-digest.js';
import { CoolDown } from './cooldown.js';
import { emptyRemoteCounters, type RemoteCounters, skipRemote, verifiedRemoteStream } from './counters.js';
import { exchangeDeadlineMs, PROBE_DIGEST, REMOTE_DEFAULTS, type RemoteOptions, type RemoteTier } from './types.js';

interface Reply {
  status: number;
  body: Buffer;
  headers: http.IncomingHttpHeaders;
}

export interface HttpTierOptions extends RemoteOptions {
  log: ChannelLogger;
  /**
   * How fast the server is taken to store what it was sent before it answers (a slow bucket
   * behind it): the idle deadline after an upload's last byte grows by size / this. Default
   * 20 MB/s: a 64 MB upload gets 3.4 s more for its answer.
   */
  storeBytesPerMs?: number;
}

class TimeoutError extends VriftError {
  constructor(what: string, ms: number) {
    super('ETIMEOUT', `remote ${what} timed out after ${ms} ms`, { fields: { what, ms } });
  }
}

function isTimeout(e: unknown): boolean {
  return e instanceof VriftError && e.code === 'ETIMEOUT';
}

// The Bazel HTTP cache layout (`<base>/ac/<hex>`, `<base>/cas/<hex>`), as served by
// `vrift serve`, bazel-remote and nginx with WebDAV PUT. Everything fetched is verified
// before it is returned: CAS bodies against their BLAKE3 digest, bodies against their
// Content-Length; entries are opaque and checked by their decoder.
export class HttpTier implements RemoteTier {
  readonly name = 'http';
  readonly url: string;
  private readonly base: URL;
  private readonly basePath: string;
  private readonly mod: typeof http | typeof https;
  private readonly agent: http.Agent;
  private readonly auth: string | undefined;
  private readonly o: Required<Omit<RemoteOptions, 'token' | 'sign' | 'onFailure'>>;
  private readonly sign: RemoteOptions['sign'];
  private readonly onFailure: RemoteOptions['onFailure'];
  private readonly cool: CoolDown;
  private readonly c = emptyRemoteCounters();
  private readonly log: ChannelLogger;
  private readonly storeBytesPerMs: number;
  private closed = false;

  constructor(url: string, opts: HttpTierOptions) {
    const u = new URL(url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new VriftError('ECONFIG', `remote_url: unsupported scheme ${u.protocol}`, { fields: { url } });
    this.o = { ...REMOTE_DEFAULTS, now: Date.now, ...Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) } as Required<
      Omit<RemoteOptions, 'token' | 'sign' | 'onFailure'>
    >;
    this.sign = opts.sign;
    this.onFailure = opts.onFailure;
    this.log = opts.log;
    this.storeBytesPerMs = opts.storeBytesPerMs ?? 20_000;
    if (u.username) this.auth = 'Basic ' + Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64');
    else if (opts.token) this.auth = `Bearer ${opts.token}`;
    u.username = '';
    u.password = '';
    this.basePath = u.pathname.replace(/\/+$/, '');
    this.base = u;
    this.url = `${u.origin}${this.basePath}`;
    this.mod = u.protocol === 'https:' ? https : http;
    this.agent = new this.mod.Agent({ keepAlive: true, maxSockets: 16, keepAliveMsecs: 1000 });
    this.cool = new CoolDown(this.o.coolDownMs, this.o.now, undefined, () => this.probe());
  }

  counters(): RemoteCounters {
    return { ...this.c };
  }

  coolingDown(): boolean {
    return this.cool.active;
  }

  health(): Record<string, unknown> {
    const last = this.cool.lastFailure();
    return { url: this.url, ...this.cool.describe(), ...(last ? { last_error: last.reason, last_error_at: new Date(last.at).toISOString() } : {}) };
  }

  rejected(key: string, e: Error): void {
    this.c.hits--;
    this.c.integrity++;
    this.fail('GET', `ac/${key}`, e);
  }

  probed(): Promise<void> {
    return this.cool.settled();
  }

  askNow(): Promise<boolean> {
    return this.closed ? Promise.resolve(false) : this.cool.askNow();
  }

  async check(): Promise<void> {
    if (!this.closed && (await this.cool.check('no answer to the check at start'))) this.log.warn('remote does not answer, cooling down', { url: this.url });
  }

  // ---- the cache contract (store/contract.ts) ----

  async getBlob(digest: string): Promise<Buffer | undefined> {
    checkHex('digest', digest);
    const body = await this.fetch(`cas/${digest}`);
    if (!body) return undefined;
    if (digestHex(body) !== digest) {
      this.c.integrity++;
      this.fail('GET', `cas/${digest}`, new VriftError('EINTEGRITY', 'remote blob does not match its digest', { fields: { digest } }));
      return undefined;
    }
    this.c.hits++;
    return body;
  }

  async getEntry(key: string): Promise<Buffer | undefined> {
    checkHex('key', key);
    const body = await this.fetch(`ac/${key}`);
    if (body) this.c.hits++;
    return body;
  }

  async hasBlob(digest: string): Promise<boolean> {
    checkHex('digest', digest);
    if (this.skip()) return false;
    try {
      const r = await this.send('HEAD', `cas/${digest}`);
      if (r.status === 200) return true;
      if (r.status === 404) return false;
      throw this.statusError('HEAD', r.status);
    } catch (e) {
      this.fail('HEAD', `cas/${digest}`, e);
      return false;
    }
  }

  async putBlob(data: Buffer, digest?: string): Promise<string> {
    const actual = blobDigest(data, digest);
    await this.put(`cas/${actual}`, data);
    return actual;
  }

  async putEntry(key: string, value: Buffer): Promise<void> {
    await this.put(`ac/${checkHex('key', key)}`, value);
  }

  async getBlobStream(digest: string, size?: number): Promise<Readable | undefined> {
    const rel = `cas/${checkHex('digest', digest)}`;
    if (this.skip()) return undefined;
    let res: http.IncomingMessage;
    let wire: Transform;
    try {
      let r: { req: http.ClientRequest; res: http.IncomingMessage };
      try {
        r = await this.open('GET', rel, undefined, size);
      } catch (e) {
        // A kept-alive socket the server already closed: one retry on a fresh one.
        if (!(e as { reused?: boolean }).reused || isTimeout(e)) throw e;
        r = await this.open('GET', rel, undefined, size);
      }
      res = r.res;
      if (res.statusCode === 404) {
        res.resume();
        this.c.misses++;
        return undefined;
      }
      if (res.statusCode !== 200) {
        res.resume();
        throw this.statusError('GET', res.statusCode ?? 0);
      }
      wire = this.checkBody(res, r.req);
    } catch (e) {
      this.fail('GET', rel, e);
      return undefined;
    }
    const enc = (res.headers['content-encoding'] ?? 'identity').toLowerCase();
    const body = enc === 'zstd' ? wire.pipe(new DecompressStream()) : wire;
    if (body !== wire) wire.on('error', (e) => body.destroy(e));
    return verifiedRemoteStream(
      body,
      digest,
      { size, limit: this.o.maxBodyBytes },
      () => {
        this.c.hits++;
        this.c.bytes_down += (wire as Transform & { n: number }).n;
      },
      (e) => {
        if (e instanceof VriftError && e.code === 'EINTEGRITY') this.c.integrity++;
        this.fail('GET', rel, e);
      },
    );
  }

  async putBlobStream(digest: string, size: number, open: () => Promise<Readable>): Promise<void> {
    const rel = `cas/${checkHex('digest', digest)}`;
    if (this.skip()) throw new VriftError('ETIMEOUT', 'remote is cooling down after a failure', { fields: { url: this.url } });
    const once = async () => {
      const src = await open();
      const { res } = await this.open('PUT', rel, { stream: src, size });
      res.resume();
      await new Promise<void>((r, j) => {
        res.on('end', r);
        res.on('error', j);
      });
      if ((res.statusCode ?? 0) < 200 || (res.statusCode ?? 0) > 299) throw this.statusError('PUT', res.statusCode ?? 0);
    };
    try {
      try {
        await once();
      } catch (e) {
        if (!(e as { reused?: boolean }).reused || isTimeout(e)) throw e;
        await once();
      }
      this.cool.ok();
      this.c.uploads++;
      this.c.bytes_up += size;
    } catch (e) {
      this.fail('PUT', rel, e);
      throw e;
    }
  }

  close(): Promise<void> {
    this.closed = true;
    this.agent.destroy();
    return Promise.resolve();
  }

  // ---- internals ----

  // After a cool-down: is anybody there? Any answer below 500 says yes (send() then resets
  // the cool-down); failures are counted here, and CoolDown starts the next period.
  private async probe(): Promise<boolean> {
    try {
      if ((await this.send('HEAD', `cas/${PROBE_DIGEST}`)).status < 500) return true;
      this.c.errors++;
      return false;
    } catch (e) {
      if (isTimeout(e)) this.c.timeouts++;
      else this.c.errors++;
      return false;
    }
  }

  private skip(): boolean {
    return skipRemote(this.closed, this.cool, this.c);
  }

  private async fetch(rel: string): Promise<Buffer | undefined> {
    if (this.skip()) return undefined;
    try {
      const r = await this.send('GET', rel);
      if (r.status === 404) {
        this.c.misses++;
        return undefined;
      }
      if (r.status !== 200) throw this.statusError('GET', r.status);
      return r.body;
    } catch (e) {
      this.fail('GET', rel, e);
      return undefined;
    }
  }

  private async put(rel: string, data: Buffer): Promise<void> {
    if (this.skip()) throw new VriftError('ETIMEOUT', 'remote is cooling down after a failure', { fields: { url: this.url } });
    try {
      const r = await this.send('PUT', rel, data);
      if (r.status < 200 || r.status > 299) throw this.statusError('PUT', r.status);
      this.c.uploads++;
      this.c.bytes_up += data.length;
    } catch (e) {
      this.fail('PUT', rel, e);
      throw e;
    }
  }

  private statusError(method: string, status: number): VriftError {
    return new VriftError('ESTORE', `remote answered ${method} with HTTP ${status}`, { fields: { status, url: this.url } });
  }

  private fail(method: string, rel: string, e: unknown): void {
    if (isTimeout(e)) this.c.timeouts++;
    else this.c.errors++;
    if (this.onFailure) return this.onFailure(e);
    // Too large for this server: that object's answer, not a server in trouble.
    if (e instanceof VriftError && e.fields.status === 413) return;
    const first = !this.cool.active;
    this.cool.trip(`${method} ${rel}: ${(e as Error).message}`);
    if (first) this.log.warn('remote failed, cooling down', { method, path: rel, url: this.url, coolDownMs: this.o.coolDownMs, err: e });
  }

  private async send(method: 'GET' | 'HEAD' | 'PUT', rel: string, body?: Buffer): Promise<Reply> {
    let r: Reply;
    try {
      r = await this.sendOnce(method, rel, body);
    } catch (e) {
      // A kept-alive socket the server already closed: one retry on a fresh one.
      if (!(e as { reused?: boolean }).reused || isTimeout(e)) throw e;
      r = await this.sendOnce(method, rel, body);
    }
    if (r.status < 500) this.cool.ok();
    return r;
  }

  // Connect deadline (while the socket connects), idle deadline (no byte for timeoutMs) and a
  // deadline for the whole exchange (ten idle deadlines, plus 1 s per 2 MB of `bytes`): a
  // server that trickles a byte now and then is a timeout too, not a request held forever.
  // Each destroys the request with a TimeoutError. The returned handle clears the first.
  private armTimeouts(req: http.ClientRequest, method: string, bytes = 0): { clear(): void } {
    const { connectTimeoutMs, timeoutMs } = this.o;
    const totalMs = exchangeDeadlineMs(timeoutMs, bytes);
    const total = setTimeout(() => req.destroy(new TimeoutError(`${method} (all of it)`, totalMs)), totalMs);
    total.unref();
    req.once('close', () => clearTimeout(total));
    let timer: NodeJS.Timeout | undefined;
    req.on('socket', (s) => {
      if (!s.connecting) return;
      timer = setTimeout(() => req.destroy(new TimeoutError('connect', connectTimeoutMs)), connectTimeoutMs);
      s.once('connect', () => clearTimeout(timer));
      s.once('secureConnect', () => clearTimeout(timer));
    });
    req.setTimeout(timeoutMs, () => req.destroy(new TimeoutError(`${method} (no data)`, timeoutMs)));
    return { clear: () => clearTimeout(timer) };
  }

  // After an upload's last byte the server still stores it (`vrift serve --store s3://` puts it
  // in the bucket before it answers): the idle deadline then grows with the size, at this rate.
  private answerAfterUpload(req: http.ClientRequest, size: number): void {
    req.once('finish', () => req.setTimeout(this.o.timeoutMs + Math.ceil(size / this.storeBytesPerMs)));
  }

  // A request to the remote with the headers every request carries; `bodySize` when it sends a body.
  private request(
    method: 'GET' | 'HEAD' | 'PUT',
    rel: string,
    bodySize: number | undefined,
    onResponse: (res: http.IncomingMessage) => void,
  ): http.ClientRequest {
    const headers: http.OutgoingHttpHeaders = { 'user-agent': 'vrift', 'accept-encoding': 'zstd' };
    if (this.auth) headers.authorization = this.auth;
    if (this.sign) Object.assign(headers, this.sign(method, `${this.basePath}/${rel}`));
    if (bodySize !== undefined) {
      headers['content-type'] = 'application/octet-stream';
      headers['content-length'] = bodySize;
      if (rel.startsWith('cas/')) headers['x-digest-function'] = 'blake3';
    }
    const options = {
      protocol: this.base.protocol,
      hostname: this.base.hostname,
      port: this.base.port,
      path: `${this.basePath}/${rel}`,
      method,
      headers,
      agent: this.agent,
    };
    return this.mod.request(options, onResponse);
  }

  // A request whose response (headers only) is handed back; the body is the caller's.
  // Timeouts and a closed connection destroy the request, which errors the response too.
  private open(
    method: 'GET' | 'PUT',
    rel: string,
    body?: { stream: Readable; size: number },
    expectBytes = 0,
  ): Promise<{ req: http.ClientRequest; res: http.IncomingMessage }> {
    return new Promise((resolve, reject) => {
      let connectTimer: { clear(): void } | undefined;
      let settled = false;
      const fail = (e: Error) => {
        connectTimer?.clear();
        if (settled) return;
        settled = true;
        (e as { reused?: boolean }).reused = req.reusedSocket;
        body?.stream.destroy();
        reject(e);
      };
      const req = this.request(method, rel, body?.size, (res) => {
        connectTimer?.clear();
        settled = true;
        if ((res.statusCode ?? 0) < 500) this.cool.ok();
        resolve({ req, res });
      });
      connectTimer = this.armTimeouts(req, method, body?.size ?? expectBytes);
      req.on('error', fail);
      req.on('close', () => {
        if (!settled) fail(new VriftError('ESTORE', 'remote connection closed before an answer'));
      });
      if (!body) return void req.end();
      this.answerAfterUpload(req, body.size);
      body.stream.on('error', (e) => req.destroy(e));
      body.stream.pipe(req);
    });
  }

  // The raw body of a 200, with its length checked against Content-Length and the size limit;
  // errors (truncation, a dropped connection, a timeout) fail the returned stream.
  private checkBody(res: http.IncomingMessage, req: http.ClientRequest): Transform {
    const declared = res.headers['content-length'] === undefined ? undefined : Number(res.headers['content-length']);
    const max = this.o.maxBodyBytes;
    if (declared !== undefined && !(declared <= max)) {
      req.destroy();
      throw new VriftError('ESTORE', `remote body too large (${declared} bytes)`);
    }
    const enc = (res.headers['content-encoding'] ?? 'identity').toLowerCase();
    if (enc !== 'identity' && enc !== 'zstd') {
      req.destroy();
      throw new VriftError('ESTORE', `remote sent unsupported content-encoding ${enc}`);
    }
    const t = new Transform({
      transform(c: Buffer, _e, cb) {
        (t as Transform & { n: number }).n += c.length;
        if ((t as Transform & { n: number }).n > max) return cb(new VriftError('ESTORE', 'remote body too large'));
        cb(null, c);
      },
      flush(cb) {
        const n = (t as Transform & { n: number }).n;
        cb(declared !== undefined && n !== declared ? new VriftError('ESTORE', `truncated body: ${n} of ${declared} bytes`) : undefined);
      },
    });
    (t as Transform & { n: number }).n = 0;
    const abort = (e?: Error) => t.destroy(e ?? new VriftError('ESTORE', 'remote closed the connection mid-body'));
    res.on('aborted', () => abort());
    res.on('error', abort);
    req.on('error', abort);
    res.pipe(t);
    return t;
  }

  private sendOnce(method: 'GET' | 'HEAD' | 'PUT', rel: string, body?: Buffer): Promise<Reply> {
    const { maxBodyBytes } = this.o;
    return new Promise<Reply>((resolve, reject) => {
      let connectTimer: { clear(): void } | undefined;
      let settled = false;
      let gotResponse = false;
      const done = (e: Error | undefined, r?: Reply) => {
        connectTimer?.clear();
        if (settled) return;
        settled = true;
        if (e) {
          (e as { reused?: boolean }).reused = req.reusedSocket;
          reject(e);
        } else resolve(r!);
      };
      const req = this.request(method, rel, body?.length, (res) => {
        gotResponse = true;
        const status = res.statusCode ?? 0;
        if (method === 'HEAD' || status !== 200) {
          res.resume();
          res.on('end', () => done(undefined, { status, body: Buffer.alloc(0), headers: res.headers }));
          res.on('error', (e) => done(e));
          return;
        }
        const declared = res.headers['content-length'] === undefined ? undefined : Number(res.headers['content-length']);
        if (declared !== undefined && !(declared <= maxBodyBytes)) {
          req.destroy(new VriftError('ESTORE', `remote body too large (${declared} bytes)`));
          return;
        }
        const enc = (res.headers['content-encoding'] ?? 'identity').toLowerCase();
        if (enc !== 'identity' && enc !== 'zstd') {
          req.destroy(new VriftError('ESTORE', `remote sent unsupported content-encoding ${enc}`));
          return;
        }
        const chunks: Buffer[] = [];
        let wire = 0;
        let n = 0;
        const src = enc === 'zstd' ? res.pipe(new DecompressStream()) : res;
        res.on('data', (d: Buffer) => void (wire += d.length));
        src.on('data', (d: Buffer) => {
          n += d.length;
          if (n > maxBodyBytes) req.destroy(new VriftError('ESTORE', 'remote body too large'));
          else chunks.push(d);
        });
        src.on('end', () => {
          if (declared !== undefined && wire !== declared) return done(new VriftError('ESTORE', `truncated body: ${wire} of ${declared} bytes`));
          this.c.bytes_down += wire;
          done(undefined, { status, body: Buffer.concat(chunks, n), headers: res.headers });
        });
        src.on('error', (e) => done(e));
        res.on('aborted', () => done(new VriftError('ESTORE', 'remote closed the connection mid-body')));
        res.on('error', (e) => done(e));
      });
      connectTimer = this.armTimeouts(req, method, body?.length ?? 0);
      if (body) this.answerAfterUpload(req, body.length);
      req.on('error', (e) => done(e));
      req.on('close', () => {
        if (!gotResponse) done(new VriftError('ESTORE', 'remote connection closed before an answer'));
      });
      req.end(body);
    });
  }
}
