import { expect } from 'vitest';
import { StorageError } from '../../src/storage/errors.js';
import type { Storage } from '../../src/storage/types.js';

/** Sorted names of every object under a prefix. */
export async function names(storage: Storage, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const o of storage.list(prefix)) out.push(o.name);
  return out.sort();
}

/** Awaits a promise that must fail with a StorageError, and returns it. */
export async function storageError(p: Promise<unknown>): Promise<StorageError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(StorageError);
    return e as StorageError;
  }
  throw new Error('expected a StorageError, got success');
}
