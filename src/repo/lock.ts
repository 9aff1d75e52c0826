import os from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Storage } from '../storage/types.js';
import { StorageError } from '../storage/errors.js';
import { LockConflictError, IntegrityError } from './errors.js';
import { lockSchema, type LockInfo } from './formats.js';
import { openJson, sealJson } from './sealed.js';
import { pidAlive } from '../util/process.js';

/** Format §11. */
export const LOCK_STALE_MS = 30 * 60 * 1000;
export const LOCK_REFRESH_MS = 5 * 60 * 1000;
const LIST_AFTER_WRITE_WAIT_MS = 200;
const EXCLUSIVE_MARKER = 'locks/exclusive';

export interface LockEntry {
  name: string;
  info: LockInfo | null; // null: unreadable (kept as a conflict until stale by store mtime)
  mtimeMs: number;
}

export interface LockOptions {
  exclusive: boolean;
  /** Keep trying this long before giving up (ms); 0 = one attempt. */
  retryMs?: number;
  staleMs?: number;
  refreshMs?: number;
  sleep?: (ms: number) => Promise<void>;
  /** Told about each stale lock removed on the way (a dead process's, or one not refreshed in time). */
  onStaleRemoved?: (description: string) => void;
  /**
   * A shared lock on a store whose listings may lag (S3): return as soon as the lock is written
   * and make the second listing, 200 ms later, in the background — {@link RepoLock.confirmed}
   * settles with it. The caller must not write to the repository before it has resolved
   * (Repository.holdWritesUntil) and must report its rejection (the conflict) before anything
   * else. Ignored for exclusive locks and with `retryMs`.
   */
  deferCheck?: boolean;
}

const defaultSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function isStale(entry: LockEntry, now = Date.now(), staleMs = LOCK_STALE_MS): boolean {
  const t = entry.info ? Date.parse(entry.info.time) : entry.mtimeMs;
  if (!Number.isFinite(t) || now - t > staleMs) return true;
  if (entry.info && entry.info.hostname === os.hostname() && !pidAlive(entry.info.pid)) return true;
  return false;
}

export async function listLocks(storage: Storage, key: Uint8Array): Promise<LockEntry[]> {
  const out: LockEntry[] = [];
  for await (const o of storage.list('locks/')) {
    if (!/^locks\/([0-9a-f]{64}|exclusive)$/.test(o.name)) continue;
    let info: LockInfo | null = null;
    try {
      info = openJson(key, 'lock', o.name, await storage.get(o.name), lockSchema);
    } catch (e) {
      if (e instanceof StorageError && e.code === 'not-found') continue; // removed meanwhile
      if (!(e instanceof IntegrityError)) throw e;
    }
    out.push({ name: o.name, info, mtimeMs: o.mtimeMs });
  }
  return out;
}

/** Removes stale locks (or, with `all`, every lock); returns what was removed. */
export async function removeLocks(storage: Storage, key: Uint8Array, all: boolean, staleMs = LOCK_STALE_MS): Promise<LockEntry[]> {
  const removed: LockEntry[] = [];
  for (const l of await listLocks(storage, key)) {
    if (!all && !isStale(l, Date.now(), staleMs)) continue;
    await storage.delete(l.name);
    removed.push(l);
  }
  return removed;
}

export function describeLock(l: LockEntry): string {
  if (!l.info) return `${l.name} (unreadable)`;
  const kind = l.info.exclusive ? 'exclusive' : 'shared';
  return `${kind} lock held by ${l.info.username}@${l.info.hostname} pid ${l.info.pid} since ${l.info.time}`;
}

/** A lock held on a repository, refreshed in the background until released. */
export class RepoLock {
  private timer: NodeJS.Timeout | null = null;
  private released = false;
  private releasing: Promise<void> | undefined;
  /**
   * Resolves once no conflicting lock showed up in the listing after this one was written; rejects
   * with a LockConflictError (the lock removed again) when one did. Resolved from the start unless
   * the check was deferred (LockOptions.deferCheck).
   */
  confirmed: Promise<void> = Promise.resolve();

  private constructor(
    private readonly storage: Storage,
    private readonly key: Uint8Array,
    readonly name: string,
    private info: LockInfo,
    private readonly hasMarker: boolean,
    refreshMs: number,
  ) {
    this.timer = setInterval(() => void this.refresh().catch(() => undefined), refreshMs);
    this.timer.unref();
  }

  get exclusive(): boolean {
    return this.info.exclusive;
  }

  static async acquire(storage: Storage, key: Uint8Array, opts: LockOptions): Promise<RepoLock> {
    const sleep = opts.sleep ?? defaultSleep;
    const deadline = Date.now() + (opts.retryMs ?? 0);
    let delay = 1000;
    for (;;) {
      const r = await RepoLock.tryOnce(storage, key, opts, sleep);
      if (r instanceof RepoLock) return r;
      // --retry-lock D keeps trying for all of D: the last wait is cut to end at the deadline
      const left = deadline - Date.now();
      if (left <= 0) throw new LockConflictError(`repository is already locked: ${r}`);
      await sleep(Math.min(left, delay * (0.5 + Math.random() / 2)));
      delay = Math.min(delay * 2, 60_000);
    }
  }

  /** One attempt: the lock, or a description of what conflicts. */
  private static async tryOnce(
    storage: Storage,
    key: Uint8Array,
    opts: LockOptions,
    sleep: (ms: number) => Promise<void>,
  ): Promise<RepoLock | string> {
    const staleMs = opts.staleMs ?? LOCK_STALE_MS;
    const conflicts = (locks: LockEntry[], own?: string) =>
      locks.filter((l) => l.name !== own && !isStale(l, Date.now(), staleMs) && (opts.exclusive || !l.info || l.info.exclusive));

    const listed = await listLocks(storage, key);
    for (const l of listed) {
      if (!isStale(l, Date.now(), staleMs)) continue;
      await storage.delete(l.name);
      opts.onStaleRemoved?.(`removed stale ${describeLock(l)}`);
    }
    const before = conflicts(listed.filter((l) => !isStale(l, Date.now(), staleMs)));
    if (before.length > 0) return describeLock(before[0]!);

    const info: LockInfo = {
      time: new Date().toISOString(),
      exclusive: opts.exclusive,
      hostname: os.hostname(),
      username: safeUser(),
      pid: process.pid,
      uid: process.getuid?.() ?? 0,
      gid: process.getgid?.() ?? 0,
      nonce: randomBytes(8).toString('hex'),
    };
    const name = `locks/${randomBytes(32).toString('hex')}`;
    const bytes = sealJson(key, 'lock', info);
    await storage.ready?.();
    const conditional = storage.supportsConditionalPut;
    await storage.put(name, bytes, { ifNoneMatch: conditional, transient: true });
    let marker = false;
    if (opts.exclusive && conditional) {
      try {
        await storage.put(EXCLUSIVE_MARKER, bytes, { ifNoneMatch: true, transient: true });
        marker = true;
      } catch (e) {
        if (!(e instanceof StorageError && e.code === 'already-exists')) {
          await storage.delete(name);
          throw e;
        }
        // someone holds (or held) the marker: a live holder conflicts, a stale one is removed
        const existing = (await listLocks(storage, key)).find((l) => l.name === EXCLUSIVE_MARKER);
        await storage.delete(name);
        if (existing && !isStale(existing, Date.now(), staleMs)) return describeLock(existing);
        if (existing) await storage.delete(EXCLUSIVE_MARKER);
        return 'a stale exclusive lock was just removed; retry';
      }
    }
    const check = async (): Promise<string | null> => {
      if (!storage.consistentListing) await sleep(LIST_AFTER_WRITE_WAIT_MS);
      const after = conflicts(await listLocks(storage, key), name).filter((l) => !(marker && l.name === EXCLUSIVE_MARKER));
      if (after.length === 0) return null;
      await storage.delete(name);
      if (marker) await storage.delete(EXCLUSIVE_MARKER);
      return describeLock(after[0]!);
    };
    if (opts.deferCheck && !opts.exclusive && !opts.retryMs && !storage.consistentListing) {
      const lock = new RepoLock(storage, key, name, info, marker, opts.refreshMs ?? LOCK_REFRESH_MS);
      lock.confirmed = (async () => {
        let conflict: string | null;
        try {
          conflict = await check();
        } catch (e) {
          await lock.release().catch(() => undefined);
          throw e;
        }
        if (conflict !== null) {
          lock.dropped();
          throw new LockConflictError(`repository is already locked: ${conflict}`);
        }
      })();
      lock.confirmed.catch(() => undefined); // reported by whoever awaits it
      return lock;
    }
    const conflict = await check();
    if (conflict !== null) return conflict;
    return new RepoLock(storage, key, name, info, marker, opts.refreshMs ?? LOCK_REFRESH_MS);
  }

  /** The lock was removed by its own deferred check: nothing is left to refresh or release. */
  private dropped(): void {
    this.released = true;
    this.releasing = Promise.resolve();
    if (this.timer) clearInterval(this.timer);
  }

  /** Rewrites the lock with a fresh time so others do not consider it stale. */
  async refresh(): Promise<void> {
    if (this.released) return;
    this.info = { ...this.info, time: new Date().toISOString() };
    const bytes = sealJson(this.key, 'lock', this.info);
    await this.storage.put(this.name, bytes, { transient: true });
    if (this.hasMarker) await this.storage.put(EXCLUSIVE_MARKER, bytes, { transient: true });
  }

  /** Deletes the lock; a second call (a signal handler racing the normal path) waits for the first. */
  release(): Promise<void> {
    this.releasing ??= (async () => {
      this.released = true;
      if (this.timer) clearInterval(this.timer);
      await this.storage.delete(this.name);
      if (this.hasMarker) await this.storage.delete(EXCLUSIVE_MARKER);
    })();
    return this.releasing;
  }
}

function safeUser(): string {
  try {
    return os.userInfo().username;
  } catch {
    return '';
  }
}
