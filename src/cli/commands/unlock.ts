import type { Command } from 'commander';
import { CliContext } from '../context.js';
import { describeLock, removeLocks } from '../../repo/lock.js';

export function registerUnlock(program: Command): void {
  program
    .command('unlock')
    .description('remove stale locks (a dead process\'s on this host, or locks not refreshed for 30 minutes)')
    .option('--remove-all', 'remove every lock, even live ones (only when no other lifeboat uses the repository)')
    .action(async (o: { removeAll?: boolean }, cmd: Command) => {
      const ctx = CliContext.from(cmd);
      const removed = await ctx.withRepository((repo) => removeLocks(repo.storage, repo.keys.encryption, !!o.removeAll), { sync: false });
      if (ctx.out.json) {
        ctx.out.printJson(removed.map((l) => ({ id: l.name.slice('locks/'.length), ...(l.info ?? { unreadable: true }) })));
        return;
      }
      for (const l of removed) ctx.out.info(`removed ${describeLock(l)}`);
      ctx.out.info(`${removed.length} lock${removed.length === 1 ? '' : 's'} removed`);
    });
}
