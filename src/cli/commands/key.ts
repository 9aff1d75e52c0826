import type { Command } from 'commander';
import { CliContext, addKdfOptions, kdfFromOptions, type KdfCliOptions } from '../context.js';
import { resolveNewPassword } from '../password.js';
import { table } from '../output.js';

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

  addKdfOptions(
    key
      .command('add')
      .description('add a key file for another password')
      .option('--new-password-file <file>', 'read the new password from a file'),
  ).action(async (opts: NewPasswordOptions, cmd: Command) => {
    const ctx = CliContext.from(cmd);
    const kdf = kdfFromOptions(opts);
    await ctx.withRepository(async (repo) => {
      const password = await resolveNewPassword(opts.newPasswordFile);
      const id = await repo.addKey(password, kdf);
      if (ctx.out.json) ctx.out.printJson({ id });
      else ctx.out.info(`saved new key as ${id.slice(0, 8)}`);
    }, { lock: 'shared', sync: false });
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

  addKdfOptions(
    key
      .command('passwd')
      .description('change the password of the key in use')
      .option('--new-password-file <file>', 'read the new password from a file'),
  ).action(async (opts: NewPasswordOptions, cmd: Command) => {
    const ctx = CliContext.from(cmd);
    const kdf = kdfFromOptions(opts);
    await ctx.withRepository(async (repo) => {
      const password = await resolveNewPassword(opts.newPasswordFile);
      const id = await repo.changePassword(password, kdf);
      if (ctx.out.json) ctx.out.printJson({ id, removed: repo.keyId });
      else ctx.out.info(`saved new key as ${id.slice(0, 8)}, removed ${repo.keyId.slice(0, 8)}`);
    }, { lock: 'exclusive', sync: false });
  });
}
