/**
 * RetryStorage: retries retryable StorageErrors (transient, unreachable) with
 * exponential backoff and full jitter. Every operation is safe to repeat in this
 * repository format: objects are content-addressed (same name, same bytes), so even
 * a plain put is idempotent; a conditional put whose first answer was lost is
 * recognised by reading the object back.
 */
import { StorageError, isNotFound } from './errors.js';
import type { ByteRange, ObjectInfo, PutOptions, Storage } from './types.js';

export interface RetryOptions {
  /** Total attempts including the first (default 6). */
  attempts?: number;
  /** Backoff base in ms (default 200): retry n waits random(0, min(cap, base * 2^(n-1))). */
  baseMs?: number;
  /** Backoff cap in ms (default 30 000). */
  capMs?: number;
  /** The longest wait a store's Retry-After may ask for, in ms (default 30 000). */
  retryAfterCapMs?: number;
  /** Injectable for tests. */
  sleep?: (ms: number) => Promise<void>;
  /** Injectable for tests: a number in [0, 1). */
  random?: () => number;
  /** Called before each wait; attempt is the number of the attempt that failed (1-based). */
  onRetry?: (err: StorageError, attempt: number, delayMs: number) => void;
}

const defaultSleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export function isRetryable(e: unknown): e is StorageError {
  return e instanceof StorageError && e.retryable;
}

/** The delay before retry number `retry` (1-based), full jitter. */
export function backoffDelay(retry: number, opts: RetryOptions = {}): number {
  const base = opts.baseMs ?? 200;
  const cap = opts.capMs ?? 30_000;
  const ceiling = Math.min(cap, base * 2 ** Math.min(retry - 1, 52));
  return Math.floor((opts.random ?? Math.random)() * ceiling);
}

/**
 * The wait before retry number `retry` after `err`: the backoff, but never less than what the
 * store asked for with Retry-After (503 SlowDown), which is capped at retryAfterCapMs.
 */
export function retryDelay(err: StorageError, retry: number, opts: RetryOptions = {}): number {
  const backoff = backoffDelay(retry, opts);
  if (err.retryAfterMs === undefined) return backoff;
  return Math.max(backoff, Math.min(err.retryAfterMs, opts.retryAfterCapMs ?? 30_000));
}

/** Runs fn until it succeeds, throws a non-retryable error, or the attempts are used up. */
export async function withRetry<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions = {}): Promise<T> {
  const attempts = Math.max(1, opts.attempts ?? 6);
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (e) {
      if (!isRetryable(e) || attempt >= attempts) throw e;
      const delay = retryDelay(e, attempt, opts);
      opts.onRetry?.(e, attempt, delay);
      await (opts.sleep ?? defaultSleep)(delay);
    }
  }
}

export class RetryStorage implements Storage {
  readonly getInto?: (name: string, offset: number, length: number, buf: Uint8Array) => Promise<number>;
  readonly putFile?: (name: string, file: string, size: number) => Promise<void>;

  constructor(
    readonly inner: Storage,
    private readonly opts: RetryOptions = {},
  ) {
    const into = inner.getInto?.bind(inner);
    if (into) this.getInto = (name, offset, length, buf) => withRetry(() => into(name, offset, length, buf), this.opts);
    const putFile = inner.putFile?.bind(inner);
    if (putFile) this.putFile = (name, file, size) => withRetry(() => putFile(name, file, size), this.opts);
  }

  get spoolDir(): string | undefined {
    return this.inner.spoolDir;
  }

  get location(): string {
    return this.inner.location;
  }

  get supportsConditionalPut(): boolean {
    return this.inner.supportsConditionalPut;
  }

  ready(): Promise<void> {
    return this.inner.ready?.() ?? Promise.resolve();
  }
  get consistentListing(): boolean {
    return this.inner.consistentListing === true;
  }

  get(name: string, range?: ByteRange): Promise<Buffer> {
    return withRetry(() => this.inner.get(name, range), this.opts);
  }

  put(name: string, data: Buffer, opts: PutOptions = {}): Promise<void> {
    if (!opts.ifNoneMatch) return withRetry(() => this.inner.put(name, data, opts), this.opts);
    return withRetry(async (attempt) => {
      try {
        await this.inner.put(name, data, opts);
      } catch (e) {
        // A retry that finds the object may be finding our own first attempt, whose
        // answer was lost: it is ours if it holds exactly our bytes.
        if (attempt > 1 && e instanceof StorageError && e.code === 'already-exists') {
          const existing = await withRetry(() => this.inner.get(name), this.opts).catch((g: unknown) => {
            if (isNotFound(g)) return null; // deleted meanwhile: report the conflict
            throw g;
          });
          if (existing?.equals(data)) return;
        }
        throw e;
      }
    }, this.opts);
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const attempts = Math.max(1, this.opts.attempts ?? 6);
    for (let attempt = 1; ; attempt++) {
      let yielded = 0;
      try {
        for await (const info of this.inner.list(prefix)) {
          yielded++;
          yield info;
        }
        return;
      } catch (e) {
        // once the caller has seen objects, restarting would repeat them: give up
        if (yielded > 0 || !isRetryable(e) || attempt >= attempts) throw e;
        const delay = retryDelay(e, attempt, this.opts);
        this.opts.onRetry?.(e, attempt, delay);
        await (this.opts.sleep ?? defaultSleep)(delay);
      }
    }
  }

  delete(name: string): Promise<void> {
    return withRetry(() => this.inner.delete(name), this.opts);
  }

  stat(name: string): Promise<ObjectInfo | null> {
    return withRetry(() => this.inner.stat(name), this.opts);
  }

  exists(): Promise<boolean> {
    return withRetry(() => this.inner.exists(), this.opts);
  }

  create(): Promise<void> {
    return withRetry(() => this.inner.create(), this.opts);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
