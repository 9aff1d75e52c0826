/**
 * Read-ahead for the small files of a directory being backed up. The seal-pool workers read
 * small files whole (small-files.ts), each read a disk round trip on a cold page cache during
 * which the worker's core has nothing to do. As the walk starts the files of a directory, the
 * next few dozen that will be read are handed to the kernel (posix_fadvise WILLNEED, in libuv's
 * thread pool through the native helper), so their reads find the page cache filled: the disk
 * works ahead of the CPUs instead of between them.
 */
import type { BigIntStats } from 'node:fs';
import { willNeedMany } from '../native/index.js';

/** Files advised ahead of the walk, at most (each ≤ SYNC_READ_MAX: ≤ 16 MiB of page cache). */
export const READ_AHEAD_FILES = 64;
/** Paths per call into the thread pool: half the window, so a directory costs few calls. */
const BATCH = READ_AHEAD_FILES / 2;

export interface ReadAheadCandidate {
  /** The entry's position in the walk's order. */
  at: number;
  p: Buffer;
}

export class ReadAhead {
  private next = 0;

  /** `files`: the entries the walk will read, in its order; `advise` is for tests. */
  constructor(
    private readonly files: ReadAheadCandidate[],
    private readonly advise: (paths: Buffer[]) => Promise<number> = willNeedMany,
  ) {}

  /** The walk is starting entry `at`: keeps READ_AHEAD_FILES / 2 to READ_AHEAD_FILES files advised beyond it. */
  advance(at: number): void {
    const files = this.files;
    if (this.next >= files.length || files[this.next]!.at - at >= BATCH) return;
    const batch: Buffer[] = [];
    while (this.next < files.length && batch.length < BATCH) batch.push(files[this.next++]!.p);
    this.advise(batch).catch(() => 0);
  }
}

/** Whether a file's content will be read by a backup: small, not empty, new or changed. */
export function readAheadWorthy(st: BigIntStats, unchanged: boolean, maxSize: number): boolean {
  return st.isFile() && st.size > 0n && st.size <= BigInt(maxSize) && !unchanged;
}
