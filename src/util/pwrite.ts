/**
 * Positioned writes of restored bytes into files the restore opened, synchronously: used by the
 * seal pool's workers, which write each opened blob into the files that hold it (restore; the
 * descriptors are the process's, opened by the calling thread), by an inline pool, and by the
 * restore's own fallback path in the calling thread. A sparse file's all-zero 4 KiB blocks
 * (aligned in the file) are skipped, leaving holes; the caller truncates the file to its size at
 * the end.
 */
import fs from 'node:fs';
import { getSystemErrorMap } from 'node:util';

/** Where one blob's plaintext goes: an open descriptor and the offset in that file. */
export interface WriteTarget {
  fd: number;
  offset: number;
  /** Leave all-zero 4 KiB blocks as holes. */
  sparse: boolean;
}

const BLOCK = 4096;
const ZERO_BLOCK = Buffer.alloc(BLOCK);

/** Writes all of data[start, start+length) at `position`, however many calls it takes. */
function pwriteAllSync(fd: number, data: Uint8Array, start: number, length: number, position: number): void {
  let done = 0;
  while (done < length) {
    const n = fs.writeSync(fd, data, start + done, length - done, position + done);
    if (n <= 0) throw new Error('short write');
    done += n;
  }
}

/** Writes `data` at `target.offset` (sparse-aware). Throws the fs error. */
export function writeTargetSync(target: WriteTarget, data: Buffer): void {
  if (!target.sparse) {
    pwriteAllSync(target.fd, data, 0, data.length, target.offset);
    return;
  }
  let run = -1;
  let pos = 0;
  while (pos < data.length) {
    const next = Math.min(data.length, pos + (BLOCK - ((target.offset + pos) % BLOCK)));
    const zero = data.subarray(pos, next).equals(ZERO_BLOCK.subarray(0, next - pos));
    if (!zero && run < 0) run = pos;
    if (zero && run >= 0) {
      pwriteAllSync(target.fd, data, run, pos - run, target.offset + run);
      run = -1;
    }
    pos = next;
  }
  if (run >= 0) pwriteAllSync(target.fd, data, run, data.length - run, target.offset + run);
}

/** Writes one blob's plaintext to each of its targets: per target null or why it failed. */
export function writeBlobSync(data: Buffer, targets: WriteTarget[]): Array<string | null> {
  return targets.map((t) => {
    try {
      writeTargetSync(t, data);
      return null;
    } catch (e) {
      return fsErrorText(e);
    }
  });
}

/** An fs error in one short line: "ENOSPC (write): no space left on device"; else its message. */
export function fsErrorText(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  if (!(err.code && err.syscall)) return err.message ?? String(e);
  const what = typeof err.errno === 'number' ? getSystemErrorMap().get(err.errno)?.[1] : undefined;
  return `${err.code} (${err.syscall})${what ? `: ${what}` : ''}`;
}
