import type { Command } from 'commander';
import { CliContext } from '../context.js';
import { UsageError } from '../exit-codes.js';
import { toHex } from '../../util/hex.js';
import type { Repository } from '../../repo/repository.js';

const KINDS = ['config', 'keys', 'index', 'snapshot', 'pack-header'] as const;
type Kind = (typeof KINDS)[number];

async function catObject(repo: Repository, kind: Kind, id: string | undefined): Promise<unknown> {
  const need = (): string => {
    if (!id) throw new UsageError(`cat ${kind} needs an id`);
    return id;
  };
  switch (kind) {
    case 'config':
      return repo.config;
    case 'keys': {
      const keys = await repo.listKeys();
      const chosen = id ? keys.filter((k) => k.id.startsWith(id)) : keys;
      if (id && chosen.length !== 1) throw new UsageError(`${chosen.length === 0 ? 'no' : 'more than one'} key file matches ${id}`);
      return chosen.map((k) => ({ id: k.id, ...k.file }));
    }
    case 'index':
      return repo.loadIndexFile(await repo.resolveId('index', need()));
    case 'snapshot': {
      const sid = await repo.resolveId('snapshots', need());
      return { id: sid, ...(await repo.loadSnapshot(sid)) };
    }
    case 'pack-header': {
      const pid = await repo.resolveId('data', need());
      const entries = await repo.readPackHeader(pid);
      return {
        id: pid,
        blobs: entries.map((e) => ({ id: toHex(e.id), type: e.type, offset: e.offset, length: e.length, raw_length: e.rawLength })),
      };
    }
  }
}

export function registerCat(program: Command): void {
  program
    .command('cat')
    .description('print a decrypted repository object as JSON (for debugging)')
    .argument('<kind>', KINDS.join('|'))
    .argument('[id]', 'object id or unique prefix')
    .action(async (kind: string, id: string | undefined, _opts: unknown, cmd: Command) => {
      if (!(KINDS as readonly string[]).includes(kind)) {
        throw new UsageError(`unknown object kind "${kind}"; expected one of ${KINDS.join(', ')}`);
      }
      const ctx = CliContext.from(cmd);
      await ctx.withRepository(async (repo) => ctx.out.printJson(await catObject(repo, kind as Kind, id)), { sync: false });
    });
}
