import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Transform, type Readable } from 'node:stream';
import { VriftError } from '../../ipc/errors.js';
import { digestHex } from '../hash.js';
import type { ChannelLogger } from '../log.js';
import { checkHex } from '../store/layout.js';
import { blobDigest } from '../store/blob-digest.js';
import { CoolDown } from './cooldown.js';
import { emptyRemoteCounters, type RemoteCounters, skipRemote, verifiedRemoteStream } from './counters.js';
import { exchangeDeadlineMs, PROBE_DIGEST, REMOTE_DEFAULTS, type RemoteOptions, type RemoteTier } from './types.js';

export interface S3Location {
  bucket: string;
  prefix: string;
}

/** `s3://bucket/some/prefix` → bucket and a prefix without slashes at either end. */
export function parseS3Url(url: string): S3Location {
  const m = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/.exec(url);
  if (!m) throw new VriftError('ECONFIG', `not an s3://bucket[/prefix] URL: ${url}`, { fields: { url } });
  return { bucket: m[1], prefix: (m[2] ?? '').replace(/^\/+|\/+$/g, '') };
}

/** Objects live at `<prefix>/ac/<hex>` and `<prefix>/cas/<hex>`, shared with `vrift serve --store s3://`. */
export function s3Key(loc: S3Location, rel: string): string {
  return loc.prefix ? `${loc.prefix}/${rel}` : rel;
}

// The region of the AWS config file's profile (AWS_PROFILE, AWS_CONFIG_FILE), as the SDK finds
// it; us-east-1 when there is none (custom endpoints such as Ceph's do not care). Looked up
// once per client, when its first request asks.
function configRegion(): () => Promise<string> {
  let once: Promise<string> | undefined;
  return () => (once ??= new S3Client({}).config.region().catch(() => 'us-east-1'));
}

// Endpoint, region and credentials come from the usual AWS environment and config files;
// a custom endpoint (AWS_ENDPOINT_URL or VRIFT_S3_ENDPOINT: Ceph RGW, MinIO) gets path-style URLs.
export function makeS3Client(env: NodeJS.ProcessEnv, timeouts: { connectTimeoutMs: number; timeoutMs: number }): S3Client {
  const endpoint = env.VRIFT_S3_ENDPOINT || env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || undefined;
  return new S3Client({
    region: env.AWS_REGION || env.AWS_DEFAULT_REGION || configRegion(),
    ...(endpoint ? { endpoint, forcePathStyle: true } : {}),
    // Keys from the environment we were given (tests, `vrift serve` children); otherwise the
    // SDK's default chain (process env, ~/.aws, instance roles).
    ...(env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY
      ? { credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY, sessionToken: env.AWS_SESSION_TOKEN || undefined } }
      : {}),
    maxAttempts: 1,
    // Checksums only where S3 requires them: older S3-compatible servers (s3rver, Ceph 16)
    // store aws-chunked trailer framing as object bytes.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: { connectionTimeout: timeouts.connectTimeoutMs, requestTimeout: timeouts.timeoutMs },
  });
}

function status(e: unknown): number | undefined {
  return (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}

function isNotFound(e: unknown): boolean {
  const name = (e as Error).name;
  return name === 'NoSuchKey' || name === 'NotFound' || status(e) === 404;
}

function isTimeout(e: unknown): boolean {
  const name = (e as Error).name;
  return (
    name === 'TimeoutError' ||
    name === 'RequestTimeout' ||
    (e instanceof VriftError && e.code === 'ETIMEOUT') ||
    (e as NodeJS.ErrnoException).code === 'ETIMEDOUT'
  );
}

interface Deadline {
  abortSignal: AbortSignal;
  ms: number;
}
// An error after the whole-exchange deadline fired is that deadline (the SDK reports the
// aborted socket as "aborted" / ECONNRESET).
function overdue(d: Deadline, e: unknown): unknown {
  return d.abortSignal.aborted ? new VriftError('ETIMEOUT', `remote exchange took over ${d.ms} ms`, { cause: e }) : e;
}

// S3 directly, with plain Put/Get/Head (no conditional writes: s3rver ignores them).
export class S3Tier implements RemoteTier {
  readonly name = 's3';
  readonly url: string;
  private readonly loc: S3Location;
  private readonly client: S3Client;
  private readonly cool: CoolDown;
  private readonly c = emptyRemoteCounters();
  private readonly log: ChannelLogger;
  private readonly maxBody: number;
  private readonly timeoutMs: number;
  private closed = false;

  constructor(url: string, opts: RemoteOptions & { log: ChannelLogger; env?: NodeJS.ProcessEnv; client?: S3Client }) {
    this.loc = parseS3Url(url);
    this.url = url;
    this.log = opts.log;
    const o = { ...REMOTE_DEFAULTS, ...Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) };
    this.client = opts.client ?? makeS3Client(opts.env ?? process.env, o);
    this.cool = new CoolDown(o.coolDownMs, opts.now ?? Date.now, undefined, () => this.probe());
    this.maxBody = o.maxBodyBytes;
    this.timeoutMs = o.timeoutMs;
  }

  // The SDK's timeouts are per socket (connect, idle); this bounds a whole exchange.
  private deadline(bytes = 0): Deadline {
    const ms = exchangeDeadlineMs(this.timeoutMs, bytes);
    return { abortSignal: AbortSignal.timeout(ms), ms };
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
    this.fail(`ac/${key}`, e);
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

  async getBlob(digest: string): Promise<Buffer | undefined> {
    const body = await this.get(`cas/${checkHex('digest', digest)}`);
    if (!body) return undefined;
    if (digestHex(body) !== digest) {
      this.c.integrity++;
      this.fail(`cas/${digest}`, new VriftError('EINTEGRITY', 'remote blob does not match its digest', { fields: { digest } }));
      return undefined;
    }
    this.c.hits++;
    return body;
  }

  async getEntry(key: string): Promise<Buffer | undefined> {
    const body = await this.get(`ac/${checkHex('key', key)}`);
    if (body) this.c.hits++;
    return body;
  }

  async hasBlob(digest: string): Promise<boolean> {
    const rel = `cas/${checkHex('digest', digest)}`;
    if (this.skip()) return false;
    const d = this.deadline();
    try {
      await this.client.send(new HeadObjectCommand({ Bucket: this.loc.bucket, Key: s3Key(this.loc, rel) }), { abortSignal: d.abortSignal });
      this.cool.ok();
      return true;
    } catch (e) {
      if (!isNotFound(e)) this.fail(rel, overdue(d, e));
      else this.cool.ok();
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
    let body: Readable;
    let n = 0;
    const d = this.deadline(size);
    try {
      const r = await this.client.send(new GetObjectCommand({ Bucket: this.loc.bucket, Key: s3Key(this.loc, rel) }), { abortSignal: d.abortSignal });
      const declared = r.ContentLength;
      if (declared !== undefined && declared > this.maxBody) {
        (r.Body as Readable | undefined)?.destroy();
        throw new VriftError('ESTORE', `remote object too large (${declared} bytes)`);
      }
      const max = this.maxBody;
      const count = new Transform({
        transform(c: Buffer, _e, cb) {
          n += c.length;
          cb(n > max ? new VriftError('ESTORE', 'remote object too large') : null, c);
        },
        flush(cb) {
          cb(declared !== undefined && n !== declared ? new VriftError('ESTORE', `truncated object: ${n} of ${declared} bytes`) : null);
        },
      });
      const raw = r.Body as Readable;
      raw.on('error', (e) => count.destroy(overdue(d, e) as Error));
      body = raw.pipe(count);
      this.cool.ok();
    } catch (e) {
      return this.missOrFail(rel, overdue(d, e));
    }
    return verifiedRemoteStream(
      body,
      digest,
      { size, limit: this.maxBody },
      () => {
        this.c.hits++;
        this.c.bytes_down += n;
      },
      (e) => {
        if (e instanceof VriftError && e.code === 'EINTEGRITY') this.c.integrity++;
        this.fail(rel, e);
      },
    );
  }

  async putBlobStream(digest: string, size: number, open: () => Promise<Readable>): Promise<void> {
    const rel = `cas/${checkHex('digest', digest)}`;
    if (this.skip()) throw new VriftError('ETIMEOUT', 'remote is cooling down after a failure', { fields: { url: this.url } });
    const d = this.deadline(size);
    try {
      const src = await open();
      await this.client.send(
        new PutObjectCommand({ Bucket: this.loc.bucket, Key: s3Key(this.loc, rel), Body: src, ContentLength: size, ContentType: 'application/octet-stream' }),
        { abortSignal: d.abortSignal },
      );
      this.c.uploads++;
      this.c.bytes_up += size;
      this.cool.ok();
    } catch (e) {
      const err = overdue(d, e);
      this.fail(rel, err);
      throw err;
    }
  }

  close(): Promise<void> {
    this.closed = true;
    this.client.destroy();
    return Promise.resolve();
  }

  // After a cool-down: any answer from the bucket (a 404 included) brings the tier back.
  private async probe(): Promise<boolean> {
    const d = this.deadline();
    try {
      await this.client.send(new HeadObjectCommand({ Bucket: this.loc.bucket, Key: s3Key(this.loc, `cas/${PROBE_DIGEST}`) }), { abortSignal: d.abortSignal });
      return true;
    } catch (e) {
      if (isNotFound(e)) return true;
      if (isTimeout(overdue(d, e))) this.c.timeouts++;
      else this.c.errors++;
      return false;
    }
  }

  private skip(): boolean {
    return skipRemote(this.closed, this.cool, this.c);
  }

  private async get(rel: string): Promise<Buffer | undefined> {
    if (this.skip()) return undefined;
    const d = this.deadline();
    try {
      const r = await this.client.send(new GetObjectCommand({ Bucket: this.loc.bucket, Key: s3Key(this.loc, rel) }), { abortSignal: d.abortSignal });
      if (r.ContentLength !== undefined && r.ContentLength > this.maxBody) {
        (r.Body as Readable | undefined)?.destroy(); // frees the connection
        throw new VriftError('ESTORE', `remote object too large (${r.ContentLength} bytes)`);
      }
      const body = Buffer.from(await r.Body!.transformToByteArray());
      if (r.ContentLength !== undefined && body.length !== r.ContentLength)
        throw new VriftError('ESTORE', `truncated object: ${body.length} of ${r.ContentLength} bytes`);
      this.c.bytes_down += body.length;
      this.cool.ok();
      return body;
    } catch (e) {
      return this.missOrFail(rel, overdue(d, e));
    }
  }

  private async put(rel: string, data: Buffer): Promise<void> {
    if (this.skip()) throw new VriftError('ETIMEOUT', 'remote is cooling down after a failure', { fields: { url: this.url } });
    const d = this.deadline(data.length);
    try {
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.loc.bucket,
          Key: s3Key(this.loc, rel),
          Body: data,
          ContentLength: data.length,
          ContentType: 'application/octet-stream',
        }),
        { abortSignal: d.abortSignal },
      );
      this.c.uploads++;
      this.c.bytes_up += data.length;
      this.cool.ok();
    } catch (e) {
      const err = overdue(d, e);
      this.fail(rel, err);
      throw err;
    }
  }

  // A 404 is an answer (a miss); anything else is a failure that starts a cool-down.
  private missOrFail(rel: string, e: unknown): undefined {
    if (isNotFound(e)) {
      this.cool.ok();
      this.c.misses++;
    } else this.fail(rel, e);
    return undefined;
  }

  private fail(rel: string, e: unknown): void {
    if (isTimeout(e)) this.c.timeouts++;
    else this.c.errors++;
    const first = !this.cool.active;
    this.cool.trip(`${rel}: ${(e as Error).message}`);
    if (first) this.log.warn('remote failed, cooling down', { path: rel, url: this.url, err: e });
  }
}
