import crypto from 'node:crypto';
import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { RepoLock, listLocks } from '../../src/repo/lock.js';
import { LockConflictError } from '../../src/repo/errors.js';
import { sealJson } from '../../src/repo/sealed.js';
import { getSodium } from '../../src/repo/sodium.js';
import type { Storage } from '../../src/storage/types.js';
import { backends, makeCompatS3 } from '../helpers/storage-backends.js';

await getSodium();
const key = crypto.randomBytes(32);
const fastSleep = () => Promise.resolve();

async function lockNames(storage: Storage): Promise<string[]> {
  const out: string[] = [];
  for await (const o of storage.list('locks/')) out.push(o.name);
  return out;
}

const cases = [...backends, { name: 's3-conditional' as const, make: () => makeCompatS3() }];

describe.each(cases)('locks on $name', (backend) => {
  it('shared locks coexist; exclusive conflicts with them both ways; release removes them', async () => {
    const storage = await backend.make();
    const a = await RepoLock.acquire(storage, key, { exclusive: false });
    const b = await RepoLock.acquire(storage, key, { exclusive: false });
    await expect(RepoLock.acquire(storage, key, { exclusive: true })).rejects.toThrow(LockConflictError);
    await a.release();
    await b.release();
    expect(await lockNames(storage)).toEqual([]);
    const x = await RepoLock.acquire(storage, key, { exclusive: true });
    await expect(RepoLock.acquire(storage, key, { exclusive: false })).rejects.toThrow(/exclusive lock held by .* pid \d+/);
    await expect(RepoLock.acquire(storage, key, { exclusive: true })).rejects.toThrow(LockConflictError);
    await x.refresh();
    await x.release();
    expect(await lockNames(storage)).toEqual([]);
  });

  it('stale locks (too old, or from a dead process on this host) do not conflict and are removed, with a message', async () => {
    const storage = await backend.make();
    const base = { hostname: 'elsewhere', username: 'u', pid: 1, uid: 0, gid: 0, nonce: 'n', exclusive: true };
    const old = { ...base, time: new Date(Date.now() - 31 * 60 * 1000).toISOString() };
    await storage.put(`locks/${'a'.repeat(64)}`, sealJson(key, 'lock', old));
    const dead = { ...base, hostname: os.hostname(), pid: 2 ** 22 + 12345, time: new Date().toISOString() };
    await storage.put(`locks/${'b'.repeat(64)}`, sealJson(key, 'lock', dead));
    const removed: string[] = [];
    const l = await RepoLock.acquire(storage, key, { exclusive: true, onStaleRemoved: (m) => removed.push(m) });
    await l.release();
    expect(removed).toHaveLength(2);
    expect(removed).toEqual(expect.arrayContaining([
      expect.stringMatching(/^removed stale exclusive lock held by u@elsewhere pid 1 since /),
      expect.stringMatching(new RegExp(`^removed stale exclusive lock held by u@${os.hostname()} pid ${2 ** 22 + 12345} since `)),
    ]));
    expect(await listLocks(storage, key)).toEqual([]);
    // a live lock elsewhere conflicts and stays
    const fresh = { ...base, time: new Date().toISOString() };
    await storage.put(`locks/${'c'.repeat(64)}`, sealJson(key, 'lock', fresh));
    await expect(RepoLock.acquire(storage, key, { exclusive: false })).rejects.toThrow(/elsewhere/);
    expect((await listLocks(storage, key)).length).toBe(1);
  });

  it('--retry-lock waits for a lock that is released meanwhile', async () => {
    const storage = await backend.make();
    const held = await RepoLock.acquire(storage, key, { exclusive: true });
    setTimeout(() => void held.release(), 300);
    const l = await RepoLock.acquire(storage, key, { exclusive: false, retryMs: 20_000 });
    expect(l.exclusive).toBe(false);
    await l.release();
  });

  it('--retry-lock keeps trying for the whole duration before giving up', async () => {
    const storage = await backend.make();
    const held = await RepoLock.acquire(storage, key, { exclusive: true });
    try {
      const started = Date.now();
      // backoff 0.5-1 s then 1-2 s: the second wait is cut to end at the deadline, then one last try
      await expect(RepoLock.acquire(storage, key, { exclusive: false, retryMs: 2500 })).rejects.toThrow(/already locked/);
      expect(Date.now() - started).toBeGreaterThanOrEqual(2500);
    } finally {
      await held.release();
    }
  });

  it('of concurrent exclusive lockers at most one wins', async () => {
    const storage = await backend.make();
    const results = await Promise.allSettled(
      Array.from({ length: 6 }, () => RepoLock.acquire(storage, key, { exclusive: true, sleep: fastSleep })),
    );
    const won = results.filter((r) => r.status === 'fulfilled');
    expect(won.length).toBeLessThanOrEqual(1);
    for (const r of won) await (r as PromiseFulfilledResult<RepoLock>).value.release();
  });

  it('a deferred shared lock (S3) goes ahead at once; a conflict in its second listing rejects `confirmed` and removes it', async () => {
    const storage = await backend.make();
    const late = { hostname: 'elsewhere', username: 'u', pid: 1, uid: 0, gid: 0, nonce: 'n', exclusive: true, time: new Date().toISOString() };
    const lateName = `locks/${'d'.repeat(64)}`;
    let wrote = false;
    // an exclusive lock that was written before ours but only shows up in the second listing
    const sleep = async () => {
      await storage.put(lateName, sealJson(key, 'lock', late));
      wrote = true;
    };
    const l = await RepoLock.acquire(storage, key, { exclusive: false, deferCheck: true, sleep });
    if (storage.consistentListing) {
      // a local repository's listing is complete at once: nothing to defer, no wait, no second listing to fail
      await l.confirmed;
      expect(wrote).toBe(false);
      await l.release();
      return;
    }
    await expect(l.confirmed).rejects.toThrow(/already locked: exclusive lock held by u@elsewhere pid 1/);
    await expect(l.confirmed).rejects.toBeInstanceOf(LockConflictError);
    expect(await lockNames(storage)).toEqual([lateName]);
    await l.release(); // nothing left to release: no error
    await storage.delete(lateName);
    // without a conflict it is confirmed, and released as usual
    const ok = await RepoLock.acquire(storage, key, { exclusive: false, deferCheck: true, sleep: fastSleep });
    await ok.confirmed;
    expect(await lockNames(storage)).toEqual([ok.name]);
    await ok.release();
    expect(await lockNames(storage)).toEqual([]);
    // exclusive locks and --retry-lock never defer: the conflict comes from acquire itself
    const sleepThenConflict = async () => {
      await storage.put(lateName, sealJson(key, 'lock', late));
    };
    await expect(RepoLock.acquire(storage, key, { exclusive: true, deferCheck: true, sleep: sleepThenConflict })).rejects.toThrow(LockConflictError);
    expect(await lockNames(storage)).toEqual([lateName]);
  });
});
