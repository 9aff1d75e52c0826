import type { Command } from 'commander';
import { CliContext } from '../context.js';
import { UsageError } from '../exit-codes.js';
import { phaseProgress } from '../phase-progress.js';
import { repairIndex, repairSnapshots } from '../../engine/repair.js';
import { filterSnapshots } from '../../engine/snapshot-select.js';

const collect = (v: string, prev: string[]) => prev.concat([v]);

export function registerRepair(program: Command): void {
  const repair = program.command('repair').description('repair a damaged repository: the index, or snapshots whose data is gone');

  repair
    .command('index')
    .description('rebuild the index from the packs\' own headers (when index files are lost or damaged)')
    .option('--read-all-packs', 'read every pack\'s header, not only packs the index lacks or gets wrong')
    .action(async (o: { readAllPacks?: boolean }, cmd: Command) => {
      const ctx = CliContext.from(cmd);
      const bar = phaseProgress(ctx.out);
      const r = await ctx.withRepository(
        (repo) => repairIndex(repo, { readAllPacks: !!o.readAllPacks, onProgress: bar.update }).finally(bar.stop),
        { lock: 'exclusive', sync: false },
      );
      if (ctx.out.json) {
        ctx.out.printJson({
          packs: r.packs,
          packs_read: r.packsRead,
          damaged_packs: r.damagedPacks,
          index_files_written: r.indexFilesWritten,
          index_files_removed: r.indexFilesRemoved,
          unreadable_index_files: r.unreadableIndexFiles,
        });
      } else {
        for (const d of r.damagedPacks) process.stderr.write(`error: pack ${d.id}: ${d.message} (its blobs are left out of the index)\n`);
        ctx.out.info(
          `read ${r.packsRead} of ${r.packs} pack headers; wrote ${r.indexFilesWritten} index files, removed ${r.indexFilesRemoved}` +
            (r.unreadableIndexFiles > 0 ? ` (${r.unreadableIndexFiles} of them unreadable)` : ''),
        );
      }
      if (r.damagedPacks.length > 0) {
        throw new UsageError(`${r.damagedPacks.length} packs could not be read; run "lifeboat check", then "lifeboat repair snapshots"`);
      }
    });

  repair
    .command('snapshots')
    .description('rewrite snapshots whose trees or file contents are missing (the damaged parts are dropped)')
    .argument('[snapshot...]', 'snapshots to repair (default: all matching the filters)')
    .option('--forget', 'remove the original snapshots after writing the repaired ones')
    .option('-n, --dry-run', 'only show what would be done')
    .option('--host <hostname>', 'only snapshots of this host (repeatable)', collect, [])
    .option('--tag <tags>', 'only snapshots with these tags (repeatable)', collect, [])
    .option('--path <path>', 'only snapshots with exactly these paths (repeatable)', collect, [])
    .action(async (ids: string[], o: { forget?: boolean; dryRun?: boolean; host: string[]; tag: string[]; path: string[] }, cmd: Command) => {
      const ctx = CliContext.from(cmd);
      const repaired = await ctx.withRepository(
        async (repo) => {
          let list = filterSnapshots(await repo.listSnapshots(), { hosts: o.host, tags: o.tag, paths: o.path });
          if (ids.length > 0) {
            const wanted = new Set<string>();
            for (const id of ids) wanted.add(await repo.resolveId('snapshots', id));
            list = list.filter((e) => wanted.has(e.id));
          }
          return repairSnapshots(repo, list, { forget: !!o.forget, dryRun: !!o.dryRun, info: (l) => ctx.out.info(l) });
        },
        { lock: 'exclusive', sync: false },
      );
      if (ctx.out.json) {
        ctx.out.printJson(repaired.map((r) => ({ original: r.original, repaired: r.repaired ?? null, changes: r.changes })));
        return;
      }
      if (repaired.length === 0) ctx.out.info('no snapshot needed repair');
      for (const r of repaired) {
        if (r.repaired) ctx.out.info(`snapshot ${r.original.slice(0, 8)} repaired as ${r.repaired.slice(0, 8)}${o.forget ? ' (original removed)' : ''}`);
        else ctx.out.info(`snapshot ${r.original.slice(0, 8)} would be repaired (dry run)`);
      }
    });
}
