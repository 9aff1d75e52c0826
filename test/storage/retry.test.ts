/** RetryStorage: which errors are retried, how long it waits, and the lost-answer case. */
import { describe, expect, it } from 'vitest';
import { StorageError } from '../../src/storage/errors.js';
import { RetryStorage, backoffDelay } from '../../src/storage/retry.js';
import type { RetryOptions } from '../../src/storage/retry.js';
import type { ByteRange, ObjectInfo, PutOptions, Storage } from '../../src/storage/types.js';
import { makeLocal } from '../helpers/storage-backends.js';

type Op = 'get' | 'put' | 'list' | 'delete' | 'stat' | 'exists' | 'create';

/**
 * Wraps a storage; the next `failures[op]` calls of op fail with `error` — before
 * reaching the inner store, or (`afterWrite`) after a put has landed, like a lost answer.
 */
class Flaky implements Storage {
  calls: Record<Op, number> = { get: 0, put: 0, list: 0, delete: 0, stat: 0, exists: 0, create: 0 };
  failures: Partial<Record<Op, number>> = {};
  afterWrite = false;
  listFailAfter = 0; // list: yield this many objects before failing
  error: () => StorageError = () => new StorageError('transient', 'HTTP 503 SlowDown');

  constructor(readonly inner: Storage) {}
  get location(): string {
    return this.inner.location;
  }
  get supportsConditionalPut(): boolean {
    return this.inner.supportsConditionalPut;
  }
  private fail(op: Op): boolean {
    this.calls[op]++;
    const left = this.failures[op] ?? 0;
    if (left <= 0) return false;
    this.failures[op] = left - 1;
    return true;
  }
  async get(name: string, range?: ByteRange): Promise<Buffer> {
    if (this.fail('get')) throw this.error();
    return this.inner.get(name, range);
  }
  async put(name: string, data: Buffer, opts?: PutOptions): Promise<void> {
    const failing = this.fail('put');
    if (failing && !this.afterWrite) throw this.error();
    await this.inner.put(name, data, opts);
    if (failing) throw this.error();
  }
  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const failing = this.fail('list');
    let n = 0;
    for await (const o of this.inner.list(prefix)) {
      if (failing && n === this.listFailAfter) throw this.error();
      n++;
      yield o;
    }
    if (failing) throw this.error();
  }
  async delete(name: string): Promise<void> {
    if (this.fail('delete')) throw this.error();
    return this.inner.delete(name);
  }
  async stat(name: string): Promise<ObjectInfo | null> {
    if (this.fail('stat')) throw this.error();
    return this.inner.stat(name);
  }
  async exists(): Promise<boolean> {
    if (this.fail('exists')) throw this.error();
    return this.inner.exists();
  }
  async create(): Promise<void> {
    if (this.fail('create')) throw this.error();
    return this.inner.create();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

async function setup(opts: RetryOptions = {}): Promise<{ flaky: Flaky; retry: RetryStorage; delays: number[] }> {
  const flaky = new Flaky(await makeLocal());
  const delays: number[] = [];
  const retry = new RetryStorage(flaky, {
    sleep: async (ms) => {
      delays.push(ms);
    },
    ...opts,
  });
  return { flaky, retry, delays };
}

describe('RetryStorage', () => {
  it('retries retryable errors of every operation with exponential, jittered, capped delays', async () => {
    const { flaky, retry, delays } = await setup({ random: () => 0.999999 });
    await flaky.inner.put('a', Buffer.from('x'));
    flaky.failures = { get: 3, put: 2, stat: 1, delete: 1, exists: 1, create: 1 };
    expect((await retry.get('a')).toString()).toBe('x');
    expect(flaky.calls.get).toBe(4);
    expect(delays).toEqual([199, 399, 799]);
    await retry.put('b', Buffer.from('y'));
    expect(flaky.calls.put).toBe(3);
    expect(await retry.stat('b')).toMatchObject({ size: 1 });
    await retry.delete('b');
    expect(await retry.exists()).toBe(true);
    await retry.create();
    expect(flaky.calls).toMatchObject({ stat: 2, delete: 2, exists: 2, create: 2 });
  });

  it('gives up after the configured attempts and rethrows the last error', async () => {
    const { flaky, retry, delays } = await setup({ attempts: 4 });
    flaky.failures = { get: 10 };
    const err = await retry.get('a').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).code).toBe('transient');
    expect(flaky.calls.get).toBe(4);
    expect(delays).toHaveLength(3);
    delays.forEach((d, i) => {
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThan(200 * 2 ** i);
    });
  });

  it('does not retry non-retryable errors', async () => {
    const { flaky, retry, delays } = await setup();
    flaky.error = () => new StorageError('access-denied', 'denied');
    flaky.failures = { get: 1 };
    await expect(retry.get('a')).rejects.toMatchObject({ code: 'access-denied' });
    await expect(retry.get('a')).rejects.toMatchObject({ code: 'not-found' });
    expect(flaky.calls.get).toBe(2);
    expect(delays).toEqual([]);
  });

  it('computes full-jitter backoff bounded by the cap', () => {
    expect(backoffDelay(1, { random: () => 0.5 })).toBe(100);
    expect(backoffDelay(5, { random: () => 0.5 })).toBe(1600);
    expect(backoffDelay(10, { random: () => 0.999 })).toBe(29_970);
    expect(backoffDelay(80, { random: () => 0.999 })).toBe(29_970);
    expect(backoffDelay(3, { random: () => 0, baseMs: 10 })).toBe(0);
    for (let i = 1; i < 30; i++) expect(backoffDelay(i)).toBeLessThanOrEqual(30_000);
  });

  it('calls onRetry with the error, the failed attempt and the delay', async () => {
    const seen: Array<[string, number, number]> = [];
    const { flaky, retry } = await setup({ random: () => 0.5, onRetry: (e, a, d) => seen.push([e.code, a, d]) });
    await flaky.inner.put('a', Buffer.from('x'));
    flaky.failures = { get: 2 };
    await retry.get('a');
    expect(seen).toEqual([
      ['transient', 1, 100],
      ['transient', 2, 200],
    ]);
  });

  it('treats a conditional put whose first answer was lost as a success when the bytes are ours', async () => {
    const { flaky, retry } = await setup();
    flaky.afterWrite = true;
    flaky.failures = { put: 1 };
    await retry.put('locks/me', Buffer.from('mine'), { ifNoneMatch: true });
    expect(flaky.calls.put).toBe(2);
    expect((await flaky.inner.get('locks/me')).toString()).toBe('mine');
  });

  it('still reports a conflict on retry when the object holds other bytes', async () => {
    const inner = await makeLocal();
    const flaky = new Flaky(inner);
    // someone else creates the object while we wait to retry
    const retry = new RetryStorage(flaky, { sleep: () => inner.put('locks/x', Buffer.from('theirs')) });
    flaky.failures = { put: 1 }; // fails before writing
    await expect(retry.put('locks/x', Buffer.from('mine'), { ifNoneMatch: true })).rejects.toMatchObject({
      code: 'already-exists',
    });
    expect(flaky.calls).toMatchObject({ put: 2, get: 1 });
    // and a first-attempt conflict is never second-guessed
    await expect(retry.put('locks/x', Buffer.from('theirs'), { ifNoneMatch: true })).rejects.toMatchObject({
      code: 'already-exists',
    });
  });

  it('restarts a listing only while nothing has been yielded', async () => {
    const { flaky, retry } = await setup();
    for (const n of ['k/1', 'k/2', 'k/3']) await flaky.inner.put(n, Buffer.from(n));
    flaky.failures = { list: 2 };
    const got: string[] = [];
    for await (const o of retry.list('k/')) got.push(o.name);
    expect(got.sort()).toEqual(['k/1', 'k/2', 'k/3']);
    expect(flaky.calls.list).toBe(3);

    flaky.failures = { list: 1 };
    flaky.listFailAfter = 2;
    const partial: string[] = [];
    const err = await (async () => {
      for await (const o of retry.list('k/')) partial.push(o.name);
    })().catch((e: unknown) => e);
    expect((err as StorageError).code).toBe('transient');
    expect(partial).toHaveLength(2);
    expect(flaky.calls.list).toBe(4);
  });
});

describe('Retry-After', () => {
  it('waits at least what the store asked for, capped; the backoff when it asked for less', async () => {
    const { retryDelay } = await import('../../src/storage/retry.js');
    const slow = (ms: number) => new StorageError('transient', 'SlowDown', true, { retryAfterMs: ms });
    const zero = { random: () => 0 };
    expect(retryDelay(slow(1000), 1, zero)).toBe(1000);
    expect(retryDelay(slow(120_000), 1, zero)).toBe(30_000);
    expect(retryDelay(slow(120_000), 1, { ...zero, retryAfterCapMs: 5000 })).toBe(5000);
    expect(retryDelay(slow(10), 5, { random: () => 0.999 })).toBeGreaterThan(3000); // the backoff is longer
    expect(retryDelay(new StorageError('transient', 'x'), 1, zero)).toBe(0);
  });

  it('reads Retry-After from an SDK error: seconds or an HTTP date; nothing for garbage', async () => {
    const { retryAfterMs } = await import('../../src/storage/s3.js');
    const err = (v: string) => Object.defineProperty(new Error('SlowDown'), '$response', { value: { headers: { 'retry-after': v } }, enumerable: false });
    const now = Date.parse('2026-11-23T01:00:00Z');
    expect(retryAfterMs(err('3'), now)).toBe(3000);
    expect(retryAfterMs(err('Mon, 23 Nov 2026 01:00:05 GMT'), now)).toBe(5000);
    expect(retryAfterMs(err('soon'), now)).toBeUndefined();
    expect(retryAfterMs(new Error('x'), now)).toBeUndefined();
  });
});
