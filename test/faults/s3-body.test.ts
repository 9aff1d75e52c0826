/**
 * Reading S3 response bodies: whole and ranged GETs, and `getInto`, against the real server
 * through the fault proxy. A body cut halfway (the connection closed after half of it) must be an
 * error the retry layer retries — never a short buffer taken as the object.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { S3Storage } from '../../src/storage/s3.js';
import { StorageError } from '../../src/storage/errors.js';
import { makeS3 } from '../helpers/storage-backends.js';
import { startFaultProxy, type FaultProxy } from './proxy.js';

const proxies: FaultProxy[] = [];
afterAll(async () => {
  await Promise.allSettled(proxies.map((p) => p.close()));
});

describe('S3 response bodies', () => {
  it('arrive whole (get, ranged get, getInto); a body cut halfway is a retryable error, not a short read', async () => {
    const direct = await makeS3();
    const data = randomBytes(3 * 1024 * 1024 + 123);
    await direct.put('data/ab/object', data);
    const proxy = await startFaultProxy(direct.endpoint, 7, 0, 20_000);
    proxies.push(proxy);
    const through = new S3Storage({ endpoint: proxy.url, bucket: direct.bucket });
    try {
      expect((await through.get('data/ab/object')).equals(data)).toBe(true);
      expect((await through.get('data/ab/object', { offset: 1000, length: 2_000_000 })).equals(data.subarray(1000, 2_001_000))).toBe(true);
      const buf = Buffer.alloc(4 * 1024 * 1024);
      expect(await through.getInto!('data/ab/object', 5, data.length - 5, buf)).toBe(data.length - 5);
      expect(buf.subarray(0, data.length - 5).equals(data.subarray(5))).toBe(true);

      proxy.faults = ['truncate'];
      proxy.rate = 1;
      for (const read of [
        () => through.get('data/ab/object'),
        () => through.get('data/ab/object', { offset: 0, length: data.length }),
        () => through.getInto!('data/ab/object', 0, data.length, buf),
      ]) {
        const e = await read().then(() => null, (err: unknown) => err);
        expect(e).toBeInstanceOf(StorageError);
        expect((e as StorageError).retryable).toBe(true);
        expect((e as StorageError).message).toMatch(/reading data\/ab\/object failed|short read of data\/ab\/object/);
      }
      expect(proxy.injected.truncate).toBe(3);
    } finally {
      await through.close();
    }
  });
});
