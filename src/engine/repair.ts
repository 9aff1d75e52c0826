/**
 * `repair index` and `repair snapshots` (restic's semantics).
 *
 * repair index: the index is rebuilt from what the packs say about themselves (format §6: every
 * pack ends with its header). Packs already named by a readable index file with the right size
 * are trusted unless `readAllPacks`; every other pack's header is read. A consolidated index
 * naming exactly the readable packs is written, then every old index file is deleted.
 *
 * repair snapshots: each snapshot whose trees cannot be loaded or whose files name blobs the
 * index lacks is rewritten: an unreadable directory becomes an empty one, a file keeps the
 * chunks that are still there. The new snapshot carries the tag `repaired` and the original's
 * id; with `forget`, the original is removed.
 */
import type { Repository } from '../repo/repository.js';
import type { IndexPack, Snapshot } from '../repo/formats.js';
import { listObjects } from '../repo/listing.js';
import { AppendOnlyError } from '../repo/errors.js';
import { mapLimit } from '../util/concurrency.js';
import { fromHexId, toHex } from '../util/hex.js';
import { writeConsolidatedIndex } from './prune.js';
import { INDEX_FILE_BLOBS, splitIndexPacks } from '../repo/index-split.js';
import { decodeTree, encodeTree, type Tree, type TreeNode } from './tree.js';

export interface RepairIndexOptions {
  readAllPacks?: boolean;
  onProgress?: (phase: string, done: number, total: number) => void;
}

export interface RepairIndexResult {
  packs: number;
  packsRead: number;
  /** Packs whose header could not be read: their blobs are lost to the index. */
  damagedPacks: Array<{ id: string; message: string }>;
  indexFilesWritten: number;
  indexFilesRemoved: number;
  unreadableIndexFiles: number;
}

export async function repairIndex(repo: Repository, opts: RepairIndexOptions = {}): Promise<RepairIndexResult> {
  const progress = opts.onProgress ?? (() => undefined);
  if (repo.appendOnly) throw new AppendOnlyError('rebuild the index (it deletes the old index files)');
  await repo.syncIndex();
  const unreadable = repo.unreadableIndex.size;
  const stored = await listObjects(repo.storage, 'data');
  const indexed = new Map(repo.cache.packs().map((p) => [p.id, p.size]));
  const toRead = stored.filter((o) => opts.readAllPacks || indexed.get(o.id) !== o.size);
  const oldIndex = (await listObjects(repo.storage, 'index')).map((o) => o.id);
  const damagedPacks: RepairIndexResult['damagedPacks'] = [];
  // packs read from their headers go into index files at once (memory stays bounded)
  const fresh: string[] = [];
  let batch: IndexPack[] = [];
  let batchBlobs = 0;
  let read = 0;
  const writeBatch = async () => {
    if (batch.length === 0) return;
    const packs = batch;
    batch = [];
    batchBlobs = 0;
    for (const part of splitIndexPacks(packs)) {
      const id = await repo.saveIndexFile({ version: 1, supersedes: [], packs: part });
      fresh.push(id);
      for (const p of part) freshIndexOf.set(p.id, [...(freshIndexOf.get(p.id) ?? []), id]);
    }
  };
  const freshIndexOf = new Map<string, string[]>(); // pack id → the new index files naming it
  await mapLimit(toRead, 8, async (o) => {
    try {
      const entries = await repo.readPackHeader(o.id);
      batch.push({
        id: o.id,
        type: entries[0]!.type,
        size: o.size,
        blobs: entries.map((e) => ({ id: toHex(e.id), offset: e.offset, length: e.length, raw_length: e.rawLength })),
      });
      batchBlobs += entries.length;
      if (batchBlobs >= INDEX_FILE_BLOBS) await writeBatch();
    } catch (e) {
      damagedPacks.push({ id: o.id, message: (e as Error).message });
    }
    progress('packs', ++read, toRead.length);
  });
  await writeBatch();
  // the final index: every stored pack, from its header where it was read, else from the old index
  const storedIds = new Set(stored.map((o) => o.id));
  const damaged = new Set(damagedPacks.map((d) => d.id));
  const sizes = new Map(stored.map((o) => [o.id, o.size]));
  const keep = repo.cache.packs().map((p) => p.id).filter((id) => storedIds.has(id) && !damaged.has(id));
  // a re-read pack's entries come from its header only, never from an old (wrong) index entry
  const entriesOf = (id: string) => {
    const fromHeader = freshIndexOf.get(id);
    return fromHeader ? fromHeader.flatMap((f) => repo.cache.blobsInPackOf(id, f)) : repo.cache.blobsInPack(id);
  };
  const written = await writeConsolidatedIndex(repo, keep, (id) => sizes.get(id)!, entriesOf);
  const writtenSet = new Set(written);
  const obsolete = [...oldIndex, ...fresh].filter((id) => !writtenSet.has(id));
  await repo.deleteIndexFiles(obsolete);
  return {
    packs: stored.length,
    packsRead: toRead.length,
    damagedPacks,
    indexFilesWritten: written.length,
    indexFilesRemoved: oldIndex.filter((id) => !writtenSet.has(id)).length,
    unreadableIndexFiles: unreadable,
  };
}

export interface RepairSnapshotsOptions {
  forget?: boolean;
  dryRun?: boolean;
  info?: (line: string) => void;
}

export interface RepairedSnapshot {
  original: string;
  /** The new snapshot's id (absent in a dry run). */
  repaired?: string;
  changes: string[];
}

export async function repairSnapshots(
  repo: Repository,
  snapshots: Array<{ id: string; snapshot: Snapshot }>,
  opts: RepairSnapshotsOptions = {},
): Promise<RepairedSnapshot[]> {
  const info = opts.info ?? (() => undefined);
  if (repo.appendOnly && opts.forget && !opts.dryRun) throw new AppendOnlyError('remove the original snapshots (repair snapshots without --forget)');
  // what the repository holds decides what is damaged, not the local tree cache
  repo.bypassTreeCache = true;
  const rewritten = new Map<string, { id: string; changes: string[] }>();
  const out: RepairedSnapshot[] = [];

  const rewrite = async (treeId: string, path: string): Promise<{ id: string; changes: string[] }> => {
    const memo = rewritten.get(treeId);
    if (memo) return memo;
    let tree: Tree;
    const changes: string[] = [];
    try {
      tree = decodeTree(await repo.loadBlob(fromHexId(treeId)));
    } catch (e) {
      changes.push(`${path}: directory cannot be read (${(e as Error).message}); replaced by an empty directory`);
      tree = { nodes: [] };
    }
    const nodes: TreeNode[] = [];
    for (const n of tree.nodes) {
      const childPath = (path === '/' ? '/' : `${path}/`) + n.name.toString('utf8');
      if (n.type === 'dir' && n.subtree) {
        const sub = await rewrite(n.subtree, childPath);
        changes.push(...sub.changes);
        nodes.push(sub.id === n.subtree ? n : { ...n, subtree: sub.id });
      } else if (n.content && n.content.some((c) => !repo.cache.has(fromHexId(c)))) {
        const content = n.content.filter((c) => repo.cache.has(fromHexId(c)));
        const size = content.reduce((a, c) => a + (repo.cache.lookup(fromHexId(c))[0]?.rawLength ?? 0), 0);
        changes.push(`${childPath}: ${n.content.length - content.length} of ${n.content.length} chunks are missing; kept ${size} of ${n.size ?? 0} bytes`);
        nodes.push({ ...n, content, size });
      } else {
        nodes.push(n);
      }
    }
    let id = treeId;
    if (changes.length > 0 && !opts.dryRun) {
      id = toHex((await repo.saveBlob('tree', encodeTree({ nodes }))).id);
    }
    const r = { id, changes };
    rewritten.set(treeId, r);
    return r;
  };

  for (const { id, snapshot } of snapshots) {
    const r = await rewrite(snapshot.tree, '/');
    if (r.changes.length === 0) continue;
    for (const c of r.changes) info(`snapshot ${id.slice(0, 8)}: ${c}`);
    if (opts.dryRun) {
      out.push({ original: id, changes: r.changes });
      continue;
    }
    await repo.flush();
    const tags = snapshot.tags.includes('repaired') ? snapshot.tags : [...snapshot.tags, 'repaired'];
    const repaired = await repo.saveSnapshot({ ...snapshot, tree: r.id, tags, original: id });
    if (opts.forget) await repo.deleteSnapshot(id);
    out.push({ original: id, repaired, changes: r.changes });
  }
  return out;
}
