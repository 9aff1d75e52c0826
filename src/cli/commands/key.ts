import type { Command } from 'commander';
import { CliContext, addKdfOptions, kdfFromOptions, type KdfCliOptions } from '../context.js';
import { resolveNewPassword } from '../password.js';
import { table } from '../output.js';
import type { Repository } from '../../repo/repository.js';
import type { KdfParams } from '../../repo/kdf.js';

interface NewPasswordOptions extends KdfCliOptions {
  newPasswordFile?: string;
}

export function registerKey(program: Command): void {
  const key = program.command('key').description('manage the key files (passwords) of a repository');

  key
    .command('list')
    .description('list key files')
    .action(async (_opts: unknown, cmd: Command) => {
      const ctx = CliContext.from(cmd);
      await ctx.withRepository(async (repo) => {
        const keys = await repo.listKeys();
        const rows = keys.map((k) => ({
          id: k.id,
          current: k.id === repo.keyId,
          username: k.file.username,
          hostname: k.file.hostname,
          created: k.file.created,
          kdf: k.file.kdf.algorithm,
          memlimit: k.file.kdf.memlimit,
          opslimit: k.file.kdf.opslimit,
        }));
        if (ctx.out.json) return ctx.out.printJson(rows);
        ctx.out.result(
          table(
            [' ID', 'User', 'Host', 'Created'],
            rows.map((r) => [`${r.current ? '*' : ' '}${r.id.slice(0, 8)}`, r.username, r.hostname, r.created]),
          ),
        );
      }, { sync: false });
    });

  newPasswordCommand(key, 'add', 'add a key file for another password', 'shared', async (ctx, repo, password, kdf) => {
    const id = await repo.addKey(password, kdf);
    if (ctx.out.json) ctx.out.printJson({ id });
    else ctx.out.info(`saved new key as ${id.slice(0, 8)}`);
  });

  key
    .command('remove')
    .argument('<id>', 'key id or unique prefix')
    .description('remove a key file (not the one in use)')
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      const ctx = CliContext.from(cmd);
      await ctx.withRepository(async (repo) => {
        await repo.removeKey(id);
        if (ctx.out.json) ctx.out.printJson({ removed: id });
        else ctx.out.info(`removed key ${id}`);
      }, { lock: 'exclusive', sync: false });
    });

  newPasswordCommand(key, 'passwd', 'change the password of the key in use', 'exclusive', async (ctx, repo, password, kdf) => {
    const id = await repo.changePassword(password, kdf);
    if (ctx.out.json) ctx.out.printJson({ id, removed: repo.keyId });
    else ctx.out.info(`saved new key as ${id.slice(0, 8)}, removed ${repo.keyId.slice(0, 8)}`);
  });
}

/** A key subcommand that asks for a new password (--new-password-file or a prompt) and KDF options. */
function newPasswordCommand(
  parent: Command,
  name: string,
  description: string,
  lock: 'shared' | 'exclusive',
  run: (ctx: CliContext, repo: Repository, password: string, kdf: KdfParams) => Promise<void>,
): void {
  addKdfOptions(
    parent.command(name).description(description).option('--new-password-file <file>', 'read the new password from a file'),
  ).action(async (opts: NewPasswordOptions, cmd: Command) => {
    const ctx = CliContext.from(cmd);
    const kdf = kdfFromOptions(opts);
    await ctx.withRepository(async (repo) => run(ctx, repo, await resolveNewPassword(opts.newPasswordFile), kdf), { lock, sync: false });
  });
}
