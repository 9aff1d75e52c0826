import type { Command } from 'commander';
import { CliContext } from '../context.js';
import { UsageError } from '../exit-codes.js';
import { phaseProgress } from '../phase-progress.js';
import { DEFAULT_GRACE_MS, parseMaxUnused, pruneRepository, type PruneOptions, type PruneResult } from '../../engine/prune.js';
import { parseSize } from '../../engine/excludes.js';
import type { Repository } from '../../repo/repository.js';
import { parseDuration } from '../../util/duration.js';
import { formatBytes } from './backup.js';

export interface PruneCliOptions {
  maxUnused?: string;
  maxRepackSize?: string;
  repackSmall?: boolean;
  dryRun?: boolean;
  grace?: string;
}

/** The prune flags, shared by `prune` and `forget --prune`. */
export function addPruneOptions(cmd: Command): Command {
  return cmd
    .option('--max-unused <limit>', 'tolerate this much unused space: a percentage of the used data, a size, or "unlimited"', '5%')
    .option('--max-repack-size <size>', 'repack at most this many bytes of packs (e.g. 2G)')
    .option('--repack-small', 'also repack packs smaller than half the target pack size')
    .option(
      '--grace <duration>',
      `never delete or repack packs younger than this (default ${DEFAULT_GRACE_MS / 3600000}h): data of a backup running unseen stays safe`,
    );
}

export function pruneOptionsFrom(o: PruneCliOptions): PruneOptions {
  const opts: PruneOptions = { repackSmall: !!o.repackSmall, dryRun: !!o.dryRun };
  try {
    opts.maxUnused = parseMaxUnused(o.maxUnused ?? '5%', parseSize);
  } catch (e) {
    throw new UsageError(`--max-unused: ${(e as Error).message}`);
  }
  if (o.maxRepackSize !== undefined) {
    try {
      opts.maxRepackBytes = parseSize(o.maxRepackSize);
    } catch (e) {
      throw new UsageError(`--max-repack-size: ${(e as Error).message}`);
    }
  }
  if (o.grace !== undefined) {
    try {
      opts.graceMs = parseDuration(o.grace);
    } catch (e) {
      throw new UsageError(`--grace: ${(e as Error).message}`);
    }
  }
  return opts;
}

/** Runs prune on an open, exclusively locked repository and prints the outcome. */
export async function runPrune(ctx: CliContext, repo: Repository, opts: PruneOptions): Promise<PruneResult> {
  const bar = phaseProgress(ctx.out);
  let result: PruneResult;
  try {
    result = await pruneRepository(repo, { ...opts, onProgress: bar.update, info: (l) => ctx.out.debug(l) });
  } finally {
    bar.stop();
  }
  printPruneResult(ctx, result);
  return result;
}

function printPruneResult(ctx: CliContext, r: PruneResult): void {
  if (ctx.out.json) {
    ctx.out.printJson({
      dry_run: r.dryRun,
      snapshots: r.snapshots,
      packs: r.packs,
      used_blobs: r.usedBlobs,
      used_bytes: r.usedBytes,
      unused_bytes: r.unusedBytes,
      packs_to_delete: r.packsToDelete,
      packs_to_repack: r.packsToRepack,
      unreferenced_packs_deleted: r.unreferencedPacksToDelete,
      unreferenced_packs_kept: r.unreferencedPacksKept,
      young_packs_kept: r.youngPacksKept,
      bytes_to_delete: r.bytesToDelete,
      bytes_to_repack: r.bytesToRepack,
      bytes_rewritten: r.bytesRewritten,
      unused_bytes_after: r.unusedAfter,
      packs_written: r.packsWritten,
      index_files_before: r.indexFilesBefore,
      index_files_written: r.indexFilesWritten,
      bytes_freed: r.bytesFreed,
    });
    return;
  }
  const o = ctx.out;
  o.info(`used:      ${r.usedBlobs} blobs, ${formatBytes(r.usedBytes)} in ${r.snapshots} snapshots`);
  o.info(`unused:    ${formatBytes(r.unusedBytes)}`);
  o.info(`to delete: ${r.packsToDelete} packs unused, ${r.unreferencedPacksToDelete} packs in no index (${formatBytes(r.bytesToDelete)})`);
  o.info(`to repack: ${r.packsToRepack} packs (${formatBytes(r.bytesToRepack)}, ${formatBytes(r.bytesRewritten)} kept)`);
  if (r.unreferencedPacksKept + r.youngPacksKept > 0) {
    o.info(`kept:      ${r.youngPacksKept + r.unreferencedPacksKept} packs with unused data younger than the grace period (--grace)`);
  }
  o.info(`remaining unused: ${formatBytes(r.unusedAfter)}`);
  if (r.dryRun) {
    o.info('dry run: nothing was changed');
  } else if (r.packsWritten + r.indexFilesWritten === 0 && r.bytesFreed === 0) {
    o.info('nothing to prune');
  } else {
    o.info(`wrote ${r.packsWritten} packs and ${r.indexFilesWritten} index files (replacing ${r.indexFilesBefore}); freed ${formatBytes(Math.max(0, r.bytesFreed))}`);
  }
}

export function registerPrune(program: Command): void {
  addPruneOptions(
    program
      .command('prune')
      .description('remove data no snapshot references: delete unused packs, repack partly used ones, consolidate the index'),
  )
    .option('-n, --dry-run', 'only show what would be done')
    .action(async (o: PruneCliOptions, cmd: Command) => {
      const ctx = CliContext.from(cmd);
      const opts = pruneOptionsFrom(o);
      await ctx.withRepository((repo) => runPrune(ctx, repo, opts), { lock: 'exclusive', sync: false });
    });
}
