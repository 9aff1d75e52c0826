import fs from 'node:fs';
import type { Command } from 'commander';
import { CliContext } from '../context.js';
import { defaultCacheDir } from '../../repo/cache-dir.js';

export function registerCache(program: Command): void {
  const cache = program.command('cache').description('inspect or reset the local index cache (always safe to delete)');

  cache
    .command('info')
    .description('show where the cache is and what it holds, after syncing it')
    .action(async (_o: unknown, cmd: Command) => {
      const ctx = CliContext.from(cmd);
      await ctx.withRepository(async (repo) => {
        const s = repo.cache.stats();
        const info = { repository: repo.id, directory: repo.cacheDir, ...s };
        if (ctx.out.json) return ctx.out.printJson(info);
        ctx.out.result(`repository   ${repo.id}`);
        ctx.out.result(`directory    ${repo.cacheDir}`);
        ctx.out.result(`index files  ${s.indexFiles}`);
        ctx.out.result(`packs        ${s.packs}`);
        ctx.out.result(`blobs        ${s.blobs}`);
        ctx.out.result(`snapshots    ${s.snapshots}`);
        ctx.out.result(`size         ${s.dbBytes} bytes`);
      });
    });

  cache
    .command('rebuild')
    .description('delete this repository\'s cache and build it again from the repository')
    .action(async (_o: unknown, cmd: Command) => {
      const ctx = CliContext.from(cmd);
      // open once to learn the repository id, drop its cache, then open again to rebuild
      const dir = await ctx.withRepository(async (repo) => repo.cacheDir, { sync: false });
      fs.rmSync(dir, { recursive: true, force: true });
      await ctx.withRepository(async (repo) => {
        const idx = await repo.syncIndex();
        const snaps = await repo.syncSnapshots();
        const s = repo.cache.stats();
        if (ctx.out.json) return ctx.out.printJson({ directory: repo.cacheDir, index_files_read: idx.added, snapshots_read: snaps.added, ...s });
        ctx.out.info(`rebuilt ${repo.cacheDir}: ${idx.added} index files, ${s.packs} packs, ${s.blobs} blobs, ${snaps.added} snapshots`);
      }, { sync: false });
    });

  cache
    .command('clear')
    .description('delete the local caches of every repository (nothing in a repository is touched)')
    .action(async (_o: unknown, cmd: Command) => {
      const ctx = CliContext.from(cmd);
      const root = defaultCacheDir(ctx.globals.cacheDir);
      const entries = fs.existsSync(root) ? fs.readdirSync(root).filter((n) => /^[0-9a-f]{64}$/.test(n)) : [];
      for (const n of entries) fs.rmSync(`${root}/${n}`, { recursive: true, force: true });
      if (ctx.out.json) ctx.out.printJson({ directory: root, removed: entries.length });
      else ctx.out.info(`removed ${entries.length} cache director${entries.length === 1 ? 'y' : 'ies'} from ${root}`);
    });
}
