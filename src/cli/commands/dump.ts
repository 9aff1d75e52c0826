import type { Command } from 'commander';
import { Option } from 'commander';
import { CliContext } from '../context.js';
import { UsageError } from '../exit-codes.js';
import { TreeLoader, resolvePath } from '../../engine/tree-load.js';
import { dumpFile, dumpTar } from '../../engine/dump.js';
import { addSnapshotFilterOptions, filterFrom, selectSnapshot } from './restore.js';

interface DumpOptions {
  archive: string;
  host: string[];
  tag: string[];
  path: string[];
}

export function registerDump(program: Command): void {
  const cmd = program
    .command('dump')
    .description('write a file from a snapshot to stdout (a directory as a tar stream)')
    .argument('<snapshot>', 'snapshot id, unique prefix or latest')
    .argument('<path>', 'path in the snapshot')
    .addOption(new Option('-a, --archive <format>', 'archive format for directories').choices(['tar']).default('tar'));
  addSnapshotFilterOptions(cmd).action(async (ref: string, p: string, opts: DumpOptions, c: Command) => {
    const ctx = CliContext.from(c);
    await ctx.withRepository(async (repo) => {
      const entry = await selectSnapshot(repo, ref, filterFrom(opts));
      const r = await resolvePath(new TreeLoader(repo), entry.snapshot.tree, p).catch((e: Error) => {
        throw new UsageError(e.message);
      });
      process.stdout.on('error', () => {}); // EPIPE: the reader went away
      if (r.node && r.node.type === 'file') await dumpFile(repo, r.node, process.stdout);
      else {
        // entries whose names could not be extracted safely ("..", "/" inside, duplicates) are
        // left out of the archive, each named on stderr; the command then exits 1
        let refused = 0;
        await dumpTar(repo, entry.snapshot.tree, p, process.stdout, (m) => {
          if (m.startsWith('skipping ')) refused++;
          ctx.out.warn(m);
        });
        if (refused > 0) throw new UsageError(`${refused} entries were left out of the archive (unsafe names)`);
      }
    }, { sync: true, lock: ctx.readLock() });
  });
}
