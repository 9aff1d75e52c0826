import type { Command } from 'commander';
import { Repository } from '../../repo/repository.js';
import { CliContext, addKdfOptions, kdfFromOptions, type KdfCliOptions } from '../context.js';
import { resolveNewPassword } from '../password.js';

export function registerInit(program: Command): void {
  addKdfOptions(
    program
      .command('init')
      .description('create a new repository at --repo')
  ).action(async (opts: KdfCliOptions, cmd: Command) => {
      const ctx = CliContext.from(cmd);
      const kdf = kdfFromOptions(opts);
      const storage = await ctx.storage();
      try {
        const hasSource = ctx.globals.passwordFile ?? process.env.LIFEBOAT_PASSWORD_FILE ?? process.env.LIFEBOAT_PASSWORD ?? ctx.config?.config.password_file;
        const password = hasSource !== undefined ? await ctx.password() : await resolveNewPassword(undefined);
        const repo = await Repository.init(storage, password, { kdf, cacheDir: ctx.globals.cacheDir });
        await repo.close();
        if (ctx.out.json) ctx.out.printJson({ id: repo.id, location: storage.location, key_id: repo.keyId });
        else {
          ctx.out.info(`created lifeboat repository ${repo.id.slice(0, 10)} at ${storage.location}`);
          ctx.out.info('');
          ctx.out.info('Please note that knowledge of your password is required to access');
          ctx.out.info('the repository. Losing your password means that your data is');
          ctx.out.info('irrecoverably lost.');
        }
      } finally {
        await storage.close();
      }
    });
}
