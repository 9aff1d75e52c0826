import type { Command } from 'commander';
import { CliContext, type GlobalOptions } from '../context.js';
import { UsageError } from '../exit-codes.js';
import type { LoadedConfig } from '../../config/load.js';
import { configFileFor } from '../../config/locate.js';
import { defaultCacheDir } from '../../repo/cache-dir.js';

/** `lifeboat doctor`: is this VM set up to back up and restore? One line per check, with the fix. */
export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .description('check the config, secrets, repository, clock, database tools, inotify limits, cache space, cloud, hooks and agent; one line each, with the fix')
    .action(async (_opts: unknown, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      const [{ loadConfigFile }, { runDoctor }] = await Promise.all([import('../../config/load.js'), import('../../agent/doctor.js')]);
      let config: LoadedConfig | null = null;
      let configError: string | undefined;
      const file = configFileFor(g.config);
      if (file) {
        try {
          config = loadConfigFile(file);
        } catch (e) {
          configError = (e as Error).message;
        }
      }
      const ctx = new CliContext({ ...g, ...(g.cacheDir === undefined && !process.env.LIFEBOAT_CACHE_DIR && config?.config.cache_dir ? { cacheDir: config.config.cache_dir } : {}) }, config);
      let location: string | null = null;
      try {
        location = ctx.repositoryLocation();
      } catch {
        location = null;
      }
      const passwordFile = g.passwordFile ?? process.env.LIFEBOAT_PASSWORD_FILE ?? config?.config.password_file ?? null;
      const findings = await runDoctor({
        config,
        ...(configError ? { configError } : {}),
        configFile: file,
        repositoryLocation: location,
        passwordFile,
        cacheDir: defaultCacheDir(ctx.globals.cacheDir),
        openRepository: () => ctx.openRepository(false),
      });
      if (ctx.out.json) ctx.out.printJson(findings);
      else {
        for (const f of findings) {
          ctx.out.result(`${f.verdict.toUpperCase().padEnd(4)}  ${f.check}: ${f.message}${f.fix && f.verdict !== 'ok' ? ` — fix: ${f.fix}` : ''}`);
        }
      }
      const failed = findings.filter((f) => f.verdict === 'fail');
      if (failed.length) throw new UsageError(`${failed.length} check${failed.length === 1 ? '' : 's'} failed`);
    });
}
