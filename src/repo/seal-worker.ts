/**
 * Worker thread of the seal pool (seal-pool.ts): turns chunks into sealed blobs with
 * {@link sealBlob} — HMAC id (unless the id is given), zstd payload, XChaCha20-Poly1305 with
 * AD = id. No crypto of its own: exactly the code the main thread would run.
 *
 * Protocol (all messages on the worker's parent port):
 *   workerData: { encryption, blobId: Uint8Array (the two subkeys, sent once), level?: number }
 *   ← { kind: 'ready' } once libsodium and zstd are loaded
 *   → SealTask   { seq, type, buf: ArrayBuffer (transferred), len, id: Uint8Array | null }
 *   ← SealDone   { seq, id: ArrayBuffer(32), sealed: ArrayBuffer, rawLength, buf } with `buf`
 *                transferred back so the pool can reuse it, and `sealed`/`id` transferred too
 *   ← SealFailed { seq, message, buf }
 *   → PackTask   { kind: 'pack', seq, parts: Uint8Array[] (transferred when they own their memory), size,
 *                  into: a used pack buffer to reuse, or null }
 *   ← PackDone   { seq, bytes: ArrayBuffer (the joined pack in its first `size` bytes, transferred), id }
 */
import { createHash } from 'node:crypto';
import { readlinkSync } from 'node:fs';
import os from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { sealBlob, type BlobType } from './blob.js';
import { getSodium } from './sodium.js';

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
}

export interface SealDone {
  kind: 'done';
  seq: number;
  id: ArrayBuffer;
  sealed: ArrayBuffer;
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
}

/** Room for any pack (16 MiB target plus one blob's worth of slack), so buffers can be reused. */
const PACK_BUFFER_MIN = 17 * 1024 * 1024;

/** An ArrayBuffer holding exactly `b`'s bytes: `b`'s own buffer when it spans all of it, else a copy. */
function ownBuffer(b: Uint8Array): ArrayBuffer {
  if (b.byteOffset === 0 && b.byteLength === b.buffer.byteLength && b.buffer instanceof ArrayBuffer) return b.buffer;
  const copy = new Uint8Array(b.byteLength);
  copy.set(b);
  return copy.buffer;
}

async function main(): Promise<void> {
  const port = parentPort;
  if (port === null) throw new Error('seal-worker must run in a worker thread');
  await getSodium();
  const data = workerData as SealWorkerData;
  const keys = { encryption: Buffer.from(data.encryption), blobId: Buffer.from(data.blobId) };
  const level = data.level;
  lowerPriority(data.nice ?? 0);
  port.on('message', (task: SealTask | PackTask) => {
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
        const done: PackDone = { kind: 'packed', seq: task.seq, bytes: buf, id };
        port.postMessage(done, [buf]);
      } catch (e) {
        const failed: SealFailed = { kind: 'failed', seq: task.seq, message: e instanceof Error ? e.message : String(e), buf: null };
        port.postMessage(failed);
      }
      return;
    }
    const chunk = Buffer.from(task.buf, 0, task.len);
    try {
      const id = task.id === null ? undefined : Buffer.from(task.id.buffer, task.id.byteOffset, task.id.byteLength);
      const blob = sealBlob(keys, task.type, chunk, id, level);
      const sealed = ownBuffer(blob.sealed);
      const idBuf = ownBuffer(blob.id);
      const done: SealDone = { kind: 'done', seq: task.seq, id: idBuf, sealed, rawLength: blob.rawLength, buf: task.buf };
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
