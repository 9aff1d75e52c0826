import type { Command } from 'commander';
import { CliContext } from '../context.js';
import { TreeLoader } from '../../engine/tree-load.js';
import { diffTrees, type DiffSide } from '../../engine/tree-diff.js';
import { fromHexId } from '../../util/hex.js';
import type { Repository } from '../../repo/repository.js';
import { formatBytes } from './backup.js';
import { selectSnapshot, splitSnapshotArg } from './restore.js';

function bytesOf(repo: Repository, ids: Set<string>): number {
  let n = 0;
  for (const id of ids) n += repo.cache.lookup(fromHexId(id))[0]?.rawLength ?? 0;
  return n;
}

export function registerDiff(program: Command): void {
  program
    .command('diff')
    .description('show the differences between two snapshots')
    .argument('<snapshot1>', 'snapshot id, unique prefix or latest')
    .argument('<snapshot2>', 'snapshot id, unique prefix or latest')
    .action(async (r1: string, r2: string, _o: unknown, c: Command) => {
      const ctx = CliContext.from(c);
      const out = ctx.out;
      await ctx.withRepository(async (repo) => {
        const a = await selectSnapshot(repo, splitSnapshotArg(r1).ref, {});
        const b = await selectSnapshot(repo, splitSnapshotArg(r2).ref, {});
        if (!out.json) out.info(`comparing snapshot ${a.id.slice(0, 8)} to ${b.id.slice(0, 8)}:\n`);
        const stats = await diffTrees(new TreeLoader(repo), a.snapshot.tree, b.snapshot.tree, (mod, p) => {
          if (out.json) out.result(JSON.stringify({ message_type: 'change', path: p, modifier: mod }));
          else out.result(`${mod.padEnd(4)} ${p}`);
        });
        const sideJson = (s: DiffSide) => ({
          files: s.files, dirs: s.dirs, others: s.others, data_blobs: s.dataBlobs.size, tree_blobs: s.treeBlobs.size, bytes: bytesOf(repo, s.dataBlobs),
        });
        if (out.json) {
          out.result(JSON.stringify({
            message_type: 'statistics', source_snapshot: a.id, target_snapshot: b.id, changed_files: stats.changedFiles,
            added: sideJson(stats.added), removed: sideJson(stats.removed),
          }));
          return;
        }
        const ad = sideJson(stats.added);
        const rm = sideJson(stats.removed);
        const n = (x: number) => String(x).padStart(5);
        out.result('');
        out.result(`Files:       ${n(ad.files)} new, ${n(rm.files)} removed, ${n(stats.changedFiles)} changed`);
        out.result(`Dirs:        ${n(ad.dirs)} new, ${n(rm.dirs)} removed`);
        out.result(`Others:      ${n(ad.others)} new, ${n(rm.others)} removed`);
        out.result(`Data Blobs:  ${n(ad.data_blobs)} new, ${n(rm.data_blobs)} removed`);
        out.result(`Tree Blobs:  ${n(ad.tree_blobs)} new, ${n(rm.tree_blobs)} removed`);
        out.result(`  Added:   ${formatBytes(ad.bytes)}`);
        out.result(`  Removed: ${formatBytes(rm.bytes)}`);
      }, { sync: true });
    });
}
