/**
 * Worker thread of the seal pool (seal-pool.ts): turns chunks into sealed blobs with
 * {@link sealBlobInto} — HMAC id (unless the id is given), zstd payload, XChaCha20-Poly1305 with
 * AD = id. No crypto of its own: exactly the code the main thread would run.
 *
 * Protocol (all messages on the worker's parent port):
 *   workerData: { encryption, blobId: Uint8Array (the two subkeys, sent once), level?: number }
 *   ← { kind: 'ready' } once zstd is loaded
 *   → SealTask   { seq, type, buf: ArrayBuffer (transferred), len, id: Uint8Array | null,
 *                  spare: ArrayBuffer[] (used sealed-blob buffers to seal into, transferred) }
 *   ← SealDone   { seq, id: ArrayBuffer(32), sealed: ArrayBuffer, sealedLength, rawLength, buf }
 *                with `buf` transferred back so the pool can reuse it, and `sealed` (the blob in
 *                its first sealedLength bytes: a spare or a new buffer) and `id` transferred too
 *   ← SealFailed { seq, message, buf }
 *   → PackTask   { kind: 'pack', seq, parts: Uint8Array[] (transferred when they own their memory), size,
 *                  into: a used pack buffer to reuse, or null }
 *   ← PackDone   { seq, bytes: ArrayBuffer (the joined pack in its first `size` bytes, transferred), id,
 *                  recycled: the large parts' buffers, now free (transferred, to become spares) }
 *   → OpenTask   { kind: 'open', seq, buf: ArrayBuffer (a range of a pack, transferred), blobs, rawTotal,
 *                  into: a used output buffer to reuse, or null, where }
 *   ← OpenDone   { seq, out: ArrayBuffer (each blob's verified plaintext at the sum of the previous
 *                  blobs' raw lengths), errors: per blob null or a message, buf (handed back) }
 *                With OpenTask.writes (restore: per blob, open fds and offsets) the worker writes
 *                each opened blob into those files itself (util/pwrite.ts) and answers with
 *                out: null and writeErrors (per blob and target, null or a message)
 *   → FileTask   { kind: 'file', seq, path (bytes), limit, spare }: read a small file whole here
 *                  (util/small-file.ts: stat before and after, read again if it changed) and seal
 *                  it as one blob — a file below the chunker's minimum size is exactly one chunk
 *   ← FileDone   { seq, read: { stat, changed, reads, size } or null (larger than limit: nothing
 *                  read, the caller reads it), id, sealed, sealedLength (null/0 for an empty file) }
 *   ← FileFailed { seq, message, code (errno code or null), notRegular }
 */
import { createHash } from 'node:crypto';
import { readlinkSync } from 'node:fs';
import os from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { openBlobsInto, outputSize, sealBlobInto, type BlobType } from './blob.js';
import { NotRegularError, nodeStat, readWholeInto, type NodeStat } from '../util/small-file.js';
import type { WriteTarget } from '../util/pwrite.js';
import { openAndWriteBlobs } from './open-write.js';

export interface SealWorkerData {
  encryption: Uint8Array;
  blobId: Uint8Array;
  level?: number;
  /** Niceness to add to this thread (Linux), so the main thread wins the CPU when it needs it. */
  nice?: number;
}

/**
 * Lowers this thread's scheduling priority by `inc` (Linux only: setpriority on the thread's own
 * id, found through /proc/thread-self; elsewhere, or if not permitted, nothing happens).
 */
function lowerPriority(inc: number): void {
  if (!(inc > 0) || process.platform !== 'linux') return;
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (!Number.isInteger(tid) || tid <= 0) return;
    os.setPriority(tid, Math.min(19, os.getPriority(tid) + inc));
  } catch {
    // not fatal: only scheduling changes
  }
}

export interface SealTask {
  kind: 'seal';
  seq: number;
  type: BlobType;
  /** Holds the chunk in its first `len` bytes. */
  buf: ArrayBuffer;
  len: number;
  /** The blob id when the caller computed it already (dedup short-cut), else null. */
  id: Uint8Array | null;
  /** Used sealed-blob buffers handed back for this worker to seal into (transferred); may be empty. */
  spare: ArrayBuffer[];
}

export interface SealDone {
  kind: 'done';
  seq: number;
  id: ArrayBuffer;
  /** Holds the sealed blob in its first `sealedLength` bytes (may be longer: a recycled buffer). */
  sealed: ArrayBuffer;
  sealedLength: number;
  rawLength: number;
  buf: ArrayBuffer;
}

export interface SealFailed {
  kind: 'failed';
  seq: number;
  message: string;
  buf: ArrayBuffer | null;
}

/** Join a pack's parts and hash it (format §6: the pack id is the SHA-256 of its bytes). */
export interface PackTask {
  kind: 'pack';
  seq: number;
  parts: Uint8Array[];
  size: number;
  /** A used pack buffer to fill when it is large enough (saves a fresh, page-faulting allocation). */
  into: ArrayBuffer | null;
}

export interface PackDone {
  kind: 'packed';
  seq: number;
  /** Holds the pack in its first `size` bytes. */
  bytes: ArrayBuffer;
  id: string;
  /** The large parts' buffers (sealed blobs), joined now and free for reuse (transferred). */
  recycled: ArrayBuffer[];
}

/**
 * Open (decrypt, decode, verify against its id) the blobs of one range of a pack, for restore:
 * {@link openBlobInto} for each, into one output buffer.
 */
export interface OpenTask {
  kind: 'open';
  seq: number;
  /** The range's bytes (in its first `len` bytes). */
  buf: ArrayBuffer;
  len: number;
  /** Each blob: its id, where its sealed bytes are in `buf`, and its plaintext length (index). */
  blobs: Array<{ id: Uint8Array; offset: number; length: number; rawLength: number }>;
  /** Sum of the blobs' raw lengths: the output's size. */
  rawTotal: number;
  /** A used output buffer to fill when it is large enough. */
  into: ArrayBuffer | null;
  /** The pack's name, for error messages. */
  where: string;
  /**
   * Restore: where each blob goes (open descriptors of the files being restored, offsets);
   * the worker writes them itself, into its own scratch output, and sends no plaintext back.
   */
  writes: WriteTarget[][] | null;
}

export interface OpenDone {
  kind: 'opened';
  seq: number;
  /**
   * Blob i's plaintext at the sum of the raw lengths before it (valid only where errors[i] is
   * null); null when the task gave `writes` (the worker wrote the blobs itself).
   */
  out: ArrayBuffer | null;
  errors: Array<string | null>;
  /** With `writes`: per blob and target, null or why writing it failed. */
  writeErrors: Array<Array<string | null>> | null;
  buf: ArrayBuffer;
}

export interface FileTask {
  kind: 'file';
  seq: number;
  /** The file's path, raw bytes (names need not be UTF-8). */
  path: Uint8Array;
  /** Largest file read here; a larger one is left to the caller. */
  limit: number;
  spare: ArrayBuffer[];
}

export interface FileDone {
  kind: 'file-done';
  seq: number;
  /** null: the file holds more than `limit` bytes, and nothing was stored. */
  read: { stat: NodeStat; changed: boolean; reads: number; size: number } | null;
  /** The blob of the file's bytes; null for an empty file (or when read is null). */
  id: ArrayBuffer | null;
  sealed: ArrayBuffer | null;
  sealedLength: number;
}

export interface FileFailed {
  kind: 'file-failed';
  seq: number;
  message: string;
  /** The fs error's code (ENOENT, EACCES, ELOOP…), or null. */
  code: string | null;
  /** The path is not a regular file any more (NotRegularError). */
  notRegular: boolean;
}

/** Room for any pack (16 MiB target plus one blob's worth of slack), so buffers can be reused. */
const PACK_BUFFER_MIN = 17 * 1024 * 1024;

/** Parts at least this large go back to the pool after joining, to be sealed into again. */
export const RECYCLE_MIN = 64 * 1024;
/** Sealed-blob output buffers are allocated in steps of this size, so they fit later blobs. */
const OUT_STEP = 64 * 1024;
/** Spare output buffers kept by a worker, at most. */
const MAX_SPARE = 8;

/**
 * Spare output buffers of this worker (handed back by the pool once their pack was joined).
 * Sealing into a used buffer instead of a fresh one saves the page faults of touching new
 * memory (≈ 256 per MiB) and the GC of external memory across isolates.
 */
const spare: ArrayBuffer[] = [];

/** An output buffer for `n` bytes: the tightest spare that isn't much larger, else a new one. */
function takeOut(n: number): ArrayBuffer {
  let best = -1;
  const limit = n + (n >>> 1) + OUT_STEP;
  for (let i = 0; i < spare.length; i++) {
    const len = spare[i]!.byteLength;
    if (len >= n && len <= limit && (best < 0 || len < spare[best]!.byteLength)) best = i;
  }
  if (best >= 0) return spare.splice(best, 1)[0]!;
  // a small blob gets exactly its size: rounded up to OUT_STEP, each of a pack's thousands of
  // small blobs (small files) held 64 KiB until the pack was joined (≈ 300 MiB RSS per pack),
  // and buffers that small are never recycled (RECYCLE_MIN) anyway
  if (n < OUT_STEP) return new ArrayBuffer(n);
  return new ArrayBuffer(Math.ceil(n / OUT_STEP) * OUT_STEP);
}

function addSpare(bufs: ArrayBuffer[]): void {
  for (const b of bufs) {
    spare.push(b);
    if (spare.length > MAX_SPARE) spare.shift(); // the oldest goes to the garbage collector
  }
}

/** An ArrayBuffer holding exactly `b`'s bytes: `b`'s own buffer when it spans all of it, else a copy. */
function ownBuffer(b: Uint8Array): ArrayBuffer {
  if (b.byteOffset === 0 && b.byteLength === b.buffer.byteLength && b.buffer instanceof ArrayBuffer) return b.buffer;
  const copy = new Uint8Array(b.byteLength);
  copy.set(b);
  return copy.buffer;
}

/** Runs an {@link OpenTask}: the message to post back and its transfer list. */
function openRange(keys: { encryption: Uint8Array; blobId: Uint8Array }, task: OpenTask): [OpenDone, ArrayBuffer[]] {
  if (task.writes !== null) {
    // opened one blob at a time and written from here: no plaintext crosses threads
    const r = openAndWriteBlobs(keys, Buffer.from(task.buf, 0, task.len), task.blobs, task.writes, task.where);
    const done: OpenDone = { kind: 'opened', seq: task.seq, out: null, errors: r.errors, writeErrors: r.writeErrors, buf: task.buf };
    return [done, [task.buf]];
  }
  const out = task.into !== null && task.into.byteLength >= task.rawTotal && task.into !== task.buf
    ? task.into
    : new ArrayBuffer(outputSize(task.rawTotal));
  const errors = openBlobsInto(keys, Buffer.from(task.buf, 0, task.len), task.blobs, Buffer.from(out), task.where);
  const done: OpenDone = { kind: 'opened', seq: task.seq, out, errors, writeErrors: null, buf: task.buf };
  return [done, out === task.buf ? [task.buf] : [out, task.buf]];
}

/** This thread's read buffer for small files (they are sealed out of it at once). */
let fileScratch: Buffer | null = null;

/** Runs a {@link FileTask}: the message to post back and its transfer list. */
function readAndSeal(keys: { encryption: Uint8Array; blobId: Uint8Array }, level: number | undefined,
                     task: FileTask): [FileDone | FileFailed, ArrayBuffer[]] {
  addSpare(task.spare);
  const none = { id: null, sealed: null, sealedLength: 0 };
  try {
    if (fileScratch === null || fileScratch.length < task.limit + 1) fileScratch = Buffer.allocUnsafe(task.limit + 1);
    const into = fileScratch.subarray(0, task.limit + 1);
    const r = readWholeInto(Buffer.from(task.path.buffer, task.path.byteOffset, task.path.byteLength), into);
    if (r === null) return [{ kind: 'file-done', seq: task.seq, read: null, ...none }, []];
    const read = { stat: nodeStat(r.before), changed: r.changed, reads: r.reads, size: r.length };
    if (r.length === 0) return [{ kind: 'file-done', seq: task.seq, read, ...none }, []];
    const blob = sealBlobInto(keys, into.subarray(0, r.length), undefined, level, takeOut);
    const { sealed } = blob;
    const id = ownBuffer(blob.id);
    const done: FileDone = { kind: 'file-done', seq: task.seq, read, id, sealed, sealedLength: blob.sealedLength };
    return [done, id === sealed ? [sealed] : [sealed, id]];
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const failed: FileFailed = {
      kind: 'file-failed', seq: task.seq, message: err instanceof Error ? err.message : String(e),
      code: typeof err?.code === 'string' ? err.code : null, notRegular: e instanceof NotRegularError,
    };
    return [failed, []];
  }
}

async function main(): Promise<void> {
  const port = parentPort;
  if (port === null) throw new Error('seal-worker must run in a worker thread');
  const data = workerData as SealWorkerData;
  const keys = { encryption: Buffer.from(data.encryption), blobId: Buffer.from(data.blobId) };
  const level = data.level;
  lowerPriority(data.nice ?? 0);
  port.on('message', (task: SealTask | PackTask | OpenTask | FileTask) => {
    if (task.kind === 'file') {
      port.postMessage(...readAndSeal(keys, level, task));
      return;
    }
    if (task.kind === 'open') {
      try {
        port.postMessage(...openRange(keys, task));
      } catch (e) {
        const failed: SealFailed = { kind: 'failed', seq: task.seq, message: e instanceof Error ? e.message : String(e), buf: task.buf };
        port.postMessage(failed, [task.buf]);
      }
      return;
    }
    if (task.kind === 'pack') {
      try {
        const buf = task.into !== null && task.into.byteLength >= task.size
          ? task.into
          : new ArrayBuffer(Math.max(task.size, PACK_BUFFER_MIN));
        const bytes = new Uint8Array(buf, 0, task.size);
        let pos = 0;
        for (const part of task.parts) {
          bytes.set(part, pos);
          pos += part.length;
        }
        if (pos !== task.size) throw new Error(`pack parts hold ${pos} bytes, expected ${task.size}`);
        const id = createHash('sha256').update(bytes).digest('hex');
        const recycled: ArrayBuffer[] = [];
        for (const part of task.parts) {
          const ab = part.buffer;
          if (ab instanceof ArrayBuffer && ab !== buf && ab.byteLength >= RECYCLE_MIN && !recycled.includes(ab)) recycled.push(ab);
        }
        const done: PackDone = { kind: 'packed', seq: task.seq, bytes: buf, id, recycled };
        port.postMessage(done, [buf, ...recycled]);
      } catch (e) {
        const failed: SealFailed = { kind: 'failed', seq: task.seq, message: e instanceof Error ? e.message : String(e), buf: null };
        port.postMessage(failed);
      }
      return;
    }
    const chunk = Buffer.from(task.buf, 0, task.len);
    try {
      const id = task.id === null ? undefined : Buffer.from(task.id.buffer, task.id.byteOffset, task.id.byteLength);
      addSpare(task.spare);
      const blob = sealBlobInto(keys, chunk, id, level, takeOut);
      const { sealed } = blob;
      const idBuf = ownBuffer(blob.id);
      const done: SealDone = {
        kind: 'done', seq: task.seq, id: idBuf, sealed, sealedLength: blob.sealedLength, rawLength: task.len, buf: task.buf,
      };
      const transfer: ArrayBuffer[] = [task.buf, sealed];
      if (idBuf !== sealed && idBuf !== task.buf) transfer.push(idBuf);
      port.postMessage(done, transfer);
    } catch (e) {
      const failed: SealFailed = { kind: 'failed', seq: task.seq, message: e instanceof Error ? e.message : String(e), buf: task.buf };
      port.postMessage(failed, [task.buf]);
    }
  });
  port.postMessage({ kind: 'ready' });
}

await main();
