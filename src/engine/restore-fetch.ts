/**
 * Fetching file contents for a restore: every needed blob is located once in the index, blobs
 * are grouped per pack and adjacent ones merged into one ranged GET, and ranges are fetched
 * several at a time. Each range's blobs are opened (decrypted, decompressed, id verified) in
 * the worker pool (SealPool.openRange) and, with a `writer` (the restore), written into their
 * files right there; otherwise they come back in one reused output buffer and are handed to
 * every place that uses them. Reads, CPU work and writes of different ranges overlap, and the
 * bytes in flight (ranges read + their plaintext) are bounded.
 */
import type { Repository } from '../repo/repository.js';
import { packName } from '../repo/repository.js';
import { outputSize } from '../repo/blob.js';
import type { SealPool } from '../repo/seal-pool.js';
import { fromHexId } from '../util/hex.js';
import type { WriteTarget } from '../util/pwrite.js';

export interface BlobRef {
  id: string;
  packId: string;
  offset: number;
  length: number;
  rawLength: number;
}

export interface FetchRange {
  packId: string;
  offset: number;
  length: number;
  blobs: BlobRef[];
}

/** Largest gap of unneeded bytes read through to merge two blobs into one request. */
export const MERGE_GAP = 1 << 20;
/** Largest single ranged GET. */
export const MAX_RANGE = 8 << 20;
/**
 * Most plaintext bytes opened at once from one range: a range of well-compressed blobs decodes to
 * several times its size, so its blobs are opened in groups of at most this much (the GET is not
 * cut for it: on S3 each request costs a round trip and the SDK's overhead).
 */
export const MAX_RANGE_RAW = 8 << 20;

/**
 * Groups blobs by pack and merges neighbours into ranges (sorted by pack, then offset). A
 * range grows to at most `maxRange` bytes read and `maxRaw` bytes of plaintext (a single
 * larger blob gets a range of its own). The default leaves plaintext unbounded: fetchRanges
 * opens a range's blobs in groups of MAX_RANGE_RAW.
 */
export function planRanges(blobs: Iterable<BlobRef>, gap = MERGE_GAP, maxRange = MAX_RANGE, maxRaw = Infinity): FetchRange[] {
  const byPack = new Map<string, BlobRef[]>();
  for (const b of blobs) {
    let l = byPack.get(b.packId);
    if (!l) byPack.set(b.packId, (l = []));
    l.push(b);
  }
  const out: FetchRange[] = [];
  for (const packId of [...byPack.keys()].sort()) {
    const list = byPack.get(packId)!.sort((a, b) => a.offset - b.offset);
    let cur: FetchRange | null = null;
    let raw = 0;
    for (const b of list) {
      const end = b.offset + b.length;
      if (cur && b.offset - (cur.offset + cur.length) <= gap && end - cur.offset <= maxRange && raw + b.rawLength <= maxRaw) {
        cur.length = Math.max(cur.length, end - cur.offset);
        cur.blobs.push(b);
        raw += b.rawLength;
      } else {
        cur = { packId, offset: b.offset, length: b.length, blobs: [b] };
        raw = b.rawLength;
        out.push(cur);
      }
    }
  }
  return out;
}

export interface FetchStats {
  requests: number;
  bytesDownloaded: number;
}

export interface FetchOptions {
  /** Ranges being read, opened or written at once. */
  concurrency: number;
  /** Most bytes (ranges read + their plaintext) in flight; one range always goes. */
  maxBytesInFlight: number;
  /** Where blobs are opened (workers, or inline for a pool of size 0). */
  pool: SealPool;
  /**
   * Writes blobs where they are opened (the pool's workers) instead of handing them to onBlob:
   * no plaintext comes back to this thread. Blobs that fail to open still go the onBlob way
   * (through the fallback).
   */
  writer?: BlobWriter;
}

/** Opened blobs written by the pool itself (FetchOptions.writer). */
export interface BlobWriter {
  /** Whether it takes this range (else its blobs go to onBlob): e.g. not too many files at once. */
  accepts(blobs: BlobRef[]): boolean;
  /** Before a group is opened: each blob's targets (the files opened). Awaited. */
  prepare(blobs: BlobRef[]): Promise<WriteTarget[][]>;
  /**
   * After: blob i was written to its targets (writeErrors[i][j]: null or why target j failed),
   * unless openErrors[i] says it could not be opened — then it is retried through onBlob.
   */
  written(blobs: BlobRef[], openErrors: Array<string | null>, writeErrors: Array<Array<string | null>>): void;
}

/**
 * Fetches every range with up to `concurrency` in flight (and at most `maxBytesInFlight`),
 * opens its blobs in the pool, and calls `onBlob` with each blob's verified plaintext — for all
 * blobs of a range at once, and awaited, so slow writes hold back fetching. `data` is valid only
 * until the returned promise settles. A range that can't be read, or a blob that fails to open,
 * is retried blob by blob through repo.loadBlob (which tries every copy); a blob that still
 * fails goes to `onError`.
 */
export async function fetchRanges(
  repo: Repository,
  ranges: FetchRange[],
  opts: FetchOptions,
  onBlob: (b: BlobRef, data: Buffer) => Promise<void>,
  onError: (b: BlobRef, e: Error) => void,
  stats: FetchStats,
): Promise<void> {
  let next = 0;
  let inFlight = 0;
  let waiters: Array<() => void> = [];
  const acquire = async (n: number): Promise<void> => {
    while (inFlight > 0 && inFlight + n > opts.maxBytesInFlight) await new Promise<void>((r) => waiters.push(r));
    inFlight += n;
  };
  const releaseBytes = (n: number): void => {
    inFlight -= n;
    const w = waiters;
    waiters = [];
    for (const r of w) r();
  };
  // read buffers, reused when the storage can read into them (local files): no fresh 16 MiB
  // allocation (page faults, garbage for the collector) per range
  const freeReads: ArrayBuffer[] = [];
  const getInto = repo.storage.getInto?.bind(repo.storage);
  const read = async (name: string, r: FetchRange): Promise<{ bytes: Buffer; owned: boolean }> => {
    if (!getInto) return { bytes: await repo.storage.get(name, { offset: r.offset, length: r.length }), owned: false };
    let best = -1;
    for (let i = 0; i < freeReads.length; i++) {
      const n = freeReads[i]!.byteLength;
      if (n >= r.length && (best < 0 || n < freeReads[best]!.byteLength)) best = i;
    }
    const ab = best >= 0 ? freeReads.splice(best, 1)[0]! : new ArrayBuffer(outputSize(r.length));
    const n = await getInto(name, r.offset, r.length, new Uint8Array(ab));
    return { bytes: Buffer.from(ab, 0, n), owned: true };
  };
  const giveRead = (ab: ArrayBuffer | null): void => {
    if (ab === null || ab.byteLength === 0) return;
    freeReads.push(ab);
    if (freeReads.length > opts.concurrency) {
      freeReads.sort((a, b) => b.byteLength - a.byteLength);
      freeReads.length = opts.concurrency;
    }
  };
  const fallback = async (b: BlobRef): Promise<void> => {
    let data: Buffer;
    try {
      data = await repo.loadBlob(fromHexId(b.id));
    } catch (e) {
      onError(b, e instanceof Error ? e : new Error(String(e)));
      return;
    }
    await onBlob(b, data);
  };
  const lane = async (): Promise<void> => {
    while (next < ranges.length) {
      const r = ranges[next++]!;
      // a writer's blobs are opened and written one at a time where they are opened: the whole
      // range goes at once (no copies), and only the largest blob's plaintext is held
      const writer = opts.writer?.accepts(r.blobs) ? opts.writer : undefined;
      const groups = writer
        ? [{ blobs: r.blobs, raw: Math.max(...r.blobs.map((b) => b.rawLength)) }]
        : decodeGroups(r.blobs, MAX_RANGE_RAW);
      // the range's bytes and one group's plaintext at a time
      const cost = r.length + Math.max(...groups.map((g) => g.raw));
      await acquire(cost);
      try {
        const name = packName(r.packId);
        let bytes: Buffer | null = null;
        let owned = false;
        try {
          stats.requests++;
          ({ bytes, owned } = await read(name, r));
          stats.bytesDownloaded += bytes.length;
          if (bytes.length !== r.length) bytes = null;
        } catch {
          bytes = null;
        }
        if (bytes === null) {
          for (const b of r.blobs) await fallback(b);
          continue;
        }
        for (const g of groups) {
          // one group: the whole read, handed over when owned; several: each its slice (a copy)
          const whole = groups.length === 1;
          const start = whole ? r.offset : g.blobs[0]!.offset;
          const end = whole ? r.offset + r.length : Math.max(...g.blobs.map((b) => b.offset + b.length));
          const writes = writer ? await writer.prepare(g.blobs) : null;
          const opened = await opts.pool.openRange(
            whole ? bytes : bytes.subarray(start - r.offset, end - r.offset),
            g.blobs.map((b) => ({ id: fromHexId(b.id), offset: b.offset - start, length: b.length, rawLength: b.rawLength })),
            name,
            whole && owned,
            writes,
          );
          if (whole && owned) giveRead(opened.input);
          if (writer && opened.writeErrors) {
            writer.written(g.blobs, opened.errors, opened.writeErrors);
            opened.release();
            const failed = g.blobs.filter((_, i) => opened.errors[i] !== null);
            for (const b of failed) await fallback(b);
            continue;
          }
          try {
            let pos = 0;
            // one blob after another: the files a blob goes to are open only while it is written
            // (a whole group at once once held a descriptor for every file of it)
            for (let i = 0; i < g.blobs.length; i++) {
              const b = g.blobs[i]!;
              const data = opened.out.subarray(pos, pos + b.rawLength);
              pos += b.rawLength;
              await (opened.errors[i] === null ? onBlob(b, data) : fallback(b));
            }
          } finally {
            opened.release();
          }
        }
        if (!(groups.length === 1) && owned) giveRead(bytes.buffer as ArrayBuffer);
      } finally {
        releaseBytes(cost);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.concurrency, ranges.length)) }, lane));
}

/** A range's blobs cut, in order, into groups of at most `maxRaw` plaintext bytes (a larger blob alone). */
export function decodeGroups(blobs: BlobRef[], maxRaw: number): Array<{ blobs: BlobRef[]; raw: number }> {
  const out: Array<{ blobs: BlobRef[]; raw: number }> = [];
  let cur: { blobs: BlobRef[]; raw: number } | null = null;
  for (const b of blobs) {
    if (cur === null || (cur.blobs.length > 0 && cur.raw + b.rawLength > maxRaw)) out.push((cur = { blobs: [], raw: 0 }));
    cur.blobs.push(b);
    cur.raw += b.rawLength;
  }
  return out;
}
