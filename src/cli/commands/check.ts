import type { Command } from 'commander';
import { CliContext } from '../context.js';
import { EXIT, UsageError } from '../exit-codes.js';
import { phaseProgress } from '../phase-progress.js';
import { checkRepository, parseReadDataSubset, type ReadDataSelection } from '../../engine/check.js';
import { parseSize } from '../../engine/excludes.js';
import { formatBytes } from './backup.js';

interface CheckCliOptions {
  readData?: boolean;
  readDataSubset?: string;
}

export function registerCheck(program: Command): void {
  program
    .command('check')
    .description('check the repository: structure always, pack contents with --read-data')
    .option('--read-data', 'read every pack and verify every blob')
    .option('--read-data-subset <subset>', 'read only a subset of the packs: N% (random), n/t (group n of t), or a size (e.g. 2G)')
    .action(async (opts: CheckCliOptions, cmd: Command) => {
      const ctx = CliContext.from(cmd);
      if (opts.readData && opts.readDataSubset) throw new UsageError('use either --read-data or --read-data-subset');
      let readData: ReadDataSelection | undefined = opts.readData ? { kind: 'all' } : undefined;
      if (opts.readDataSubset !== undefined) {
        try {
          readData = parseReadDataSubset(opts.readDataSubset, parseSize);
        } catch (e) {
          throw new UsageError(`--read-data-subset: ${(e as Error).message}`);
        }
      }
      const bar = phaseProgress(ctx.out);
      const result = await ctx.withRepository(
        (repo) =>
          checkRepository(repo, {
            readData,
            onProgress: bar.update,
            onFinding: (f) => {
              if (ctx.out.json) return;
              bar.stop();
              if (f.severity === 'error') process.stderr.write(`error: ${f.message}\n`);
              else ctx.out.info(`note: ${f.message}`);
            },
          }).finally(bar.stop),
        { lock: 'shared', sync: false },
      );
      const s = result.stats;
      if (ctx.out.json) {
        ctx.out.printJson({
          ok: result.errors === 0,
          errors: result.findings.filter((f) => f.severity === 'error'),
          warnings: result.findings.filter((f) => f.severity === 'warning'),
          snapshots_affected: result.affectedSnapshots,
          stats: {
            snapshots: s.snapshots,
            index_files: s.indexFiles,
            packs: s.packs,
            blobs: s.blobs,
            trees: s.trees,
            packs_read: s.packsRead,
            bytes_read: s.bytesRead,
          },
        });
      } else {
        ctx.out.info(`checked ${s.snapshots} snapshots, ${s.indexFiles} index files, ${s.packs} packs, ${s.blobs} blobs, ${s.trees} trees`);
        if (readData) ctx.out.info(`read ${s.packsRead} packs (${formatBytes(s.bytesRead)})`);
        if (result.affectedSnapshots.length > 0) {
          process.stderr.write(`snapshots affected: ${result.affectedSnapshots.map((id) => id.slice(0, 8)).join(' ')}\n`);
        }
        if (result.errors === 0) ctx.out.info('no errors were found');
      }
      if (result.errors > 0) {
        throw new UsageError(`check found ${result.errors} error${result.errors === 1 ? '' : 's'} in the repository`, EXIT.error);
      }
    });
}
