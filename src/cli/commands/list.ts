import type { Command } from 'commander';
import { CliContext } from '../context.js';
import { UsageError } from '../exit-codes.js';
import { table } from '../output.js';
import { listLocks, isStale } from '../../repo/lock.js';
import { listObjects } from '../../repo/listing.js';

const TYPES = ['snapshots', 'index', 'packs', 'keys', 'locks'] as const;
type ListType = (typeof TYPES)[number];

export function registerList(program: Command): void {
  program
    .command('list')
    .description(`list objects in the repository: ${TYPES.join(', ')}`)
    .argument('<type>', TYPES.join('|'))
    .action(async (type: string, _o: unknown, cmd: Command) => {
      const ctx = CliContext.from(cmd);
      if (!(TYPES as readonly string[]).includes(type)) throw new UsageError(`unknown type ${type}: use one of ${TYPES.join(', ')}`);
      await ctx.withRepository(async (repo) => {
        const t = type as ListType;
        if (t === 'locks') {
          const locks = await listLocks(repo.storage, repo.keys.encryption);
          const now = Date.now();
          if (ctx.out.json) {
            ctx.out.printJson(locks.map((l) => ({ id: l.name.slice('locks/'.length), stale: isStale(l, now), ...(l.info ?? { unreadable: true }) })));
            return;
          }
          if (ctx.out.opts.verbose > 0) {
            const rows = locks.map((l) => [
              l.name.slice('locks/'.length, 'locks/'.length + 12),
              l.info ? (l.info.exclusive ? 'exclusive' : 'shared') : '?',
              l.info ? `${l.info.username}@${l.info.hostname}` : '(unreadable)',
              l.info ? String(l.info.pid) : '',
              l.info?.time ?? '',
              isStale(l, now) ? 'stale' : '',
            ]);
            ctx.out.result(table(['ID', 'Kind', 'Holder', 'PID', 'Time', ''], rows));
            return;
          }
          for (const l of locks) ctx.out.result(l.name.slice('locks/'.length));
          return;
        }
        const objects = await listObjects(repo.storage, t === 'packs' ? 'data' : t);
        if (ctx.out.json) ctx.out.printJson(objects.map((o) => ({ id: o.id, size: o.size })));
        else for (const o of objects) ctx.out.result(o.id);
      }, { sync: false });
    });
}
