import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { makeS3Client, parseS3Url, s3Key, type S3Location } from '../tiers/s3.js';
import type { Backend } from './backend.js';

function notFound(e: unknown): boolean {
  const name = (e as Error).name;
  return name === 'NoSuchKey' || name === 'NotFound' || (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404;
}

// A bucket shared by any number of `vrift serve` processes: they keep no state of their own,
// so each serves the others' uploads. Eviction is the bucket's job (lifecycle rules).
export class S3Backend implements Backend {
  readonly description: string;
  private constructor(
    private readonly loc: S3Location,
    private readonly client: S3Client,
    readonly tmpDir: string,
  ) {
    this.description = `s3://${loc.bucket}/${loc.prefix}`;
  }

  static async open(url: string, env: NodeJS.ProcessEnv = process.env, client?: S3Client): Promise<S3Backend> {
    const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'vrift-serve-'));
    return new S3Backend(parseS3Url(url), client ?? makeS3Client(env, { connectTimeoutMs: 2000, timeoutMs: 30_000 }), tmp);
  }

  async stat(key: string): Promise<number | undefined> {
    try {
      const r = await this.client.send(new HeadObjectCommand({ Bucket: this.loc.bucket, Key: s3Key(this.loc, key) }));
      return r.ContentLength ?? 0;
    } catch (e) {
      if (notFound(e)) return undefined;
      throw e;
    }
  }

  async open(key: string): Promise<{ size: number; body: Readable } | undefined> {
    try {
      const r = await this.client.send(new GetObjectCommand({ Bucket: this.loc.bucket, Key: s3Key(this.loc, key) }));
      return { size: r.ContentLength ?? 0, body: r.Body as Readable };
    } catch (e) {
      if (notFound(e)) return undefined;
      throw e;
    }
  }

  async commit(key: string, tmpFile: string, size: number): Promise<void> {
    try {
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.loc.bucket,
          Key: s3Key(this.loc, key),
          Body: fs.createReadStream(tmpFile),
          ContentLength: size,
          ContentType: 'application/octet-stream',
        }),
      );
    } finally {
      await fsp.rm(tmpFile, { force: true });
    }
  }

  usage() {
    return { items: -1, bytes: -1, maxSize: 0, evictedItems: 0, evictedBytes: 0 };
  }

  async close(): Promise<void> {
    this.client.destroy();
    await fsp.rm(this.tmpDir, { recursive: true, force: true }).catch(() => {});
  }
}
