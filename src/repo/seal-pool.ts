/**
 * A pool of worker threads that seal blobs: chunk → (id = HMAC-SHA-256) → zstd payload →
 * XChaCha20-Poly1305 with AD = id, i.e. exactly {@link sealBlob} (the workers call it).
 *
 * - `seal()` returns one promise per chunk; the caller awaits them in submission order (the
 *   pack and a file's content list depend on order). `sealOrdered()` does that for a stream.
 * - Back-pressure: `ready()` resolves once fewer than `maxInFlight` chunks and
 *   `maxInFlightBytes` bytes are being sealed, so memory stays flat.
 * - Size 0 or 1 runs inline in the calling thread (no workers, no copies): on a 2-core machine
 *   a single worker only adds messaging to the same amount of work.
 * - Chunks are copied into pool-owned ArrayBuffers that travel to a worker and back
 *   (transferred, not cloned) and are reused, so steady state allocates nothing on the way in.
 *   A chunk from the chunker is usually a view into the caller's read buffer, which can't be
 *   transferred without detaching the whole read buffer; one memcpy (≈ 0.05 ms per MiB) is far
 *   cheaper than the page faults of a fresh buffer. Callers that own a chunk outright may pass
 *   `{ transfer: true }` to hand its ArrayBuffer over instead (bench/engine.ts measures both).
 *
 * Where the worker code comes from (must work from dist/, under vitest from src/, and in an
 * esbuild bundle):
 *   1. `options.workerUrl` or $LIFEBOAT_SEAL_WORKER, when given;
 *   2. `./seal-worker.js` next to this module — the case for dist/repo/seal-pool.js, and for a
 *      bundle when seal-worker.ts is built as a second entry point next to it
 *      (esbuild `entryPoints: ['src/cli/main.ts', 'src/repo/seal-worker.ts']`, same outdir);
 *   3. when this module is a .ts source (vitest, tsx), `dist/repo/seal-worker.js` under the
 *      package root: worker_threads can't run TypeScript and vitest's transform doesn't reach
 *      into workers, so tests use the compiled worker (`npm test` builds first).
 * An eval'd inline worker was rejected: it would still have to import the compiled
 * blob/aead/compress modules by path, so it solves nothing and hides the path.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { openBlobsInto, outputSize, sealBlob, type BlobType, type SealedBlob } from './blob.js';
import { DEFAULT_LEVEL } from './compress.js';
import type {
  FileDone, FileFailed, FileTask, OpenDone, OpenTask, PackDone, PackTask, SealDone, SealFailed, SealTask, SealWorkerData,
} from './seal-worker.js';
import { NotRegularError, type NodeStat } from '../util/small-file.js';
import { tuneMalloc } from '../native/index.js';
import type { WriteTarget } from '../util/pwrite.js';
import { openAndWriteBlobs } from './open-write.js';

export interface SealKeys {
  encryption: Uint8Array;
  blobId: Uint8Array;
}

export interface SealPoolOptions {
  /** Worker threads; default os.availableParallelism(). 0 or 1: seal inline, no workers. */
  workers?: number;
  /** zstd level (format default 3). */
  level?: number;
  /**
   * Most chunks being sealed or waiting to be packed at once; default 12 × workers (1 inline).
   * A deep queue keeps the workers busy while the calling thread finishes a pack or collects
   * garbage (bench/engine.ts, 2 workers: 8 → ≈ 356 MB/s, 24 → ≈ 388, 64 → ≈ 402 on random data).
   */
  maxInFlight?: number;
  /**
   * Most bytes being sealed at once; default 8 MiB (one more chunk is admitted while fewer are in
   * flight, so a chunk larger than that still goes alone). On the bench's 2.1 GB backup (2 workers,
   * 3 interleaved runs each) 8 MiB took the same wall time as 32 MiB (14.3–17.5 s against
   * 14.5–17.6 s) with 55–70 MiB less peak RSS (294–301 against 355–367 MiB); 64 MiB cost ≈ 30 MiB
   * more than 32 and gained nothing either.
   */
  maxInFlightBytes?: number;
  /** Where the compiled worker is; see the module comment. */
  workerUrl?: URL | string;
  /**
   * Niceness added to the worker threads (Linux), default 10. The calling thread chunks and
   * packs for all workers: when the cores are busy it is the one that must not wait, and with
   * equal priorities the scheduler gives it only its share (2/3 of a core for 3 threads on 2).
   */
  workerNice?: number;
  /**
   * Chunks up to this many bytes are sealed in the calling thread instead when at least
   * `2 × workers` chunks are already with the workers (default 64 KiB; 0: never). Small chunks
   * (small files) cost the workers more in messaging (≈ 70 µs per round trip with its
   * transfers) than in sealing, and the calling thread is mostly idle then.
   */
  inlineSmallMax?: number;
}

/** Blobs of a range opened by {@link SealPool.openRange}. */
export interface OpenedRange {
  /** The plaintexts (empty when `writes` were given: they are in the files). */
  out: Buffer;
  errors: Array<string | null>;
  /** With `writes`: per blob and target, null or why writing failed (blobs in `errors` are not written). */
  writeErrors: Array<Array<string | null>> | null;
  release(): void;
  /** The input's memory, free again (handed back by the worker), or null. */
  input: ArrayBuffer | null;
}

/** Joins a pack's parts and hashes them: Repository.packAssembler. */
export type PackAssembler = (parts: Buffer[], size: number) => Promise<{ bytes: Buffer; id: string }>;

export interface SealOptions {
  /** Blob type; default 'data'. */
  type?: BlobType;
  /** The id when the caller has it already (computed for a dedup check): the worker won't hash. */
  id?: Buffer;
  /**
   * The caller gives up `data`: when it spans its whole ArrayBuffer, that buffer is transferred
   * to the worker (detaching `data`) instead of copied.
   */
  transfer?: boolean;
}

const MiB = 1024 * 1024;
/**
 * Young generation of each worker's heap (V8's default here is 3 × 16 MiB semi-spaces). Restore of
 * the bench's scale-1 tree: peak RSS 313–327 → 287–303 MiB at the same speed; backup unchanged.
 */
const WORKER_YOUNG_GEN_MB = 2;
/** Free transfer buffers kept for reuse, at most. */
const MAX_FREE_BUFFERS = 64;
/** Free pack buffers (~17 MiB each) kept for reuse, at most. */
const MAX_FREE_PACK_BUFFERS = 1;
/** Free restore output buffers kept, at most. */
const MAX_FREE_OUTPUTS = 4;
/** Used sealed-blob buffers waiting to go back to a worker, at most (the rest are dropped). */
const MAX_FREE_SEALED = 32;
/** …and at most this many bytes of them. */
const MAX_FREE_SEALED_BYTES = 8 * MiB;

function totalBytes(bufs: readonly ArrayBuffer[]): number {
  let n = 0;
  for (const b of bufs) n += b.byteLength;
  return n;
}

type WorkerMessage = SealDone | SealFailed | PackDone | OpenDone | FileDone | FileFailed;
type Success = SealDone | PackDone | OpenDone | FileDone;

/** A small file read and sealed by a worker ({@link SealPool.sealFile}). */
export interface SealedFile {
  /** fstat before the (last) read. */
  stat: NodeStat;
  /** The file still changed during the second read. */
  changed: boolean;
  reads: number;
  size: number;
  /** The blob of its bytes; null for an empty file. */
  blob: SealedBlob | null;
}

interface Pending {
  /** A chunk being sealed (counts against the in-flight limits) or a pack being joined. */
  chunk: boolean;
  done: (msg: Success) => void;
  reject: (e: Error) => void;
  bytes: number;
  worker: PoolWorker;
}

interface PoolWorker {
  worker: Worker;
  /** Bytes queued on this worker. */
  load: number;
  tasks: number;
  exited: boolean;
}

/** The compiled worker's URL (see the module comment). */
export function defaultWorkerUrl(): URL {
  const env = process.env.LIFEBOAT_SEAL_WORKER;
  if (env) return env.startsWith('file:') ? new URL(env) : pathToFileURL(path.resolve(env));
  const here = new URL('./seal-worker.js', import.meta.url);
  if (!import.meta.url.endsWith('.ts') || existsSync(fileURLToPath(here))) return here;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(path.join(dir, 'package.json'))) break;
    const up = path.dirname(dir);
    if (up === dir) throw new Error('seal pool: cannot find the package root to locate dist/repo/seal-worker.js');
    dir = up;
  }
  const built = path.join(dir, 'dist', 'repo', 'seal-worker.js');
  if (!existsSync(built)) throw new Error(`seal pool: ${built} is missing; run "npm run build" first`);
  return pathToFileURL(built);
}

export class SealPool {
  /** Worker threads (0 when sealing inline). */
  readonly size: number;
  readonly level: number;
  readonly maxInFlight: number;
  readonly maxInFlightBytes: number;
  readonly workerNice: number;
  readonly inlineSmallMax: number;
  private readonly keys: SealKeys;
  private readonly workers: PoolWorker[] = [];
  private readonly pending = new Map<number, Pending>();
  private readonly free: ArrayBuffer[] = [];
  /** Pack buffers made by assemblePack, and those handed back after upload (releasePack). */
  private readonly packBuffers = new WeakSet<ArrayBuffer>();
  private readonly freePackBuffers: ArrayBuffer[] = [];
  /**
   * Sealed-blob buffers made by the workers (a blob may use only the start of one), and those
   * whose pack was joined, to be handed back to a worker with the next chunk and sealed into
   * again: a blob's output memory cycles worker → pack → pack-joining worker → here → worker
   * instead of being allocated fresh (page faults) and collected in another isolate.
   */
  private readonly sealedBuffers = new WeakSet<ArrayBuffer>();
  private readonly freeSealed: ArrayBuffer[] = [];
  /** Restore: output buffers of openRange handed back by release(), for the next ranges. */
  private readonly freeOutputs: ArrayBuffer[] = [];
  private seq = 0;
  private inFlightChunks = 0;
  private inFlightBytes = 0;
  private waiters: Array<() => void> = [];
  private failure: Error | null = null;
  private closed = false;
  /** Chunks copied into a transfer buffer / handed over without a copy (for benchmarks). */
  readonly stats = { inline: 0, copied: 0, transferred: 0, buffersAllocated: 0, packBuffersReused: 0, sealedBuffersRecycled: 0 };

  private constructor(keys: SealKeys, size: number, opts: SealPoolOptions) {
    this.keys = { encryption: Buffer.from(keys.encryption), blobId: Buffer.from(keys.blobId) };
    this.size = size;
    this.level = opts.level ?? DEFAULT_LEVEL;
    // inline: nothing is ever in flight; 1 tells sealOrdered/storeStream not to queue results
    this.maxInFlight = Math.max(1, opts.maxInFlight ?? (size === 0 ? 1 : 12 * size));
    this.maxInFlightBytes = Math.max(1, opts.maxInFlightBytes ?? 8 * MiB);
    this.workerNice = opts.workerNice ?? Number(process.env.LIFEBOAT_WORKER_NICE ?? 10);
    this.inlineSmallMax = opts.inlineSmallMax ?? 64 * 1024;
  }

  /** Starts the workers and waits until each has loaded zstd. */
  static async create(keys: SealKeys, opts: SealPoolOptions = {}): Promise<SealPool> {
    const n = opts.workers ?? os.availableParallelism();
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`seal pool: bad worker count ${n}`);
    // MiB-sized buffers cross threads from here on: keep freed ones from staying resident
    tuneMalloc();
    const pool = new SealPool(keys, n <= 1 ? 0 : n, opts);
    if (pool.size > 0) {
      const url = opts.workerUrl === undefined ? defaultWorkerUrl() : opts.workerUrl;
      try {
        await Promise.all(Array.from({ length: pool.size }, () => pool.startWorker(url)));
      } catch (e) {
        await pool.close();
        throw e;
      }
    }
    return pool;
  }

  private startWorker(url: URL | string): Promise<void> {
    const data: SealWorkerData = {
      encryption: this.keys.encryption, blobId: this.keys.blobId, level: this.level, nice: this.workerNice,
    };
    // a small young generation: what a worker allocates per task (cipher and hash objects, result
    // messages) dies young, and the default lets each worker's heap grow by tens of MiB first
    const worker = new Worker(url, { workerData: data, name: 'lifeboat-seal', resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GEN_MB } });
    const pw: PoolWorker = { worker, load: 0, tasks: 0, exited: false };
    this.workers.push(pw);
    return new Promise<void>((resolve, reject) => {
      let started = false;
      worker.on('message', (msg: WorkerMessage | { kind: 'ready' }) => {
        if (msg.kind === 'ready') {
          started = true;
          worker.unref(); // idle workers never keep the process alive: ref'd only while busy (dispatch/settle)
          resolve();
        } else {
          this.settle(pw, msg);
        }
      });
      worker.on('error', (e: Error) => {
        if (!started) reject(e);
        this.fail(new Error(`seal worker failed: ${e.message}`, { cause: e }));
      });
      worker.on('exit', (code) => {
        pw.exited = true;
        if (!started) reject(new Error(`seal worker exited during start (code ${code})`));
        if (!this.closed) this.fail(new Error(`seal worker exited unexpectedly (code ${code})`));
      });
    });
  }

  /** Number of chunks being sealed. */
  get inFlight(): number {
    return this.inFlightChunks;
  }

  /** Bytes being sealed. */
  get bytesInFlight(): number {
    return this.inFlightBytes;
  }

  /** True when another chunk may be submitted without exceeding the limits. */
  get hasRoom(): boolean {
    return this.inFlightChunks === 0 || (this.inFlightChunks < this.maxInFlight && this.inFlightBytes < this.maxInFlightBytes);
  }

  /**
   * For a caller holding `queued` results it has not consumed yet (in order): true when it must
   * consume the oldest before submitting more. Bounds both the work in flight and the sealed
   * results waiting (an inline pool finishes at once, so only the queue length bounds it).
   */
  mustDrain(queued: number): boolean {
    return queued > 0 && (queued >= this.maxInFlight || !this.hasRoom);
  }

  /** Resolves when there is room for another chunk (at once for an inline pool). */
  async ready(): Promise<void> {
    while (!this.hasRoom) {
      if (this.failure) throw this.failure;
      await new Promise<void>((r) => this.waiters.push(r));
    }
    if (this.failure) throw this.failure;
  }

  /**
   * Seals one chunk. Doesn't wait for room: callers bound memory with `await ready()` or
   * `mustDrain()` before each call (or use sealOrdered). `data` is copied (or, with
   * `transfer`, handed over) or sealed before this returns, so the caller may reuse its buffer
   * at once.
   */
  seal(data: Buffer, opts: SealOptions = {}): Promise<SealedBlob> {
    const type = opts.type ?? 'data';
    if (this.closed) return Promise.reject(new Error('seal pool is closed'));
    if (this.failure) return Promise.reject(this.failure);
    if (this.size === 0 || (data.length <= this.inlineSmallMax && this.inFlightChunks >= 2 * this.size)) {
      if (this.size > 0) this.stats.inline++;
      try {
        return Promise.resolve(sealBlob(this.keys, type, data, opts.id, this.level));
      } catch (e) {
        return Promise.reject(e instanceof Error ? e : new Error(String(e)));
      }
    }
    const len = data.length;
    let buf: ArrayBuffer;
    if (opts.transfer && data.byteOffset === 0 && data.byteLength === data.buffer.byteLength &&
        data.buffer instanceof ArrayBuffer && len > 0) {
      buf = data.buffer;
      this.stats.transferred++;
    } else {
      buf = this.takeBuffer(len);
      new Uint8Array(buf, 0, len).set(data);
      this.stats.copied++;
    }
    let id: Uint8Array | null = null;
    if (opts.id) {
      id = new Uint8Array(opts.id.length);
      id.set(opts.id);
    }
    const seq = this.seq++;
    const spare = this.freeSealed.pop();
    const task: SealTask = { kind: 'seal', seq, type, buf, len, id, spare: spare === undefined ? [] : [spare] };
    if (spare !== undefined) this.stats.sealedBuffersRecycled++;
    return new Promise<SealedBlob>((resolve, reject) => {
      const done = (msg: Success) => {
        const m = msg as SealDone;
        this.sealedBuffers.add(m.sealed);
        resolve({ id: Buffer.from(m.id), type, sealed: Buffer.from(m.sealed, 0, m.sealedLength), rawLength: m.rawLength });
      };
      this.dispatch(task, spare === undefined ? [buf] : [buf, spare], { chunk: true, done, reject, bytes: len });
    });
  }

  /**
   * Reads a small file whole in a worker and seals it as one blob there (its type 'data'): the
   * calling thread neither reads nor seals it. Only for files below the chunker's minimum size
   * (one chunk); `limit` is the most the worker reads — a file found larger resolves to null
   * and is left to the caller. Rejects with the fs error (code kept) or NotRegularError. Needs
   * workers (size > 0). Doesn't wait for room: callers bound memory with `await ready()`.
   */
  sealFile(p: Buffer, limit: number, sizeHint: number): Promise<SealedFile | null> {
    if (this.size === 0) return Promise.reject(new Error('seal pool: sealFile needs workers'));
    if (this.closed) return Promise.reject(new Error('seal pool is closed'));
    if (this.failure) return Promise.reject(this.failure);
    const seq = this.seq++;
    const spare = this.freeSealed.pop();
    const task: FileTask = { kind: 'file', seq, path: Uint8Array.from(p), limit, spare: spare === undefined ? [] : [spare] };
    if (spare !== undefined) this.stats.sealedBuffersRecycled++;
    return new Promise<SealedFile | null>((resolve, reject) => {
      const done = (msg: Success) => {
        const m = msg as FileDone;
        if (m.read === null) {
          resolve(null);
          return;
        }
        let blob: SealedBlob | null = null;
        if (m.sealed !== null && m.id !== null) {
          this.sealedBuffers.add(m.sealed);
          blob = { id: Buffer.from(m.id), type: 'data', sealed: Buffer.from(m.sealed, 0, m.sealedLength), rawLength: m.read.size };
        }
        resolve({ ...m.read, blob });
      };
      this.dispatch(task, spare === undefined ? [] : [spare], { chunk: true, done, reject, bytes: Math.max(1, sizeHint) });
    });
  }

  /**
   * Joins a finished pack's parts and hashes it (SHA-256, the pack id) in a worker, to take
   * that work (≈ 0.6 ns per byte) off the calling thread: plug into Repository.packAssembler
   * with {@link packAssembler}. Parts that own their whole ArrayBuffer, and sealed blobs from
   * the workers (which start their buffer), are transferred — detached here — the others
   * copied. The worker hands the sealed blobs' buffers back for reuse. Inline pools do it here.
   */
  assemblePack(parts: Buffer[], size: number): Promise<{ bytes: Buffer; id: string }> {
    if (this.size === 0 || this.closed || this.failure) {
      const bytes = Buffer.concat(parts, size);
      return Promise.resolve({ bytes, id: createHash('sha256').update(bytes).digest('hex') });
    }
    const transfer: ArrayBuffer[] = [];
    const seen = new Set<ArrayBufferLike>();
    const sent = parts.map((p) => {
      const ab = p.buffer;
      if (p.byteOffset === 0 && ab instanceof ArrayBuffer && ab.byteLength > 0 && !seen.has(ab) &&
          (p.byteLength === ab.byteLength || this.sealedBuffers.has(ab))) {
        seen.add(ab);
        transfer.push(ab);
        return new Uint8Array(ab, 0, p.byteLength);
      }
      const copy = new Uint8Array(p.length);
      copy.set(p);
      return copy;
    });
    const into = this.freePackBuffers.pop() ?? null;
    if (into !== null) {
      transfer.push(into);
      this.stats.packBuffersReused++;
    }
    const seq = this.seq++;
    const task: PackTask = { kind: 'pack', seq, parts: sent, size, into };
    return new Promise((resolve, reject) => {
      const done = (msg: Success) => {
        const m = msg as PackDone;
        this.packBuffers.add(m.bytes);
        resolve({ bytes: Buffer.from(m.bytes, 0, size), id: m.id });
      };
      this.dispatch(task, transfer, { chunk: false, done, reject, bytes: size });
    });
  }

  /**
   * Opens the blobs of one ranged read of a pack for restore — decrypt, decode, verify each
   * against its id ({@link openBlobsInto}) — in a worker (inline for an inline pool). `input`
   * is transferred (detached here) when it owns its whole ArrayBuffer, else copied. The result's
   * `out` holds blob i's plaintext at the sum of the raw lengths before it, valid where
   * `errors[i]` is null; call `release()` once it is no longer used, so the next range can
   * be decoded into the same memory.
   */
  openRange(input: Buffer, blobs: Array<{ id: Buffer; offset: number; length: number; rawLength: number }>,
            where: string, owned = false, writes: WriteTarget[][] | null = null): Promise<OpenedRange> {
    let rawTotal = 0;
    for (const b of blobs) rawTotal += b.rawLength;
    const inline = this.size === 0 || this.closed || !!this.failure;
    // with writes, a worker decodes into its own scratch: no output buffer travels
    const into = writes !== null ? null : this.takeOutput(rawTotal);
    const release = (out: ArrayBuffer | null) => () => {
      if (out !== null) this.giveOutput(out);
    };
    if (inline) {
      try {
        const back = owned && input.byteOffset === 0 && input.buffer instanceof ArrayBuffer ? input.buffer : null;
        if (writes !== null) {
          const r = openAndWriteBlobs(this.keys, input, blobs, writes, where);
          return Promise.resolve({ out: Buffer.alloc(0), errors: r.errors, writeErrors: r.writeErrors, release: release(null), input: back });
        }
        const out = into ?? new ArrayBuffer(outputSize(rawTotal));
        const errors = openBlobsInto(this.keys, input, blobs, Buffer.from(out), where);
        return Promise.resolve({ out: Buffer.from(out, 0, rawTotal), errors, writeErrors: null, release: release(out), input: back });
      } catch (e) {
        return Promise.reject(e instanceof Error ? e : new Error(String(e)));
      }
    }
    let buf: ArrayBuffer;
    if (input.byteOffset === 0 && (owned || input.byteLength === input.buffer.byteLength) &&
        input.buffer instanceof ArrayBuffer && input.buffer.byteLength > 0) {
      buf = input.buffer;
    } else {
      buf = new ArrayBuffer(Math.max(1, input.length));
      new Uint8Array(buf).set(input);
    }
    const seq = this.seq++;
    const task: OpenTask = {
      kind: 'open', seq, buf, len: input.length, rawTotal, into, where, writes,
      blobs: blobs.map((b) => ({ id: Uint8Array.from(b.id), offset: b.offset, length: b.length, rawLength: b.rawLength })),
    };
    return new Promise<OpenedRange>((resolve, reject) => {
      const done = (msg: Success) => {
        const m = msg as OpenDone;
        const out = m.out === null ? Buffer.alloc(0) : Buffer.from(m.out, 0, rawTotal);
        resolve({ out, errors: m.errors, writeErrors: m.writeErrors, release: release(m.out), input: m.buf });
      };
      this.dispatch(task, into === null ? [buf] : [buf, into], { chunk: false, done, reject, bytes: input.length + rawTotal });
    });
  }

  private takeOutput(len: number): ArrayBuffer | null {
    let best = -1;
    for (let i = 0; i < this.freeOutputs.length; i++) {
      const n = this.freeOutputs[i]!.byteLength;
      if (n >= len && (best < 0 || n < this.freeOutputs[best]!.byteLength)) best = i;
    }
    return best < 0 ? null : this.freeOutputs.splice(best, 1)[0]!;
  }

  private giveOutput(out: ArrayBuffer): void {
    if (this.closed || out.byteLength === 0 || this.freeOutputs.includes(out)) return;
    this.freeOutputs.push(out);
    // keep the largest few
    if (this.freeOutputs.length > MAX_FREE_OUTPUTS) {
      this.freeOutputs.sort((a, b) => b.byteLength - a.byteLength);
      this.freeOutputs.length = MAX_FREE_OUTPUTS;
    }
  }

  /** A Repository.packAssembler that uses this pool (null for an inline pool: nothing to gain). */
  packAssembler(): PackAssembler | null {
    return this.size === 0 ? null : (parts, size) => this.assemblePack(parts, size);
  }

  /**
   * Hands back the bytes of a pack from assemblePack once they are no longer used (uploaded),
   * for the next pack to be joined into without allocating (Repository.packReleaser). Other
   * buffers are ignored.
   */
  releasePack(bytes: Buffer): void {
    const ab = bytes.buffer;
    if (!(ab instanceof ArrayBuffer) || !this.packBuffers.has(ab) || this.closed) return;
    if (this.freePackBuffers.length < MAX_FREE_PACK_BUFFERS && !this.freePackBuffers.includes(ab)) this.freePackBuffers.push(ab);
  }

  /**
   * Takes back a sealed blob's buffer once its bytes are no longer used (written to a spooled
   * pack), to be sealed into again by a worker. Buffers the workers did not make are ignored.
   */
  releaseSealed(sealed: Buffer): void {
    const ab = sealed.buffer;
    if (this.closed || !(ab instanceof ArrayBuffer) || sealed.byteOffset !== 0 || !this.sealedBuffers.has(ab)) return;
    if (this.freeSealed.length >= MAX_FREE_SEALED || this.freeSealed.includes(ab)) return;
    if (totalBytes(this.freeSealed) + ab.byteLength > MAX_FREE_SEALED_BYTES) return;
    this.freeSealed.push(ab);
  }

  /** Wires this pool into a repository's pack path (joining, hashing, buffer reuse). */
  attachTo(repo: {
    packAssembler: PackAssembler | null;
    packReleaser: ((bytes: Buffer) => void) | null;
    sealedReleaser: ((sealed: Buffer) => void) | null;
  }): void {
    if (this.size === 0) return;
    repo.packAssembler = (parts, size) => this.assemblePack(parts, size);
    repo.packReleaser = (bytes) => this.releasePack(bytes);
    repo.sealedReleaser = (sealed) => this.releaseSealed(sealed);
  }

  private dispatch(task: SealTask | PackTask | OpenTask | FileTask, transfer: ArrayBuffer[], p: Omit<Pending, 'worker'>): void {
    const pw = this.pickWorker();
    this.pending.set(task.seq, { ...p, worker: pw });
    if (p.chunk) {
      this.inFlightChunks++;
      this.inFlightBytes += p.bytes;
    }
    pw.load += p.bytes;
    if (pw.tasks++ === 0) pw.worker.ref();
    pw.worker.postMessage(task, transfer);
  }

  /**
   * Seals a stream of chunks with bounded in-flight work and yields the results in input order.
   * Items may carry a precomputed id.
   */
  async *sealOrdered(source: AsyncIterable<Buffer | { data: Buffer; id?: Buffer }> | Iterable<Buffer | { data: Buffer; id?: Buffer }>,
                     type: BlobType = 'data'): AsyncGenerator<SealedBlob> {
    const queue: Array<Promise<SealedBlob>> = [];
    try {
      for await (const item of source) {
        const { data, id } = Buffer.isBuffer(item) ? { data: item, id: undefined } : item;
        while (this.mustDrain(queue.length)) yield await queue.shift()!;
        const p = this.seal(data, id === undefined ? { type } : { type, id });
        p.catch(() => undefined); // surfaced when awaited in order
        queue.push(p);
      }
      while (queue.length > 0) yield await queue.shift()!;
    } finally {
      // on early exit, let outstanding work finish so buffers come back and nothing rejects unseen
      await Promise.allSettled(queue);
    }
  }

  private pickWorker(): PoolWorker {
    let best: PoolWorker | null = null;
    for (const w of this.workers) {
      if (w.exited) continue;
      if (best === null || w.load < best.load) best = w;
    }
    if (best === null) throw this.failure ?? new Error('seal pool has no live workers');
    return best;
  }

  /** A reusable transfer buffer of at least `len` bytes. */
  private takeBuffer(len: number): ArrayBuffer {
    if (len === 0) return new ArrayBuffer(0);
    // best fit among the free buffers; chunks are 512 KiB .. 8 MiB, so a handful of sizes recur
    let bestIdx = -1;
    for (let i = 0; i < this.free.length; i++) {
      const b = this.free[i]!;
      if (b.byteLength >= len && (bestIdx < 0 || b.byteLength < this.free[bestIdx]!.byteLength)) bestIdx = i;
    }
    if (bestIdx >= 0) {
      const b = this.free[bestIdx]!;
      this.free[bestIdx] = this.free[this.free.length - 1]!;
      this.free.pop();
      return b;
    }
    this.stats.buffersAllocated++;
    // round up so that slightly larger chunks later reuse it: 1 MiB steps, at least 1 MiB
    return new ArrayBuffer(Math.max(MiB, Math.ceil(len / MiB) * MiB));
  }

  private giveBuffer(buf: ArrayBuffer): void {
    if (buf.byteLength === 0) return;
    if (this.free.length < Math.min(MAX_FREE_BUFFERS, this.maxInFlight) &&
        totalBytes(this.free) + buf.byteLength <= this.maxInFlightBytes) {
      this.free.push(buf);
    }
  }

  private settle(pw: PoolWorker, msg: WorkerMessage): void {
    const p = this.pending.get(msg.seq);
    if (!p) return;
    this.forget(msg.seq, p);
    if (--pw.tasks === 0) pw.worker.unref();
    // a chunk's transfer buffer comes back for reuse; a range read for restore is dropped
    if ((msg.kind === 'done' || msg.kind === 'failed') && p.chunk && msg.buf !== null) this.giveBuffer(msg.buf);
    if (msg.kind === 'packed' && !this.closed) {
      let held = totalBytes(this.freeSealed);
      for (const b of msg.recycled) {
        if (this.freeSealed.length >= MAX_FREE_SEALED || held + b.byteLength > MAX_FREE_SEALED_BYTES) break;
        this.freeSealed.push(b);
        held += b.byteLength;
      }
    }
    if (msg.kind === 'failed') p.reject(new Error(`${p.chunk ? 'sealing a blob' : 'a worker task'} failed: ${msg.message}`));
    else if (msg.kind === 'file-failed') p.reject(fileError(msg));
    else p.done(msg);
    this.wake();
  }

  private forget(seq: number, p: Pending): void {
    this.pending.delete(seq);
    p.worker.load -= p.bytes;
    if (p.chunk) {
      this.inFlightChunks--;
      this.inFlightBytes -= p.bytes;
    }
  }

  private wake(): void {
    if (this.waiters.length === 0) return;
    const w = this.waiters;
    this.waiters = [];
    for (const r of w) r();
  }

  private fail(e: Error): void {
    this.failure ??= e;
    for (const [seq, p] of this.pending) {
      if (p.worker.exited || this.closed) {
        this.forget(seq, p);
        p.reject(this.failure);
      }
    }
    // a failed pool takes no new work; outstanding tasks on live workers still settle
    this.wake();
  }

  /**
   * Waits for chunks in flight, then stops the workers. Idempotent. After it, the pool holds
   * no threads and the process can exit.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    const outstanding = [...this.pending.values()].map(
      (p) => new Promise<void>((r) => {
        const { done, reject } = p;
        p.done = (m) => (done(m), r());
        p.reject = (e) => (reject(e), r());
      }),
    );
    await Promise.all(outstanding);
    this.closed = true;
    await Promise.all(this.workers.map(async (w) => {
      if (!w.exited) await w.worker.terminate();
    }));
    this.free.length = 0;
    this.freePackBuffers.length = 0;
    this.freeSealed.length = 0;
    this.freeOutputs.length = 0;
    this.wake();
  }
}

/** The error a worker met reading a file, as the calling thread would have met it. */
function fileError(msg: FileFailed): Error {
  if (msg.notRegular) return new NotRegularError(msg.message);
  const e: NodeJS.ErrnoException = new Error(msg.message);
  if (msg.code !== null) e.code = msg.code;
  return e;
}
