/**
 * The write path of one stream (a file, stdin, a database dump):
 *
 *   source buffers → Chunker (FastCDC) → [id = HMAC-SHA-256 here, skip known blobs]
 *     → SealPool (zstd + XChaCha20-Poly1305, worker threads) → Repository.addSealedBlob
 *     (packs of ~16 MiB, uploaded with bounded concurrency)
 *
 * and returns the stream's content list: blob ids in order. Call `repo.flush()` before writing
 * anything that names these blobs (a tree, a snapshot). Unless the repository has one already,
 * the pool also becomes its pack assembler (SealPool.attachTo): finished packs are joined and
 * SHA-256-hashed in a worker, into reused buffers.
 *
 * Memory stays flat: at most `pool.maxInFlight` chunks are sealed or waiting to be packed per
 * stream (and the pool bounds the bytes across streams), the packer holds one pack, and
 * Repository bounds the packs being uploaded. Several streams may share one pool and one
 * repository concurrently; each gets its blobs packed in its own order.
 */
import { Chunker, type ChunkerParams } from './chunker.js';
import { blobId } from './keys-derive.js';
import type { BlobType, SealedBlob } from './blob.js';
import type { Repository } from './repository.js';
import type { SealPool } from './seal-pool.js';
import { toHex } from '../util/hex.js';

export interface StoreOptions {
  /** Blob type; 'data' for file content. */
  type?: BlobType;
  /**
   * Where blob ids are computed (default 'auto'):
   *   true   in this thread, before sealing, so chunks the repository already has are never
   *          compressed or encrypted (the dedup short-cut);
   *   false  in the worker, with the sealing: this thread only chunks and packs, and
   *          duplicates are dropped when packed (after being sealed for nothing);
   *   'auto' per chunk: this thread hashes while recent chunks were often duplicates, or while
   *          it has been waiting for the workers (they are the bottleneck, e.g. compressible
   *          data); otherwise the workers hash (this thread is the bottleneck, e.g.
   *          incompressible new data). With an inline pool both are the same thread: true.
   */
  hashFirst?: boolean | 'auto';
  /** Chunker parameters (the repository's; default format §5). */
  chunker?: ChunkerParams;
  /** Called after each chunk is packed or found to be a duplicate, with the stream bytes done. */
  onProgress?: (bytesDone: number) => void;
}

export interface StoreResult {
  /** Blob ids of the stream's chunks, in order (the file's `content`). */
  ids: Buffer[];
  /** Plaintext length of each chunk, parallel to `ids`. */
  lengths: number[];
  /** Bytes read from the source. */
  size: number;
  /** Chunks whose blobs were new to the repository, and their plaintext bytes. */
  newChunks: number;
  newBytes: number;
  /** Sealed bytes added to packs for the new blobs (before the pack header). */
  storedBytes: number;
}

interface Queued {
  index: number;
  length: number;
  /** null: a known blob, nothing to seal. */
  sealing: Promise<SealedBlob> | null;
  hex: string | null;
}

/**
 * The 'auto' policy's state: moving averages over recent chunks (weight 1/16 each) of how often
 * a chunk was a duplicate, and of the share of time this thread spent waiting for sealed results
 * (as opposed to chunking, hashing and packing). A result counts as waited for only when the
 * wait was real: a message already queued costs microseconds to receive.
 */
class HashPolicy {
  private dup = 0;
  private idle = 0;
  private last = process.hrtime.bigint();
  static readonly ALPHA = 1 / 16;
  /** Hash here when at least this share of recent chunks were duplicates… */
  static readonly DUP_THRESHOLD = 0.1;
  /**
   * …or when this thread was idle at least this share of the time: hashing costs it about
   * 0.6 ns per byte against 2–3 ns per byte of chunking and packing, so it fits in that slack.
   */
  static readonly IDLE_THRESHOLD = 0.15;

  hashHere(): boolean {
    return this.dup >= HashPolicy.DUP_THRESHOLD || this.idle >= HashPolicy.IDLE_THRESHOLD;
  }

  sawChunk(duplicate: boolean): void {
    this.dup += HashPolicy.ALPHA * ((duplicate ? 1 : 0) - this.dup);
  }

  /** Around the wait for each sealed result: `waitStart` is when the wait began. */
  sawResult(waitStart: bigint): void {
    const now = process.hrtime.bigint();
    const total = Number(now - this.last);
    this.last = now;
    if (total <= 0) return;
    const waited = Number(now - waitStart);
    this.idle += HashPolicy.ALPHA * (waited / total - this.idle);
  }
}

/**
 * Chunks, seals and packs `source`; returns the ordered blob ids. The pool may be inline
 * (workers 0/1) or shared with other streams. On error the stream is abandoned (its blobs
 * packed so far stay in the repository's packs) and the error is thrown after outstanding
 * work has settled.
 */
export async function storeStream(
  repo: Repository,
  pool: SealPool,
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  opts: StoreOptions = {},
): Promise<StoreResult> {
  const type = opts.type ?? 'data';
  const mode = pool.size === 0 ? true : opts.hashFirst ?? 'auto';
  const policy = mode === 'auto' ? new HashPolicy() : null;
  const chunker = new Chunker(repo.gearTable(), opts.chunker);
  // join and hash finished packs in the pool's workers too (falls back to this thread once the
  // pool is closed, so leaving it attached is harmless)
  if (repo.packAssembler === null) pool.attachTo(repo);
  const idKey = repo.keys.blobId;
  const result: StoreResult = { ids: [], lengths: [], size: 0, newChunks: 0, newBytes: 0, storedBytes: 0 };
  const queue: Queued[] = [];
  /** Ids being sealed by this stream (hex), so a chunk repeated within the stream is sealed once. */
  const sealing = new Set<string>();
  let done = 0;

  const drainOne = async (): Promise<void> => {
    const item = queue.shift()!;
    if (item.sealing !== null) {
      const waitStart = process.hrtime.bigint();
      const blob = await item.sealing;
      policy?.sawResult(waitStart);
      result.ids[item.index] = blob.id;
      const sealedLength = blob.sealed.length; // the repository may hand its memory to a worker
      const added = await repo.addSealedBlob(blob);
      if (added) {
        result.newChunks++;
        result.newBytes += blob.rawLength;
        result.storedBytes += sealedLength;
      }
      if (item.hex !== null) sealing.delete(item.hex);
      else policy?.sawChunk(!added); // hashed by the worker: a duplicate shows only now
    }
    done += item.length;
    opts.onProgress?.(done);
  };

  const handle = async (chunk: Buffer): Promise<void> => {
    const index = result.lengths.length;
    result.lengths.push(chunk.length);
    let id: Buffer | undefined;
    let hex: string | null = null;
    if (policy === null ? mode === true : policy.hashHere()) {
      id = blobId(idKey, chunk);
      result.ids.push(id);
      hex = toHex(id);
      const known = sealing.has(hex) || repo.hasBlob(id);
      policy?.sawChunk(known);
      if (known) {
        // known: no sealing, but keep its place so progress and packing stay in order
        if (queue.length === 0) {
          done += chunk.length;
          opts.onProgress?.(done);
        } else {
          queue.push({ index, length: chunk.length, sealing: null, hex: null });
        }
        return;
      }
      sealing.add(hex);
    } else {
      result.ids.push(Buffer.alloc(0)); // placeholder until the worker's id comes back
    }
    while (pool.mustDrain(queue.length)) await drainOne();
    const p = pool.seal(chunk, id === undefined ? { type } : { type, id });
    p.catch(() => undefined); // surfaced in order by drainOne
    queue.push({ index, length: chunk.length, sealing: p, hex });
  };

  try {
    for await (const piece of source) {
      const data = Buffer.isBuffer(piece) ? piece : Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
      result.size += data.length;
      for (const chunk of chunker.push(data)) await handle(chunk);
      // nothing of `data` is kept past this point (sealing copied the chunks), so a source may
      // read into the same buffer again (file-reader's `reuse`)
      chunker.detach();
    }
    for (const chunk of chunker.finish()) await handle(chunk);
    while (queue.length > 0) await drainOne();
  } finally {
    if (queue.length > 0) await Promise.allSettled(queue.map((q) => q.sealing));
  }
  return result;
}
