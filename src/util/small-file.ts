/**
 * Opening and reading a file for a backup with synchronous calls: without following a link
 * swapped in after the walk, without blocking on a FIFO swapped in, and without updating atime
 * where permitted (O_NOATIME needs ownership or CAP_FOWNER). Shared by the main thread's path
 * for small files (engine/file-reader.ts) and the seal workers, which read small files whole
 * themselves (repo/seal-worker.ts), so that neither the reads nor the sealing of thousands of
 * small files occupy the thread that walks the tree.
 */
import fs from 'node:fs';
import type { BigIntStats } from 'node:fs';

const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK, O_NOATIME } = fs.constants;

/** The file is not (any more) a regular file. */
export class NotRegularError extends Error {}

export function openForBackupSync(p: Buffer): number {
  const flags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK;
  if (O_NOATIME) {
    try {
      return fs.openSync(p, flags | O_NOATIME);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EPERM') throw e;
    }
  }
  return fs.openSync(p, flags);
}

/** The same file with the same contents as far as stat can tell. */
export function sameStat(a: BigIntStats, b: BigIntStats): boolean {
  return a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs && a.ino === b.ino;
}

/** What a tree node records of a file's stat (a plain object: it crosses thread boundaries). */
export interface NodeStat {
  dev: bigint;
  ino: bigint;
  mode: bigint;
  nlink: bigint;
  uid: bigint;
  gid: bigint;
  rdev: bigint;
  size: bigint;
  blocks: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

export function nodeStat(st: BigIntStats): NodeStat {
  return {
    dev: st.dev, ino: st.ino, mode: st.mode, nlink: st.nlink, uid: st.uid, gid: st.gid, rdev: st.rdev,
    size: st.size, blocks: st.blocks, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs,
  };
}

export interface WholeRead {
  /** Bytes read, at the start of the caller's buffer. */
  length: number;
  /** fstat taken before the (last) read. */
  before: BigIntStats;
  /** The file still changed during the second read (its bytes are kept anyway). */
  changed: boolean;
  /** 1, or 2 when the first read saw the file change. */
  reads: number;
}

/**
 * Reads a whole file into `into` (from offset 0): stat before and after, once more when it
 * changed meanwhile. Returns null when the file holds more than `into.length - 1` bytes (the
 * caller reads it another way). Throws fs errors and NotRegularError.
 */
export function readWholeInto(p: Buffer, into: Buffer): WholeRead | null {
  for (let attempt = 1; ; attempt++) {
    const fd = openForBackupSync(p);
    let before: BigIntStats;
    let after: BigIntStats;
    let pos = 0;
    try {
      before = fs.fstatSync(fd, { bigint: true });
      if (!before.isFile()) throw new NotRegularError('not a regular file any more');
      const size = Number(before.size);
      if (size >= into.length) return null;
      for (;;) {
        const want = Math.min(into.length - pos, Math.max(4096, size - pos + 1));
        const n = fs.readSync(fd, into, pos, want, pos);
        pos += n;
        if (pos >= into.length) return null;
        // a short read at or past the size stat gave is the end of a regular file
        if (n === 0 || (n < want && pos >= size)) break;
      }
      after = fs.fstatSync(fd, { bigint: true });
    } finally {
      fs.closeSync(fd);
    }
    const changed = !sameStat(before, after) || pos < Number(before.size);
    if (!changed || attempt >= 2) return { length: pos, before, changed, reads: attempt };
  }
}
