/** Errors every backend maps its failures to; messages are one line and name the location. */
export type StorageErrorCode =
  | 'not-found' // the object does not exist
  | 'already-exists' // conditional create lost
  | 'no-bucket' // the bucket / directory of the repository does not exist
  | 'access-denied' // bad credentials or permissions
  | 'unreachable' // network error, DNS, refused connection, timeout
  | 'transient' // 5xx, throttling: worth retrying
  | 'no-space' // disk full (local) or quota exceeded
  | 'invalid' // anything else the store rejected
  | 'unsupported';

export class StorageError extends Error {
  /** How long the store asked us to wait before trying again (an HTTP Retry-After), in ms. */
  readonly retryAfterMs?: number;

  constructor(
    readonly code: StorageErrorCode,
    message: string,
    readonly retryable = code === 'transient' || code === 'unreachable',
    options?: { cause?: unknown; retryAfterMs?: number },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'StorageError';
    if (options?.retryAfterMs !== undefined) this.retryAfterMs = options.retryAfterMs;
  }
}

export function isNotFound(e: unknown): boolean {
  return e instanceof StorageError && e.code === 'not-found';
}
