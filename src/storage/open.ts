/** Builds the Storage for a repository location: the backend, wrapped in RetryStorage. */
import { StorageError } from './errors.js';
import { LocalStorage } from './local.js';
import { RetryStorage, withRetry } from './retry.js';
import type { RetryOptions } from './retry.js';
import type { S3StorageOptions } from './s3.js';
import type { Storage } from './types.js';
import { parseLocation } from './url.js';

export interface OpenStorageOptions {
  /** S3 region (default: AWS_REGION, else us-east-1). */
  region?: string;
  retry?: RetryOptions;
  /** Shortcut for retry.onRetry (logging). */
  onRetry?: RetryOptions['onRetry'];
  /** Extra S3 settings (timeouts, multipart threshold, page size, credentials). */
  s3?: Partial<Omit<S3StorageOptions, 'endpoint' | 'bucket' | 'prefix'>>;
}

/**
 * Opens `s3:https://host/bucket/prefix`, `local:/dir` or a path. For S3, conditional
 * put is probed in the background (retried like any operation; Storage.ready() waits for it);
 * a missing bucket or read-only credentials leave it unprobed (false) rather than failing:
 * `create()` probes later.
 * Malformed locations throw a plain Error with a one-line reason.
 */
export async function openStorage(location: string, opts: OpenStorageOptions = {}): Promise<Storage> {
  const loc = parseLocation(location);
  const retry: RetryOptions = { ...opts.retry, ...(opts.onRetry ? { onRetry: opts.onRetry } : {}) };
  if (loc.kind === 'local') {
    if (opts.s3?.objectLock) throw new StorageError('unsupported', `${location}: object_lock applies to S3 repositories only`, false);
    return new RetryStorage(new LocalStorage(loc.path), retry);
  }

  // the AWS SDK takes a while to load: only when an S3 location is used
  const { S3Storage } = await import('./s3.js');
  const s3 = new S3Storage({
    ...opts.s3,
    endpoint: loc.endpoint,
    bucket: loc.bucket,
    prefix: loc.prefix,
    ...(opts.region !== undefined ? { region: opts.region } : {}),
  });
  try {
    // a bucket without Object Lock when retention is asked for: refused before anything is written
    // (a missing bucket is probed by create(), at init)
    await withRetry(() => s3.probeObjectLock(), retry);
  } catch (e) {
    if (!(e instanceof StorageError && e.code === 'no-bucket')) {
      await s3.close();
      throw e;
    }
  }
  // only a lock (and init) needs the answer: they wait for it with ready(), and meanwhile its
  // requests overlap the repository's first reads
  s3.probeInBackground(withRetry(() => s3.probeConditionalPut(), retry).then(() => undefined, (e: unknown) => {
    const code = e instanceof StorageError ? e.code : undefined;
    if (code !== 'no-bucket' && code !== 'access-denied') throw e;
  }));
  return new RetryStorage(s3, retry);
}
