/**
 * Fetching file contents for a restore: every needed blob is located once in the index, blobs
 * are grouped per pack and adjacent ones merged into one ranged GET, and ranges are fetched
 * several at a time. Each blob is opened (decrypted, decompressed, id verified) once and handed
 * to every place that uses it.
 */
import type { Repository } from '../repo/repository.js';
import { packName } from '../repo/repository.js';
import { openBlob } from '../repo/blob.js';
import { fromHexId } from '../util/hex.js';

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
export const MAX_RANGE = 24 << 20;

/** Groups blobs by pack and merges neighbours into ranges (sorted by pack, then offset). */
export function planRanges(blobs: Iterable<BlobRef>, gap = MERGE_GAP, maxRange = MAX_RANGE): FetchRange[] {
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
    for (const b of list) {
      const end = b.offset + b.length;
      if (cur && b.offset - (cur.offset + cur.length) <= gap && end - cur.offset <= maxRange) {
        cur.length = Math.max(cur.length, end - cur.offset);
        cur.blobs.push(b);
      } else {
        cur = { packId, offset: b.offset, length: b.length, blobs: [b] };
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

/**
 * Fetches every range with `concurrency` requests in flight and calls `onBlob` (awaited, so
 * slow writes hold back fetching) with each blob's verified plaintext. A range that fails is
 * retried blob by blob through repo.loadBlob (which tries every copy); a blob that still fails
 * goes to `onError`.
 */
export async function fetchRanges(
  repo: Repository,
  ranges: FetchRange[],
  concurrency: number,
  onBlob: (b: BlobRef, data: Buffer) => Promise<void>,
  onError: (b: BlobRef, e: Error) => void,
  stats: FetchStats,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < ranges.length) {
      const r = ranges[next++]!;
      const name = packName(r.packId);
      let bytes: Buffer | null = null;
      try {
        stats.requests++;
        bytes = await repo.storage.get(name, { offset: r.offset, length: r.length });
        stats.bytesDownloaded += bytes.length;
        if (bytes.length !== r.length) bytes = null;
      } catch {
        bytes = null;
      }
      for (const b of r.blobs) {
        let data: Buffer;
        try {
          if (bytes) {
            const start = b.offset - r.offset;
            try {
              data = openBlob(repo.keys, fromHexId(b.id), bytes.subarray(start, start + b.length), name);
            } catch {
              data = await repo.loadBlob(fromHexId(b.id));
            }
          } else {
            data = await repo.loadBlob(fromHexId(b.id));
          }
        } catch (e) {
          onError(b, e instanceof Error ? e : new Error(String(e)));
          continue;
        }
        await onBlob(b, data);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, ranges.length)) }, worker));
}
