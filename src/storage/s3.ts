/**
 * S3Storage: any S3-compatible object store (AWS, Ceph RGW, OpenStack Swift's s3api, ...)
 * through @aws-sdk/client-s3, configured for the lowest common denominator:
 * path-style URLs, no aws-chunked bodies (Content-Length known, checksums only when
 * required), one SDK attempt (RetryStorage retries), conditional create detected by a
 * probe rather than assumed.
 */
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import {
  type BucketLocationConstraint,
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  type GetObjectCommandOutput,
  GetObjectLockConfigurationCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { StorageError } from './errors.js';
import { clampRange, isValidRange } from './types.js';
import type { ByteRange, ObjectInfo, PutOptions, Storage } from './types.js';

const MiB = 1024 * 1024;

export interface S3StorageOptions {
  /** e.g. http://127.0.0.1:8080 or https://s3.example.org */
  endpoint: string;
  bucket: string;
  /** Every object is stored under `prefix/` (no leading or trailing slash). */
  prefix?: string;
  /** Default: AWS_REGION, else AWS_DEFAULT_REGION, else us-east-1. */
  region?: string;
  /** Default: the SDK's credential chain (env, shared files, ...). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Objects above this size are uploaded in parts (default 64 MiB). */
  multipartThreshold?: number;
  /** Part size of multipart uploads (default 16 MiB, at least 5 MiB for S3). */
  partSize?: number;
  /** MaxKeys of each ListObjectsV2 page (default 1000). */
  pageSize?: number;
  connectionTimeoutMs?: number; // default 10 s
  requestTimeoutMs?: number; // default 120 s: until the answer's headers, and max idle time
  maxSockets?: number; // default 16
  /** Extra CA certificates (PEM) to trust for https endpoints, e.g. a private CA. */
  caCerts?: Buffer;
  /** Skip TLS certificate verification (explicit opt-in only). */
  insecureTls?: boolean;
  /** S3 Object Lock retention set on every object written except locks (the bucket must have Object Lock). */
  objectLock?: ObjectLockSetting;
}

export interface ObjectLockSetting {
  mode: 'GOVERNANCE' | 'COMPLIANCE';
  days: number;
}

export class S3Storage implements Storage {
  readonly location: string;
  readonly endpoint: string;
  readonly bucket: string;
  readonly prefix: string;
  readonly region: string;
  private readonly client: S3Client;
  private readonly keyPrefix: string;
  private readonly threshold: number;
  private readonly partSize: number;
  private readonly pageSize: number;
  private conditional: boolean | undefined; // undefined until probed
  /** The conditional-put probe under way (reset when it fails, so a retry probes again). */
  private probing: Promise<boolean> | null = null;
  /** What ready() waits for: the probe started by openStorage, if any. */
  private known: Promise<void> = Promise.resolve();
  private bucketSeen = false;
  readonly objectLock: ObjectLockSetting | undefined;

  constructor(opts: S3StorageOptions) {
    this.endpoint = opts.endpoint.replace(/\/+$/, '');
    this.bucket = opts.bucket;
    this.prefix = (opts.prefix ?? '').replace(/^\/+|\/+$/g, '');
    this.keyPrefix = this.prefix === '' ? '' : `${this.prefix}/`;
    this.region = opts.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1';
    this.location = `s3:${this.endpoint}/${this.bucket}${this.prefix === '' ? '' : `/${this.prefix}`}`;
    this.threshold = opts.multipartThreshold ?? 64 * MiB;
    this.partSize = opts.partSize ?? 16 * MiB;
    this.pageSize = opts.pageSize ?? 1000;
    this.objectLock = opts.objectLock;
    const requestTimeout = opts.requestTimeoutMs ?? 120_000;
    const agent = { keepAlive: true, maxSockets: opts.maxSockets ?? 16 };
    // TLS verification is on unless explicitly turned off; a private CA is added to the usual ones.
    // Agent instances, not options: given options, the SDK sends every body above 1 MB (those
    // with Expect: 100-continue) through a fresh agent of its own — without the CA or the
    // insecure setting, and a new connection per pack.
    const httpsAgent = new https.Agent({
      ...agent,
      // one secure context with the CAs, made once: given as `ca`, the ≈ 140 system roots were
      // joined into the agent's pool key on every request and parsed again for every connection
      ...(opts.caCerts ? { secureContext: tls.createSecureContext({ ca: [...tls.rootCertificates, opts.caCerts.toString('utf8')] }) } : {}),
      ...(opts.insecureTls ? { rejectUnauthorized: false } : {}),
    });
    this.client = new S3Client({
      endpoint: this.endpoint,
      region: this.region,
      forcePathStyle: true,
      ...(opts.credentials ? { credentials: opts.credentials } : {}),
      // Swift's s3api (and many others) reject aws-chunked bodies and trailing checksums
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: 1,
      requestHandler: {
        connectionTimeout: opts.connectionTimeoutMs ?? 10_000,
        requestTimeout,
        throwOnRequestTimeout: true,
        socketTimeout: requestTimeout,
        httpAgent: new http.Agent(agent),
        httpsAgent,
      },
    });
  }

  /** Listings of S3-compatible stores are not assumed to show every finished put at once. */
  readonly consistentListing = false;

  /** False until probeConditionalPut() has found If-None-Match: * to be enforced. */
  get supportsConditionalPut(): boolean {
    return this.conditional ?? false;
  }

  /**
   * Detects whether the store enforces `If-None-Match: *` on PutObject: creates a probe
   * object under locks/ twice (the second must fail with 412), then deletes it.
   * The answer is cached. Stores that ignore the header (second put succeeds) or refuse
   * it (501 NotImplemented, 400) count as unsupported.
   */
  probeConditionalPut(): Promise<boolean> {
    if (this.conditional !== undefined) return Promise.resolve(this.conditional);
    this.probing ??= this.runConditionalPutProbe().catch((e: unknown) => {
      this.probing = null;
      throw e;
    });
    return this.probing;
  }

  /**
   * Lets {@link ready} wait for a probe started without waiting for it (openStorage: the probe's
   * three requests overlap the repository's first reads and the key derivation).
   */
  probeInBackground(probe: Promise<void>): void {
    probe.catch(() => undefined);
    this.known = probe;
  }

  /** Resolves once supportsConditionalPut is settled; rejects with what the probe met. */
  ready(): Promise<void> {
    return this.known;
  }

  private async runConditionalPutProbe(): Promise<boolean> {
    const name = `locks/.probe-${randomBytes(8).toString('hex')}`;
    const body = Buffer.from('lifeboat conditional put probe\n');
    const refused = (e: unknown): boolean =>
      e instanceof StorageError && (e.code === 'unsupported' || e.code === 'invalid');
    let supported: boolean;
    try {
      await this.put(name, body, { ifNoneMatch: true });
    } catch (e) {
      if (!refused(e)) throw e;
      this.conditional = false;
      return false;
    }
    try {
      await this.put(name, body, { ifNoneMatch: true });
      supported = false; // the header was ignored
    } catch (e) {
      if (e instanceof StorageError && e.code === 'already-exists') supported = true;
      else if (refused(e)) supported = false;
      else throw e;
    } finally {
      await this.delete(name).catch(() => undefined);
    }
    this.conditional = supported;
    return supported;
  }

  /**
   * The Object Lock retention of a new object: with `objectLock`, every object but a lock (locks
   * must stay deletable) is kept `days` from now in `mode`. S3 requires a checksum with it:
   * PutObject always sends Content-MD5.
   */
  private retention(name: string): { ObjectLockMode?: 'GOVERNANCE' | 'COMPLIANCE'; ObjectLockRetainUntilDate?: Date } {
    if (!this.objectLock || name.startsWith('locks/')) return {};
    return { ObjectLockMode: this.objectLock.mode, ObjectLockRetainUntilDate: new Date(Date.now() + this.objectLock.days * 86_400_000) };
  }

  /**
   * With `objectLock`: checks that the bucket has Object Lock enabled (GetObjectLockConfiguration),
   * else throws one line saying so. A store that does not implement Object Lock is refused the same
   * way: writing objects it would not protect would give a false sense of safety.
   */
  async probeObjectLock(): Promise<void> {
    if (!this.objectLock) return;
    let enabled: string | undefined;
    try {
      const res = await this.client.send(new GetObjectLockConfigurationCommand({ Bucket: this.bucket }));
      enabled = res.ObjectLockConfiguration?.ObjectLockEnabled;
    } catch (e) {
      const info = s3ErrorInfo(e);
      const err = this.mapped(e, 'get object lock configuration', '');
      if (err.retryable || err.code === 'no-bucket' || err.code === 'access-denied') throw err;
      const tag = [info.code, info.status !== undefined ? `HTTP ${info.status}` : undefined].filter(Boolean).join(', ');
      throw new StorageError('unsupported', `${this.objectLockRefusal()} (${tag || 'no Object Lock configuration'})`, false, { cause: e });
    }
    if (enabled !== 'Enabled') throw new StorageError('unsupported', `${this.objectLockRefusal()} (ObjectLockEnabled: ${enabled ?? 'absent'})`, false);
  }

  private objectLockRefusal(): string {
    return `S3 ${this.endpoint}/${this.bucket}: object_lock is set but this bucket has no S3 Object Lock (or the store does not implement it): use a bucket created with Object Lock enabled, or remove object_lock`;
  }

  /** GetObject (with a Range header when given); null when the range starts past the end (416). */
  private async getObject(name: string, range: string | undefined): Promise<GetObjectCommandOutput | null> {
    try {
      return await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.key(name), ...(range ? { Range: range } : {}) }));
    } catch (e) {
      if (s3ErrorInfo(e).status === 416) return null;
      throw await this.fail(e, 'get', name);
    }
  }

  /** Reads a response's body with `read`; a failure on the way (a reset, a cut body) is transient. */
  private async readBody<T>(name: string, res: GetObjectCommandOutput, read: (body: Readable | undefined) => Promise<T>): Promise<T> {
    const body = res.Body as Readable | undefined;
    try {
      return await read(body);
    } catch (e) {
      body?.destroy();
      throw new StorageError('transient', `${this.location}: reading ${name} failed: ${oneLine(e)}`, true, { cause: e });
    }
  }

  /**
   * A ranged GET whose body goes straight into `buf` (restore's reused read buffers): no
   * collecting of the response's pieces into a fresh buffer the size of the range.
   */
  async getInto(name: string, offset: number, length: number, buf: Uint8Array): Promise<number> {
    const range = { offset, length };
    if (!isValidRange(range) || length > buf.length) {
      throw new StorageError('invalid', `${this.location}: invalid range ${JSON.stringify(range)} for ${name}`, false);
    }
    if (range.length === 0) {
      if ((await this.stat(name)) === null) throw this.notFound(name);
      return 0;
    }
    const res = await this.getObject(name, rangeHeader(range)!);
    if (res === null) return 0;
    // a server that ignored the Range header sends the whole object: its bytes from 0
    const start = res.ContentRange === undefined ? 0 : offset;
    const n = await this.readBody(name, res, (body) => readInto(body, start, offset, buf.subarray(0, range.length)));
    const expected = res.ContentLength === undefined ? undefined : Math.min(range.length, res.ContentLength - (offset - start));
    if (expected !== undefined && n !== expected) {
      throw new StorageError('transient', `${this.location}: short read of ${name}: got ${n} of ${expected} bytes`, true);
    }
    return n;
  }

  async get(name: string, range?: ByteRange): Promise<Buffer> {
    if (range !== undefined && !isValidRange(range)) {
      throw new StorageError('invalid', `${this.location}: invalid range ${JSON.stringify(range)} for ${name}`, false);
    }
    const header = rangeHeader(range);
    if (header === null) {
      // an empty range: no request needed beyond checking that the object exists
      if ((await this.stat(name)) === null) throw this.notFound(name);
      return Buffer.alloc(0);
    }
    const res = await this.getObject(name, header);
    if (res === null) return Buffer.alloc(0);
    const data = await this.readBody(name, res, (body) => readAll(body, res.ContentLength));
    if (res.ContentLength !== undefined && data.length !== res.ContentLength) {
      throw new StorageError(
        'transient',
        `${this.location}: short read of ${name}: got ${data.length} of ${res.ContentLength} bytes`,
        true,
      );
    }
    if (range !== undefined && res.ContentRange === undefined) {
      // the server ignored the Range header and sent the whole object
      const [start, end] = clampRange(data.length, range);
      return data.subarray(start, end);
    }
    return data;
  }

  async put(name: string, data: Buffer, opts: PutOptions = {}): Promise<void> {
    await this.send(name, data.length, () => bodyOf(data), () => createHash('md5').update(data).digest('base64'), opts);
  }

  /** Streams the file in 1 MiB pieces (its MD5 read from it first): a pack is never held in memory. */
  async putFile(name: string, file: string, size: number): Promise<void> {
    await this.send(name, size, () => createReadStream(file, { highWaterMark: BODY_SLICE }), () => md5OfFile(file), {});
  }

  /** One put: `body()` gives a fresh body for it; `md5()` is asked only for a single PutObject. */
  private async send(
    name: string,
    size: number,
    body: () => Buffer | Readable,
    md5: () => string | Promise<string>,
    opts: PutOptions,
  ): Promise<void> {
    const Key = this.key(name);
    const Body = body();
    try {
      if (size > this.threshold) {
        if (opts.ifNoneMatch) {
          throw new StorageError('unsupported', `${this.location}: conditional put of ${name} above the multipart threshold`, false);
        }
        const retention = this.retention(name);
        const upload = new Upload({
          client: this.client,
          // parts of an object under retention need a checksum (CRC32 here; PutObject sends Content-MD5)
          params: { Bucket: this.bucket, Key, Body, ...retention, ...(retention.ObjectLockMode ? { ChecksumAlgorithm: 'CRC32' as const } : {}) },
          partSize: Math.max(5 * MiB, this.partSize),
          queueSize: 4,
          leavePartsOnError: false,
        });
        await upload.done();
      } else {
        // the server checks the bytes it stored against this
        const ContentMD5 = await md5();
        await this.client.send(
          new PutObjectCommand({
            Bucket: this.bucket,
            Key,
            Body,
            ContentLength: size,
            ContentMD5,
            ...(opts.ifNoneMatch ? { IfNoneMatch: '*' } : {}),
            ...this.retention(name),
          }),
        );
      }
      this.bucketSeen = true;
    } catch (e) {
      throw await this.fail(e, 'put', name);
    } finally {
      if (Body instanceof Readable) Body.destroy();
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const full = this.keyPrefix + prefix;
    let token: string | undefined;
    do {
      let res;
      try {
        res = await this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: full,
            MaxKeys: this.pageSize,
            ...(token ? { ContinuationToken: token } : {}),
          }),
        );
      } catch (e) {
        throw await this.fail(e, 'list', prefix);
      }
      this.bucketSeen = true;
      for (const o of res.Contents ?? []) {
        if (o.Key === undefined || !o.Key.startsWith(full)) continue;
        yield { name: o.Key.slice(this.keyPrefix.length), size: o.Size ?? 0, mtimeMs: o.LastModified?.getTime() ?? 0 };
      }
      if (res.IsTruncated && !res.NextContinuationToken) {
        throw new StorageError('invalid', `${this.location}: truncated listing of ${prefix} without a continuation token`, false);
      }
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token !== undefined);
  }

  async delete(name: string): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.key(name) }));
    } catch (e) {
      const err = await this.fail(e, 'delete', name);
      if (err.code !== 'not-found') throw err;
    }
  }

  async stat(name: string): Promise<ObjectInfo | null> {
    try {
      const res = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.key(name) }));
      this.bucketSeen = true;
      return { name, size: res.ContentLength ?? 0, mtimeMs: res.LastModified?.getTime() ?? 0 };
    } catch (e) {
      const err = await this.fail(e, 'stat', name);
      if (err.code === 'not-found') return null;
      throw err;
    }
  }

  async exists(): Promise<boolean> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
      this.bucketSeen = true;
      return true;
    } catch (e) {
      const err = this.mapped(e, 'check bucket', '');
      if (err.code === 'not-found' || err.code === 'no-bucket') return false;
      throw err;
    }
  }

  /** Creates the bucket when missing, then probes conditional put. */
  async create(): Promise<void> {
    if (!(await this.exists())) {
      try {
        await this.client.send(
          new CreateBucketCommand({
            Bucket: this.bucket,
            ...(this.objectLock ? { ObjectLockEnabledForBucket: true } : {}),
            ...(this.region === 'us-east-1' ? {} : { CreateBucketConfiguration: { LocationConstraint: this.region as BucketLocationConstraint } }),
          }),
        );
      } catch (e) {
        if (s3ErrorInfo(e).code !== 'BucketAlreadyOwnedByYou') throw this.mapped(e, 'create bucket', '');
      }
    }
    this.bucketSeen = true;
    await this.probeObjectLock();
    await this.probeConditionalPut();
  }

  async close(): Promise<void> {
    // a probe still under way finishes first: cut off, it could leave its object in locks/
    await this.known.catch(() => undefined);
    this.client.destroy();
  }

  private key(name: string): string {
    if (name === '' || name.startsWith('/')) {
      throw new StorageError('invalid', `${this.location}: invalid object name ${JSON.stringify(name)}`, false);
    }
    return this.keyPrefix + name;
  }

  private notFound(name: string): StorageError {
    return new StorageError('not-found', `${this.location}: ${name} does not exist (NoSuchKey)`, false);
  }

  private mapped(e: unknown, op: string, name: string): StorageError {
    return mapS3Error(e, { endpoint: this.endpoint, bucket: this.bucket, region: this.region, op, name });
  }

  /**
   * Maps an SDK error; a bare 404 (HEAD has no error body) is told apart from a
   * missing bucket with one HeadBucket, until the bucket has been seen once.
   */
  private async fail(e: unknown, op: string, name: string): Promise<StorageError> {
    const err = this.mapped(e, op, name);
    if (err.code === 'not-found' && !this.bucketSeen && s3ErrorInfo(e).code !== 'NoSuchKey') {
      const there = await this.exists().catch(() => true);
      if (!there) return this.mapped({ name: 'NoSuchBucket', $metadata: { httpStatusCode: 404 } }, op, name);
    }
    return err;
  }
}

/** The Range header for a range; undefined for the whole object; null for an empty range. */
function rangeHeader(range?: ByteRange): string | undefined | null {
  if (range === undefined) return undefined;
  if ('suffix' in range) return range.suffix === 0 ? null : `bytes=-${range.suffix}`;
  if (range.length === undefined) return `bytes=${range.offset}-`;
  if (range.length === 0) return null;
  return `bytes=${range.offset}-${range.offset + range.length - 1}`;
}

/**
 * Feeds a response body's pieces to `onChunk` as they arrive ('data' events: a for-await loop
 * costs a promise and a microtask turn per piece, and a 1 GB restore over TLS is ≈ 64,000
 * pieces). Rejects on a stream error, on a body that closes before its end, or when `onChunk`
 * throws (the body is then destroyed).
 */
function consume(body: Readable, onChunk: (chunk: Buffer) => void): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    const fail = (e: unknown) => {
      if (settled) return;
      settled = true;
      reject(e instanceof Error ? e : new Error(String(e)));
    };
    body.on('data', (chunk: Buffer) => {
      if (settled) return;
      try {
        onChunk(chunk);
      } catch (e) {
        fail(e);
        body.destroy();
      }
    });
    body.once('error', fail);
    body.once('end', () => {
      if (settled) return;
      settled = true;
      resolve();
    });
    body.once('close', () => {
      if (!body.readableEnded) fail(new Error('the response body ended early (connection closed)'));
    });
  });
}

/**
 * Copies the bytes [from, from + buf.length) of a body that starts at byte `start` of the object
 * into `buf`; returns how many of them came (the body may end first).
 */
async function readInto(body: Readable | undefined, start: number, from: number, buf: Uint8Array): Promise<number> {
  if (body === undefined) return 0;
  let pos = start;
  let got = 0;
  await consume(body, (c) => {
    const lo = Math.max(pos, from);
    const hi = Math.min(pos + c.length, from + buf.length);
    if (hi > lo) {
      buf.set(c.subarray(lo - pos, hi - pos), lo - from);
      got = Math.max(got, hi - from);
    }
    pos += c.length;
  });
  return got;
}

/**
 * A whole body in one buffer. With the length announced, the pieces are copied straight into a
 * buffer of that size (no list of pieces joined at the end: one copy of a 16 MiB pack, not two);
 * more bytes than announced are kept too, so the caller's length check reports them.
 */
async function readAll(body: Readable | undefined, length?: number): Promise<Buffer> {
  if (body === undefined) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  let out = length !== undefined && length > 0 ? Buffer.allocUnsafe(length) : null;
  let pos = 0;
  await consume(body, (c) => {
    if (out !== null && pos + c.length <= out.length) {
      c.copy(out, pos);
    } else {
      if (out !== null) {
        chunks.push(out.subarray(0, pos));
        out = null;
      }
      chunks.push(c);
    }
    pos += c.length;
  });
  if (out !== null) return out.subarray(0, pos);
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, pos);
}

function oneLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0] ?? '';
}

// ------------------------------------------------------------------ error mapping

interface S3ErrorInfo {
  code?: string; // S3 error code (NoSuchKey, ...) or Node errno (ECONNREFUSED, ...)
  status?: number;
  message: string;
}

const NET_UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT']);
const NET_LOST = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'ERR_STREAM_PREMATURE_CLOSE']);
const ACCESS = new Set(['AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'Forbidden', 'InvalidToken', 'ExpiredToken']);
const TRANSIENT = new Set([
  'SlowDown', 'ServiceUnavailable', 'InternalError', 'RequestTimeout', 'Throttling', 'ThrottlingException',
  'TooManyRequests', 'OperationAborted',
  'BadDigest', 'IncompleteBody', // the body was damaged or cut on the way: sending it again helps
]);

export function s3ErrorInfo(e: unknown): S3ErrorInfo {
  if (typeof e !== 'object' || e === null) return { message: String(e) };
  const o = e as { name?: unknown; code?: unknown; Code?: unknown; message?: unknown; $metadata?: { httpStatusCode?: unknown } };
  const status = typeof o.$metadata?.httpStatusCode === 'number' ? o.$metadata.httpStatusCode : undefined;
  const errno = typeof o.code === 'string' ? o.code : undefined;
  const s3code = typeof o.Code === 'string' ? o.Code : typeof o.name === 'string' ? o.name : undefined;
  const message = (typeof o.message === 'string' ? o.message : '').split('\n')[0]?.slice(0, 200) ?? '';
  const code = errno ?? (s3code === 'Error' || s3code === 'Unknown' ? undefined : s3code);
  return { ...(code !== undefined ? { code } : {}), ...(status !== undefined ? { status } : {}), message };
}

/**
 * The Retry-After of the answer behind an SDK error (seconds, or an HTTP date), in ms; undefined
 * when there is none or it does not parse.
 */
export function retryAfterMs(e: unknown, now = Date.now()): number | undefined {
  const headers = (e as { $response?: { headers?: Record<string, string | undefined> } } | null)?.$response?.headers;
  const raw = headers?.['retry-after'] ?? headers?.['Retry-After'];
  if (typeof raw !== 'string' || raw.trim() === '') return undefined;
  const v = raw.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

interface Where {
  endpoint: string;
  bucket: string;
  region: string;
  op: string;
  name: string;
}

/** One-line StorageError naming endpoint, bucket and the S3 code; never credentials. */
export function mapS3Error(e: unknown, w: Where): StorageError {
  if (e instanceof StorageError) return e;
  const { code, status, message } = s3ErrorInfo(e);
  const target = `${w.endpoint}/${w.bucket}`;
  const what = w.name === '' ? w.op : `${w.op} ${w.name}`;
  const tag = [code, status !== undefined ? `HTTP ${status}` : undefined].filter(Boolean).join(', ');
  const detail = message !== '' && message !== code && message !== 'UnknownError' ? `: ${message}` : '';
  const make = (c: StorageError['code'], text: string): StorageError => new StorageError(c, text, undefined, { cause: e });
  const isTimeout = typeof e === 'object' && e !== null && 'name' in e && e.name === 'TimeoutError';

  if (status === undefined && (isTimeout || (code !== undefined && NET_UNREACHABLE.has(code)))) {
    return make('unreachable', `cannot reach S3 endpoint ${target}: ${message || code}`);
  }
  if (status === undefined && code !== undefined && NET_LOST.has(code)) {
    return make('transient', `connection to S3 endpoint ${target} lost during ${what}: ${message || code}`);
  }
  if (code === 'CredentialsProviderError') {
    return make(
      'access-denied',
      `S3 ${target}: no credentials found (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)`,
    );
  }
  if (code === 'NoSuchBucket') {
    return make('no-bucket', `S3 bucket ${w.bucket} does not exist at ${w.endpoint} (${tag})`);
  }
  if (code === 'NoSuchKey' || code === 'NotFound' || status === 404) {
    return make('not-found', `S3 ${target}: ${w.name || w.op} does not exist (${tag})`);
  }
  if (code === 'PreconditionFailed' || status === 412) {
    return make('already-exists', `S3 ${target}: ${w.name} already exists (${tag})`);
  }
  if ((code !== undefined && ACCESS.has(code)) || status === 403) {
    return make('access-denied', `S3 ${target}: access denied to ${what} (${tag}); check the credentials`);
  }
  if (code === 'NotImplemented' || status === 501) {
    return make('unsupported', `S3 ${target}: ${what} is not supported by this server (${tag})`);
  }
  if (code === 'AuthorizationHeaderMalformed' || code === 'PermanentRedirect' || status === 301) {
    return make('invalid', `S3 ${target}: ${what} failed (${tag}); is region ${w.region} the bucket's region?`);
  }
  if ((code !== undefined && TRANSIENT.has(code)) || status === 408 || status === 429 || (status ?? 0) >= 500) {
    const after = retryAfterMs(e);
    return new StorageError('transient', `S3 ${target}: ${what} failed (${tag})${detail}`, undefined, {
      cause: e,
      ...(after !== undefined ? { retryAfterMs: after } : {}),
    });
  }
  return make('invalid', `S3 ${target}: ${what} failed (${tag || 'no status'})${detail}`);
}

/** Bodies are sent in slices of this size (see bodyOf). */
const BODY_SLICE = 1 * MiB;

/** The base64 MD5 of a file (Content-MD5 of putFile), read in BODY_SLICE pieces. */
async function md5OfFile(file: string): Promise<string> {
  const h = createHash('md5');
  for await (const piece of createReadStream(file, { highWaterMark: BODY_SLICE })) h.update(piece as Buffer);
  return h.digest('base64');
}

/**
 * A PutObject body: a Buffer up to one slice, else a stream of slices of it. The stream bounds
 * what one upload holds besides the buffer itself: given a whole 16 MiB pack in one write, a TLS
 * socket encrypts all of it into its own output buffer at once (≈ 75 MiB more peak RSS with four
 * uploads under way on the bench's S3 backup), where a stream is encrypted as the socket drains.
 * A stream body is also signed as UNSIGNED-PAYLOAD instead of SHA-256-hashed on the calling
 * thread; the server still checks every byte against Content-MD5. Each call makes a new stream,
 * so a retried put sends the whole buffer again.
 */
function bodyOf(data: Buffer): Buffer | Readable {
  if (data.length <= BODY_SLICE) return data;
  return Readable.from((function* slices() {
    for (let at = 0; at < data.length; at += BODY_SLICE) yield data.subarray(at, Math.min(data.length, at + BODY_SLICE));
  })());
}
