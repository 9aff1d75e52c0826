/**
 * `prune`: reclaims the space of data no snapshot references. It plans from the index (which
 * blobs of which packs are still used), then, in the order of format §12: repacks the used blobs
 * of partly used packs into new packs, writes a consolidated index naming every pack that stays,
 * deletes the old index files, and only then deletes packs. A crash at any step leaves a readable
 * repository (at worst unreferenced packs, reclaimed by a later prune after the grace period).
 *
 * Safety beyond the exclusive lock: no pack younger than the grace period is deleted or repacked,
 * whether an index names it or not — a backup that somehow runs unseen (a lock lost to a clock
 * or an eventually consistent listing) keeps the data it has uploaded so far.
 */
import type { Repository } from '../repo/repository.js';
import { packName } from '../repo/repository.js';
import { ScratchDb } from '../cache/scratch-db.js';
import type { PackBlob } from '../cache/index-db.js';
import { verifyPackBytes } from '../repo/pack.js';
import { AppendOnlyError } from '../repo/errors.js';
import type { IndexPack } from '../repo/formats.js';
import { listObjects } from '../repo/listing.js';
import { INDEX_FILE_BLOBS, splitIndexPacks } from '../repo/index-split.js';
import { toHex } from '../util/hex.js';
import { ReachWalker } from './reach.js';

/** Default grace period for young packs (DESIGN: hours, not seconds). */
export const DEFAULT_GRACE_MS = 4 * 3600 * 1000;

export type MaxUnused = { kind: 'percent'; percent: number } | { kind: 'bytes'; bytes: number } | { kind: 'unlimited' };

export interface PruneOptions {
  maxUnused?: MaxUnused;
  /** Stop repacking after this many bytes of packs (restic's --max-repack-size). */
  maxRepackBytes?: number;
  /** Also repack packs smaller than half the target size (when there are two or more of a type). */
  repackSmall?: boolean;
  dryRun?: boolean;
  graceMs?: number;
  now?: number;
  onProgress?: (phase: string, done: number, total: number) => void;
  info?: (line: string) => void;
}

export class PruneRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PruneRefusedError';
  }
}

interface PackStat {
  id: string;
  type: 0 | 1;
  size: number;
  usedBlobs: number;
  usedBytes: number;
  unusedBlobs: number;
  unusedBytes: number;
  /** Uploaded less than the grace period ago: never deleted or repacked (yet). */
  young: boolean;
}

export interface PrunePlanSummary {
  snapshots: number;
  packs: number;
  usedBlobs: number;
  usedBytes: number;
  unusedBytes: number;
  packsToDelete: number;
  packsToRepack: number;
  unreferencedPacksToDelete: number;
  unreferencedPacksKept: number;
  /** Packs with unused data left alone because they are younger than the grace period. */
  youngPacksKept: number;
  bytesToDelete: number;
  bytesToRepack: number;
  /** Bytes the repacked packs' used blobs take again. */
  bytesRewritten: number;
  unusedAfter: number;
  indexFilesBefore: number;
}

export interface PruneResult extends PrunePlanSummary {
  dryRun: boolean;
  packsWritten: number;
  indexFilesWritten: number;
  bytesFreed: number;
}

export async function pruneRepository(repo: Repository, opts: PruneOptions = {}): Promise<PruneResult> {
  const info = opts.info ?? (() => undefined);
  const progress = opts.onProgress ?? (() => undefined);
  const now = opts.now ?? Date.now();
  const grace = opts.graceMs ?? DEFAULT_GRACE_MS;

  // refuse before uploading anything: repacked data could never be cleaned up
  if (repo.appendOnly && !opts.dryRun) throw new AppendOnlyError('prune');
  // an index the cache could not read may name packs that hold used blobs: never guess
  await repo.syncIndex();
  if (repo.unreadableIndex.size > 0) {
    const [id, why] = repo.unreadableIndex.entries().next().value!;
    throw new PruneRefusedError(`index file ${id} cannot be read (${why}); run "lifeboat repair index" first`);
  }
  const snapshots = await repo.listSnapshots();
  if (repo.unreadableSnapshots.size > 0) {
    // what it references is unknown, so nothing may be deleted
    const [id, why] = repo.unreadableSnapshots.entries().next().value!;
    throw new PruneRefusedError(`snapshot ${id} cannot be read (${why}); remove it with "lifeboat forget ${id.slice(0, 8)}" if it is lost, then prune`);
  }

  const scratch = new ScratchDb(repo.cacheDir);
  try {
    // 1. what the snapshots use
    const used = scratch.idSet('used');
    const missing: string[] = [];
    const walker = new ReachWalker(repo, scratch.idMap('tree_state'), {
      onTree(id) {
        used.add(id);
      },
      onContent(id, path) {
        if (used.add(id) && !repo.cache.has(id) && missing.length < 5) missing.push(`blob ${toHex(id)} of ${path()}`);
        return false;
      },
      onTreeError(id, error, path) {
        missing.push(`tree ${id} (${path}): ${error.message}`);
      },
    });
    let done = 0;
    for (const s of snapshots) {
      await walker.walk(s.snapshot.tree);
      progress('snapshots', ++done, snapshots.length);
      if (missing.length > 0) break;
    }
    if (missing.length > 0) {
      throw new PruneRefusedError(`snapshots reference data the repository lacks (${missing[0]}); run "lifeboat check" and "lifeboat repair snapshots" first`);
    }

    // 2. where each used blob stays, and what each pack holds
    const storedPacks = new Map((await listObjects(repo.storage, 'data')).map((o) => [o.id, o]));
    const indexFiles = await listObjects(repo.storage, 'index');
    const packOrdinal = new Map<string, number>();
    const packs: PackStat[] = [];
    const sizes = new Map(repo.cache.packs().map((p) => [p.id, p]));
    const keptIn = scratch.idMap('kept_in');
    scratch.batch(() => {
      for (const b of repo.cache.allPackBlobs()) {
        if (!storedPacks.has(b.packId)) continue; // a missing pack keeps nothing
        let ord = packOrdinal.get(b.packId);
        if (ord === undefined) {
          ord = packs.length;
          packOrdinal.set(b.packId, ord);
          const meta = sizes.get(b.packId);
          packs.push({
            id: b.packId,
            type: b.type,
            size: meta?.size ?? storedPacks.get(b.packId)!.size,
            usedBlobs: 0,
            usedBytes: 0,
            unusedBlobs: 0,
            unusedBytes: 0,
            young: grace > 0 && now - storedPacks.get(b.packId)!.mtimeMs < grace,
          });
        }
        const p = packs[ord]!;
        if (used.has(b.id) && keptIn.setIfAbsent(b.id, ord)) {
          p.usedBlobs++;
          p.usedBytes += b.length;
        } else {
          p.unusedBlobs++;
          p.unusedBytes += b.length;
        }
      }
    });
    const usedCount = used.size;
    const keptCount = scratch.db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM kept_in').get()!.n;
    if (keptCount < usedCount) {
      throw new PruneRefusedError(`${usedCount - keptCount} used blobs are in no existing pack; run "lifeboat check" first`);
    }

    // 3. the plan
    const toDelete: PackStat[] = [];
    const toRepack: PackStat[] = [];
    const candidates: PackStat[] = [];
    let usedBytes = 0;
    let unusedBytes = 0;
    for (const p of packs) {
      usedBytes += p.usedBytes;
      unusedBytes += p.unusedBytes;
      if (p.young) continue;
      if (p.usedBlobs === 0) toDelete.push(p);
      else if (p.unusedBlobs > 0) candidates.push(p);
    }
    const limit = maxUnusedBytes(opts.maxUnused ?? { kind: 'percent', percent: 5 }, usedBytes);
    let unusedLeft = unusedBytes - toDelete.reduce((a, p) => a + p.unusedBytes, 0);
    let repackBudget = opts.maxRepackBytes ?? Number.POSITIVE_INFINITY;
    candidates.sort((a, b) => b.unusedBytes / b.size - a.unusedBytes / a.size || b.unusedBytes - a.unusedBytes);
    for (const p of candidates) {
      if (unusedLeft <= limit) break;
      if (p.size > repackBudget) continue;
      toRepack.push(p);
      repackBudget -= p.size;
      unusedLeft -= p.unusedBytes;
    }
    if (opts.repackSmall) {
      const target = repo.config.pack_size;
      for (const type of [0, 1] as const) {
        const chosen = new Set(toRepack.map((p) => p.id));
        const small = packs.filter((p) => p.type === type && !p.young && p.usedBlobs > 0 && !chosen.has(p.id) && p.size < target / 2);
        if (small.length < 2) continue;
        for (const p of small) {
          if (p.size > repackBudget) continue;
          toRepack.push(p);
          repackBudget -= p.size;
          unusedLeft -= p.unusedBytes;
        }
      }
    }
    const unreferenced = [...storedPacks.values()].filter((o) => !sizes.has(o.id));
    const unrefDelete = unreferenced.filter((o) => grace <= 0 || now - o.mtimeMs >= grace);
    const summary: PrunePlanSummary = {
      snapshots: snapshots.length,
      packs: storedPacks.size,
      usedBlobs: usedCount,
      usedBytes,
      unusedBytes,
      packsToDelete: toDelete.length,
      packsToRepack: toRepack.length,
      unreferencedPacksToDelete: unrefDelete.length,
      unreferencedPacksKept: unreferenced.length - unrefDelete.length,
      youngPacksKept: packs.filter((p) => p.young && p.unusedBlobs > 0).length,
      bytesToDelete: toDelete.reduce((a, p) => a + p.size, 0) + unrefDelete.reduce((a, o) => a + o.size, 0),
      bytesToRepack: toRepack.reduce((a, p) => a + p.size, 0),
      bytesRewritten: toRepack.reduce((a, p) => a + p.usedBytes, 0),
      unusedAfter: Math.max(0, unusedLeft),
      indexFilesBefore: indexFiles.length,
    };
    const nothingToDo = toDelete.length + toRepack.length + unrefDelete.length === 0;
    const indexNeeded = Math.max(1, Math.ceil(repo.cache.stats().blobs / INDEX_FILE_BLOBS) + 1);
    const consolidate = !nothingToDo || indexFiles.length > indexNeeded;
    if (opts.dryRun || (nothingToDo && !consolidate)) {
      return { ...summary, dryRun: !!opts.dryRun, packsWritten: 0, indexFilesWritten: 0, bytesFreed: 0 };
    }

    // 4. repack: the used blobs of each chosen pack go into new packs (bytes copied as sealed,
    // after the whole pack's SHA-256 proves them intact)
    const uploadedBefore = repo.uploadedBytes;
    let repacked = 0;
    for (const p of toRepack) {
      const name = packName(p.id);
      const bytes = await repo.storage.get(name);
      verifyPackBytes(name, p.id, bytes);
      const ord = packOrdinal.get(p.id)!;
      for (const b of repo.cache.blobsInPack(p.id)) {
        if (keptIn.get(b.id) !== ord) continue;
        await repo.repackBlob({
          id: b.id,
          type: b.type === 0 ? 'data' : 'tree',
          sealed: Buffer.from(bytes.subarray(b.offset, b.offset + b.length)),
          rawLength: b.rawLength,
        });
      }
      progress('repack', ++repacked, toRepack.length);
    }
    await repo.flush();
    const after = new Map(repo.cache.packs().map((p) => [p.id, p]));
    const packsWritten = [...after.keys()].filter((id) => !sizes.has(id)).length;

    // 5. a consolidated index naming every pack that stays (not the ones going, not indexed
    // packs the store has lost), then the old index files go
    const going = new Set([...toDelete, ...toRepack].map((p) => p.id));
    const oldIndex = [...repo.cache.indexIds()];
    const keep = [...after.keys()].filter((id) => !going.has(id) && (storedPacks.has(id) || !sizes.has(id)));
    const written = await writeConsolidatedIndex(repo, keep, (id) => after.get(id)!.size);
    const writtenSet = new Set(written);
    await repo.deleteIndexFiles(oldIndex.filter((id) => !writtenSet.has(id)));
    info(`index: ${written.length} files written, ${oldIndex.length} replaced`);

    // 6. packs last
    let freed = 0;
    let deleted = 0;
    const doomed = [...going, ...unrefDelete.map((o) => o.id)];
    await repo.deletePacks(doomed, (id) => {
      freed += storedPacks.get(id)?.size ?? 0;
      progress('delete', ++deleted, doomed.length);
    });
    repo.pruneTreeCache();
    return {
      ...summary,
      dryRun: false,
      packsWritten,
      indexFilesWritten: written.length,
      bytesFreed: freed - (repo.uploadedBytes - uploadedBefore),
    };
  } finally {
    scratch.close();
  }
}

function maxUnusedBytes(m: MaxUnused, used: number): number {
  switch (m.kind) {
    case 'unlimited':
      return Number.POSITIVE_INFINITY;
    case 'bytes':
      return m.bytes;
    case 'percent':
      // restic's rule: unused may be this share of the repository after prune
      return m.percent >= 100 ? Number.POSITIVE_INFINITY : (m.percent / (100 - m.percent)) * used;
  }
}

/**
 * Writes index files naming the given packs (at most INDEX_FILE_BLOBS blobs each; a pack with
 * more blobs is split across files) and returns their ids. Packs are read from the cache one at
 * a time, so memory stays bounded.
 */
export async function writeConsolidatedIndex(
  repo: Repository,
  packIds: string[],
  sizeOf: (id: string) => number,
  entriesOf: (id: string) => PackBlob[] = (id) => repo.cache.blobsInPack(id),
): Promise<string[]> {
  const ids: string[] = [];
  let batch: IndexPack[] = [];
  let blobs = 0;
  const flush = async () => {
    for (const part of splitIndexPacks(batch)) ids.push(await repo.saveIndexFile({ version: 1, supersedes: [], packs: part }));
    batch = [];
    blobs = 0;
  };
  for (const id of packIds.sort()) {
    const entries = entriesOf(id);
    if (entries.length === 0) continue;
    if (blobs > 0 && blobs + entries.length > INDEX_FILE_BLOBS) await flush();
    batch.push({
      id,
      type: entries[0]!.type === 0 ? 'data' : 'tree',
      size: sizeOf(id),
      blobs: entries.map((b) => ({ id: toHex(b.id), offset: b.offset, length: b.length, raw_length: b.rawLength })),
    });
    blobs += entries.length;
  }
  await flush();
  return ids;
}

export function parseMaxUnused(text: string, parseSize: (s: string) => number): MaxUnused {
  if (text === 'unlimited') return { kind: 'unlimited' };
  const m = /^(\d+(?:\.\d+)?)%$/.exec(text);
  if (m) {
    const percent = Number(m[1]);
    if (percent < 0 || percent > 100) throw new Error(`must be between 0% and 100%: ${text}`);
    return { kind: 'percent', percent };
  }
  try {
    return { kind: 'bytes', bytes: parseSize(text) };
  } catch {
    throw new Error(`expected a percentage, a size or "unlimited": ${text}`);
  }
}
