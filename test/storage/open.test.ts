/** openStorage: the right backend, wrapped for retries, with conditional put probed (in the background). */
import * as path from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { openStorage } from '../../src/storage/open.js';
import { RetryStorage } from '../../src/storage/retry.js';
import { LocalStorage } from '../../src/storage/local.js';
import { S3Storage } from '../../src/storage/s3.js';
import { makeCompatS3, makeS3, makeTempDir, randomBucketName, s3Endpoint } from '../helpers/storage-backends.js';

describe('openStorage', () => {
  it('sees the servers of the global setup through process.env and inject()', () => {
    expect(process.env.LIFEBOAT_TEST_S3_ENDPOINT).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(process.env.LIFEBOAT_TEST_S3_COMPAT_ENDPOINT).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(inject('s3Endpoint')).toBe(process.env.LIFEBOAT_TEST_S3_ENDPOINT);
    expect(process.env.AWS_ACCESS_KEY_ID).toBeTruthy();
  });

  it('opens a local directory (path or local:) wrapped in RetryStorage', async () => {
    const dir = await makeTempDir();
    for (const loc of [path.join(dir, 'r'), `local:${path.join(dir, 'r')}`]) {
      const s = await openStorage(loc);
      expect(s).toBeInstanceOf(RetryStorage);
      expect((s as RetryStorage).inner).toBeInstanceOf(LocalStorage);
      expect(s.location).toBe(path.join(dir, 'r'));
      expect(s.supportsConditionalPut).toBe(true);
    }
  });

  it('probes conditional put: off on plain Swift, on with the compat shims', async () => {
    const plain = await makeS3();
    const compat = await makeCompatS3();
    const a = await openStorage(`s3:${plain.endpoint}/${plain.bucket}`);
    const b = await openStorage(`s3:${compat.endpoint}/${compat.bucket}/some/prefix`);
    try {
      expect((a as RetryStorage).inner).toBeInstanceOf(S3Storage);
      // probed in the background: ready() settles it
      await a.ready!();
      await b.ready!();
      expect(a.supportsConditionalPut).toBe(false);
      expect(b.supportsConditionalPut).toBe(true);
      await b.put('locks/one', Buffer.from('1'), { ifNoneMatch: true });
      await expect(b.put('locks/one', Buffer.from('2'), { ifNoneMatch: true })).rejects.toMatchObject({
        code: 'already-exists',
      });
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('closing at once waits for the background probe: no probe object is left in locks/', async () => {
    const compat = await makeCompatS3();
    // closed before, during and after the probe's three requests
    for (const delayMs of [0, 2, 5, 10, 20, 40]) {
      const s = await openStorage(`s3:${compat.endpoint}/${compat.bucket}`);
      await new Promise((r) => setTimeout(r, delayMs));
      await s.close();
    }
    const left: string[] = [];
    for await (const o of compat.list('locks/')) left.push(o.name);
    expect(left).toEqual([]);
  });

  it('opens a missing bucket (for init); create() makes it and probes', async () => {
    const bucket = randomBucketName();
    await makeS3({ create: false, bucket }); // registers the bucket for deletion
    const s = await openStorage(`s3:${s3Endpoint()}/${bucket}`, { region: 'us-east-1' });
    try {
      expect(await s.exists()).toBe(false);
      await expect(s.get('config')).rejects.toMatchObject({ code: 'no-bucket' });
      await s.create();
      expect(await s.exists()).toBe(true);
      expect(s.supportsConditionalPut).toBe(false);
    } finally {
      await s.close();
    }
  });

  it('rejects malformed locations with a plain one-line Error', async () => {
    await expect(openStorage('ftp://x')).rejects.toThrow(/unsupported repository location/);
    await expect(openStorage('s3:')).rejects.toThrow(/s3:/);
  });
});
