import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { configFileFor } from '../../config/locate.js';
import { UsageError } from '../exit-codes.js';
import type { GlobalOptions } from '../context.js';

/**
 * `lifeboat agent`: the service (systemd's ExecStart). Runs every configured job on its schedule
 * until SIGTERM; SIGHUP reloads the config.
 */
export function registerAgent(program: Command): void {
  program
    .command('agent')
    .description('run the backup service: every job of the config on its schedule, with status, metrics and healthchecks (SIGHUP reloads, SIGTERM stops)')
    .option('--log-format <format>', 'text or json (default: the config\'s agent.log_format, else text)')
    .action(async (opts: { logFormat?: string }, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      const file = configFileFor(g.config);
      const [{ loadConfigFile }, { AgentService }] = await Promise.all([import('../../config/load.js'), import('../../agent/service.js')]);
      if (!file) throw new UsageError('the agent needs a config file: --config, LIFEBOAT_CONFIG or /etc/lifeboat/lifeboat.yaml');
      if (opts.logFormat !== undefined && opts.logFormat !== 'text' && opts.logFormat !== 'json') throw new UsageError('--log-format must be text or json');
      // systemd's LoadCredential=password:/etc/lifeboat/password hands the password over here
      let passwordFile = g.passwordFile;
      const creds = process.env.CREDENTIALS_DIRECTORY;
      if (!passwordFile && !process.env.LIFEBOAT_PASSWORD_FILE && process.env.LIFEBOAT_PASSWORD === undefined && creds) {
        const f = path.join(creds, 'password');
        if (fs.existsSync(f)) passwordFile = f;
      }
      // systemd's CacheDirectory= (/var/cache/lifeboat), unless --cache-dir, LIFEBOAT_CACHE_DIR or cache_dir: say otherwise
      let cacheDir = g.cacheDir;
      if (!cacheDir && !process.env.LIFEBOAT_CACHE_DIR && process.env.CACHE_DIRECTORY) {
        const fromConfig = (() => {
          try {
            return loadConfigFile(file).config.cache_dir;
          } catch {
            return undefined; // the agent reports the config's errors itself
          }
        })();
        if (!fromConfig) cacheDir = process.env.CACHE_DIRECTORY.split(':')[0];
      }
      const agent = new AgentService({
        configFile: file,
        ...(g.repo ? { repo: g.repo } : {}),
        ...(passwordFile ? { passwordFile } : {}),
        ...(cacheDir ? { cacheDir } : {}),
        ...(opts.logFormat ? { logFormat: opts.logFormat as 'text' | 'json' } : {}),
      });
      await agent.start();
      // runs until a signal; stop() exits the process
      await new Promise<never>(() => undefined);
    });
}
