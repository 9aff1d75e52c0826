/**
 * Reading one regular file for a backup: open without following links (and without blocking
 * on a FIFO swapped in after the walk saw a file), stat before and after reading, and read
 * once more when the file changed meanwhile. The bytes go to a ContentSink (the repository's
 * write path, or a dry-run hasher).
 */
import fs from 'node:fs';
import type { BigIntStats } from 'node:fs';
import { NotRegularError, openForBackupSync, sameStat, type NodeStat } from '../util/small-file.js';

export { NotRegularError };

/** Largest single read; each read gets a fresh buffer (the chunker may keep views into it). */
export const READ_MAX = 8 * 1024 * 1024;

export interface SinkResult {
  ids: Buffer[];
  size: number;
  newBytes: number;
  storedBytes: number;
}

export type ContentSink = (source: AsyncIterable<Buffer> | Iterable<Buffer>) => Promise<SinkResult>;

/**
 * Files up to this size (by the walk's lstat) are opened, stat'ed, read and closed with
 * synchronous calls: for a small file in the page cache the five libuv thread-pool round trips
 * (and a FileHandle each) of the async path cost far more than the syscalls themselves
 * (bench/backup.ts, 10,000 files of 1–20 KiB). The price is that a slow file system (NFS, FUSE)
 * stalls the event loop for the few syscalls of one small file at a time.
 */
export const SYNC_READ_MAX = 256 * 1024;

export interface ReadResult extends SinkResult {
  /** fstat taken before the (last) read: the node's metadata. */
  stat: NodeStat;
  /** True when the file still changed during the second read (its bytes are kept anyway). */
  changedWhileReading: boolean;
  /** Number of times the file was read (1 or 2). */
  reads: number;
}

const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK, O_NOATIME } = fs.constants;

async function openForBackup(p: Buffer): Promise<fs.promises.FileHandle> {
  const flags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK;
  if (O_NOATIME) {
    try {
      return await fs.promises.open(p, flags | O_NOATIME);
    } catch (e) {
      // O_NOATIME needs ownership (or CAP_FOWNER)
      if ((e as NodeJS.ErrnoException).code !== 'EPERM') throw e;
    }
  }
  return fs.promises.open(p, flags);
}

/**
 * With `reuse`, every read goes into the same buffer: only for a consumer that is done with a
 * piece when it asks for the next (storeStream, whose chunker detaches its tail).
 */
async function* readAll(fh: fs.promises.FileHandle, sizeHint: number, onRead?: (n: number) => void, reuse = false): AsyncGenerator<Buffer> {
  let pos = 0;
  let shared: Buffer | null = null;
  for (;;) {
    const want = Math.min(READ_MAX, Math.max(4096, sizeHint - pos + 1));
    let buf: Buffer;
    if (reuse) {
      if (shared === null || shared.length < want) shared = Buffer.allocUnsafe(want);
      buf = shared.subarray(0, want);
    } else {
      buf = Buffer.allocUnsafe(want);
    }
    const { bytesRead } = await fh.read(buf, 0, want, pos);
    if (bytesRead === 0) return;
    pos += bytesRead;
    onRead?.(bytesRead);
    yield bytesRead === want ? buf : buf.subarray(0, bytesRead);
    // a short read past the size stat gave is the end of a regular file: saves one read per
    // small file (a file that grew is read on; one that read short is caught by readFile)
    if (bytesRead < want && pos >= sizeHint) return;
  }
}

/** The whole of a small file, read synchronously (see SYNC_READ_MAX); same rules as readAll. */
function readAllSync(fd: number, sizeHint: number): Buffer[] {
  const out: Buffer[] = [];
  let pos = 0;
  for (;;) {
    const want = Math.min(READ_MAX, Math.max(4096, sizeHint - pos + 1));
    const buf = Buffer.allocUnsafe(want);
    const bytesRead = fs.readSync(fd, buf, 0, want, pos);
    if (bytesRead === 0) return out;
    pos += bytesRead;
    out.push(bytesRead === want ? buf : buf.subarray(0, bytesRead));
    if (bytesRead < want && pos >= sizeHint) return out;
  }
}

/**
 * Reads and stores a file; throws fs errors (ENOENT, EACCES, EIO…) for the caller to report.
 * `sizeHint` (the walk's size) at most SYNC_READ_MAX: read with synchronous calls.
 */
export async function readFile(p: Buffer, sink: ContentSink, onRead?: (n: number) => void, sizeHint = Infinity, reuse = false): Promise<ReadResult> {
  if (sizeHint <= SYNC_READ_MAX) return readSmallFile(p, sink, onRead);
  for (let attempt = 1; ; attempt++) {
    const fh = await openForBackup(p);
    try {
      const before = await fh.stat({ bigint: true });
      if (!before.isFile()) throw new NotRegularError('not a regular file any more');
      const r = await sink(readAll(fh, Number(before.size), onRead, reuse));
      const after = await fh.stat({ bigint: true });
      // fewer bytes than stat said (and no stat change): read again, as for a change
      const changed = !sameStat(before, after) || r.size < Number(before.size);
      if (!changed || attempt >= 2) return { ...r, stat: before, changedWhileReading: changed, reads: attempt };
    } finally {
      await fh.close();
    }
  }
}

async function readSmallFile(p: Buffer, sink: ContentSink, onRead?: (n: number) => void): Promise<ReadResult> {
  for (let attempt = 1; ; attempt++) {
    const fd = openForBackupSync(p);
    let before: BigIntStats;
    let pieces: Buffer[];
    let after: BigIntStats;
    try {
      before = fs.fstatSync(fd, { bigint: true });
      if (!before.isFile()) throw new NotRegularError('not a regular file any more');
      // a file that grew past the sync limit meanwhile is still read whole here (rare)
      pieces = readAllSync(fd, Number(before.size));
      after = fs.fstatSync(fd, { bigint: true });
    } finally {
      fs.closeSync(fd);
    }
    if (onRead) for (const b of pieces) onRead(b.length);
    const r = await sink(pieces);
    const changed = !sameStat(before, after) || r.size < Number(before.size);
    if (!changed || attempt >= 2) return { ...r, stat: before, changedWhileReading: changed, reads: attempt };
  }
}
