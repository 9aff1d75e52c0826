/**
 * Fresh, empty storages for tests, so one suite runs on every backend:
 *
 *   describe.each(backends)('$name', (backend) => { ... await backend.make() ... })
 *
 * `local` is a new directory under os.tmpdir(); `s3` a new bucket `t-<random>` on the
 * plain Swift server started by test/services/global-setup.ts. Everything made here is
 * removed after the test file (an afterAll registered on import).
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DeleteBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, inject } from 'vitest';
import { LocalStorage } from '../../src/storage/local.js';
import { S3Storage } from '../../src/storage/s3.js';
import type { S3StorageOptions } from '../../src/storage/s3.js';
import type { Storage } from '../../src/storage/types.js';

/** Backend knobs a test may lower (ignored where they do not apply). */
export interface BackendOptions {
  pageSize?: number;
  multipartThreshold?: number;
  partSize?: number;
}

export interface Backend {
  name: 'local' | 's3';
  make(opts?: BackendOptions): Promise<Storage>;
  /** A storage whose bucket/directory does not exist (yet). */
  makeMissing(): Promise<Storage>;
}

export const backends: Backend[] = [
  {
    name: 'local',
    make: () => makeLocal(),
    makeMissing: async () => new LocalStorage(path.join(await makeTempDir(), 'repo')),
  },
  { name: 's3', make: (opts) => makeS3(opts), makeMissing: () => makeS3({ create: false }) },
];

const cleanups: Array<() => Promise<void>> = [];

afterAll(async () => {
  const all = cleanups.splice(0);
  await Promise.allSettled(all.map((c) => c()));
});

export function s3Endpoint(): string {
  const ep = process.env.LIFEBOAT_TEST_S3_ENDPOINT || inject('s3Endpoint');
  if (!ep) throw new Error('LIFEBOAT_TEST_S3_ENDPOINT is not set: run the tests with vitest (globalSetup starts Swift)');
  return ep;
}

export function s3CompatEndpoint(): string {
  const ep = process.env.LIFEBOAT_TEST_S3_COMPAT_ENDPOINT || inject('s3CompatEndpoint');
  if (!ep) throw new Error('LIFEBOAT_TEST_S3_COMPAT_ENDPOINT is not set (start it with SWIFT_S3_COMPAT=1 test/services/s3.sh)');
  return ep;
}

export function randomBucketName(): string {
  return `t-${randomBytes(6).toString('hex')}`;
}

/** A new temp directory (removed after the file); the repository root is `<dir>/repo`. */
export async function makeTempDir(): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'lifeboat-test-'));
  cleanups.push(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A LocalStorage on a new, existing directory. */
export async function makeLocal(): Promise<LocalStorage> {
  const storage = new LocalStorage(path.join(await makeTempDir(), 'repo'));
  await storage.create();
  return storage;
}

/**
 * An S3Storage on a new bucket (created and probed unless `create: false`) of the plain
 * server, or of `endpoint`. The bucket and its objects are deleted after the file.
 */
export async function makeS3(
  opts: BackendOptions & Partial<S3StorageOptions> & { create?: boolean } = {},
): Promise<S3Storage> {
  const { create = true, ...rest } = opts;
  const storage = new S3Storage({ endpoint: s3Endpoint(), bucket: randomBucketName(), ...rest });
  cleanups.push(async () => {
    await deleteBucket(storage.endpoint, storage.bucket);
    await storage.close();
  });
  if (create) await storage.create();
  return storage;
}

/** makeS3 on the compat server (conditional put supported). */
export function makeCompatS3(opts: BackendOptions & Partial<S3StorageOptions> = {}): Promise<S3Storage> {
  return makeS3({ ...opts, endpoint: s3CompatEndpoint() });
}

/** Deletes every object of a bucket, then the bucket; a missing bucket is fine. */
export async function deleteBucket(endpoint: string, bucket: string): Promise<void> {
  const raw = new S3Storage({ endpoint, bucket });
  const client = new S3Client({ endpoint, region: raw.region, forcePathStyle: true, maxAttempts: 1 });
  try {
    if (!(await raw.exists())) return;
    const names: string[] = [];
    for await (const o of raw.list('')) names.push(o.name);
    for (let i = 0; i < names.length; i += 16) {
      await Promise.all(names.slice(i, i + 16).map((n) => raw.delete(n)));
    }
    await client.send(new DeleteBucketCommand({ Bucket: bucket }));
  } finally {
    client.destroy();
    await raw.close();
  }
}
