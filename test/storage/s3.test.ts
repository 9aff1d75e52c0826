/** S3Storage against real Swift + s3api servers (plain, as clouds run it, and compat). */
import { createServer } from 'node:net';
import { randomBytes } from 'node:crypto';
import { HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { StorageError } from '../../src/storage/errors.js';
import { openStorage } from '../../src/storage/open.js';
import { S3Storage } from '../../src/storage/s3.js';
import { makeCompatS3, makeS3, randomBucketName, s3Endpoint } from '../helpers/storage-backends.js';
import { storageError } from '../helpers/storage-asserts.js';

const MiB = 1024 * 1024;

async function etag(s: S3Storage, name: string): Promise<string> {
  const client = new S3Client({ endpoint: s.endpoint, region: s.region, forcePathStyle: true });
  try {
    return (await client.send(new HeadObjectCommand({ Bucket: s.bucket, Key: name }))).ETag ?? '';
  } finally {
    client.destroy();
  }
}

/** A loopback port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

describe('S3Storage on Swift', () => {
  it('detects that plain Swift refuses conditional put (501) and the compat server enforces it', async () => {
    const plain = await makeS3();
    expect(await plain.probeConditionalPut()).toBe(false);
    expect(plain.supportsConditionalPut).toBe(false);
    const compat = await makeCompatS3();
    expect(await compat.probeConditionalPut()).toBe(true);
    expect(compat.supportsConditionalPut).toBe(true);
    // the probe cleans up after itself
    for (const s of [plain, compat]) {
      const left: string[] = [];
      for await (const o of s.list('')) left.push(o.name);
      expect(left).toEqual([]);
    }
    const err = await storageError(plain.put('locks/x', Buffer.from('x'), { ifNoneMatch: true }));
    expect(err.code).toBe('unsupported');
    expect(err.message).toContain('NotImplemented');
  });

  it('lets exactly one of 8 concurrent conditional creators win on the compat server', async () => {
    const s = await makeCompatS3();
    const bodies = Array.from({ length: 8 }, (_, i) => Buffer.from(`creator ${i} ${randomBytes(8).toString('hex')}`));
    const results = await Promise.allSettled(bodies.map((b) => s.put('locks/exclusive', b, { ifNoneMatch: true })));
    const winners = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
    expect(winners).toHaveLength(1);
    for (const r of results) {
      if (r.status === 'rejected') expect((r.reason as StorageError).code).toBe('already-exists');
    }
    const stored = await s.get('locks/exclusive');
    expect(stored.equals(bodies[winners[0] ?? -1] ?? Buffer.alloc(0))).toBe(true);
  });

  it('uploads 70 MiB through multipart (default threshold) and reads it back', async () => {
    const s = await makeS3();
    const data = randomBytes(70 * MiB);
    const t0 = Date.now();
    await s.put('data/70/big', data);
    const back = await s.get('data/70/big');
    expect(back.length).toBe(data.length);
    expect(back.equals(data)).toBe(true);
    expect((await s.stat('data/70/big'))?.size).toBe(data.length);
    expect(await etag(s, 'data/70/big')).toMatch(/-5"?$/); // a multipart ETag: 5 parts of 16 MiB
    expect((await s.get('data/70/big', { offset: 40 * MiB - 3, length: 10 })).equals(data.subarray(40 * MiB - 3, 40 * MiB + 7))).toBe(true);
    expect(Date.now() - t0).toBeLessThan(60_000);
    await s.delete('data/70/big');
    expect(await s.stat('data/70/big')).toBeNull();
  });

  it('uses multipart above a lowered threshold (20 MiB in 5 MiB parts)', async () => {
    const s = await makeS3({ multipartThreshold: 8 * MiB, partSize: 5 * MiB });
    const data = randomBytes(20 * MiB + 1);
    await s.put('data/20/big', data);
    expect((await s.get('data/20/big')).equals(data)).toBe(true);
    expect(await etag(s, 'data/20/big')).toMatch(/-5"?$/);
    await s.put('data/20/small', data.subarray(0, 8 * MiB));
    expect(await etag(s, 'data/20/small')).not.toContain('-');
    const err = await storageError(s.put('data/20/cond', data, { ifNoneMatch: true }));
    expect(err.code).toBe('unsupported');
  });

  it("names endpoint, bucket and S3 code in a one-line 'no-bucket' error", async () => {
    const s = await makeS3({ create: false });
    for (const op of [() => s.get('config'), () => s.stat('config'), () => s.put('config', Buffer.from('x'))]) {
      const err = await storageError(op());
      expect(err.code).toBe('no-bucket');
      expect(err.message).toContain(s.endpoint);
      expect(err.message).toContain(s.bucket);
      expect(err.message).toContain('NoSuchBucket');
      expect(err.message).not.toContain('\n');
    }
    expect(await s.exists()).toBe(false);
  });

  it("maps bad credentials to 'access-denied' without leaking the secret", async () => {
    const good = await makeS3();
    await good.put('config', Buffer.from('x'));
    const secret = 'not-the-secret-' + randomBytes(4).toString('hex');
    for (const accessKeyId of ['test:tester', 'nobody:none']) {
      const bad = new S3Storage({
        endpoint: good.endpoint,
        bucket: good.bucket,
        credentials: { accessKeyId, secretAccessKey: secret },
      });
      try {
        // (no probe here: plain Swift answers If-None-Match with 501 before checking the signature)
        for (const op of [() => bad.get('config'), () => bad.stat('config'), () => bad.exists(), () => bad.delete('config')]) {
          const err = await storageError(op());
          expect(err.code).toBe('access-denied');
          expect(err.retryable).toBe(false);
          expect(err.message).toContain(good.endpoint);
          expect(err.message).not.toContain(secret);
          expect(err.message).not.toContain('\n');
        }
      } finally {
        await bad.close();
      }
    }
  });

  it("reports bad credentials while probing as 'access-denied' (compat server)", async () => {
    const good = await makeCompatS3();
    const bad = new S3Storage({
      endpoint: good.endpoint,
      bucket: good.bucket,
      credentials: { accessKeyId: 'test:tester', secretAccessKey: 'wrong' },
    });
    try {
      expect((await storageError(bad.probeConditionalPut())).code).toBe('access-denied');
      expect(bad.supportsConditionalPut).toBe(false);
    } finally {
      await bad.close();
    }
  });

  it("fails fast with 'unreachable' on a closed port", async () => {
    const port = await closedPort();
    const retries: number[] = [];
    const t0 = Date.now();
    // opening only starts the conditional-put probe; the first request (the probe here, as a
    // lock waits for it) meets the closed port
    const storage = await openStorage(`s3:http://127.0.0.1:${port}/bucket`, {
      retry: { attempts: 3, baseMs: 10, capMs: 50 },
      onRetry: (_e, attempt) => retries.push(attempt),
    });
    const err = await storageError(storage.ready!());
    const read = await storageError(storage.get('config'));
    await storage.close();
    expect(read.code).toBe('unreachable');
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(err.code).toBe('unreachable');
    expect(err.retryable).toBe(true);
    expect(err.message).toBe(
      `cannot reach S3 endpoint http://127.0.0.1:${port}/bucket: connect ECONNREFUSED 127.0.0.1:${port}`,
    );
    expect(retries).toEqual([1, 2, 1, 2]);
  });

  it('stores every name under the prefix of the location', async () => {
    const raw = await makeS3();
    const storage = await openStorage(`s3:${raw.endpoint}/${raw.bucket}/hosts/web-1`);
    try {
      await storage.put('config', Buffer.from('c'));
      await storage.put('data/ab/1', Buffer.from('d'));
      const rawNames: string[] = [];
      for await (const o of raw.list('')) rawNames.push(o.name);
      expect(rawNames.sort()).toEqual(['hosts/web-1/config', 'hosts/web-1/data/ab/1']);
      const names: string[] = [];
      for await (const o of storage.list('')) names.push(o.name);
      expect(names.sort()).toEqual(['config', 'data/ab/1']);
      expect((await storage.stat('data/ab/1'))?.name).toBe('data/ab/1');
      expect(storage.location).toBe(`s3:${raw.endpoint}/${raw.bucket}/hosts/web-1`);
    } finally {
      await storage.close();
    }
  });

  it('does not leave response bodies open (many small range reads stay fast)', async () => {
    const s = await makeS3({ maxSockets: 2 });
    await s.put('data/aa/x', randomBytes(MiB));
    const t0 = Date.now();
    // with 2 sockets, one leaked body would block every later request for a minute
    for (let i = 0; i < 20; i++) {
      await s.get('data/aa/x', { offset: i * 1000, length: 10 });
      expect((await s.get('data/aa/x', { offset: 2 * MiB })).length).toBe(0); // 416 from the server
      expect((await storageError(s.get(`data/aa/missing-${i}`))).code).toBe('not-found');
    }
    await Promise.all(Array.from({ length: 10 }, (_, i) => s.get('data/aa/x', { suffix: i + 1 })));
    expect(Date.now() - t0).toBeLessThan(10_000);
  });

  it('creates a missing bucket with create() and then probes', async () => {
    const s = new S3Storage({ endpoint: s3Endpoint(), bucket: randomBucketName() });
    const cleanup = await makeS3({ create: false, bucket: s.bucket }); // registers deletion
    try {
      expect(await s.exists()).toBe(false);
      await s.create();
      expect(await s.exists()).toBe(true);
      expect(s.supportsConditionalPut).toBe(false);
      await s.create();
    } finally {
      await s.close();
      expect(cleanup.bucket).toBe(s.bucket);
    }
  });
});
