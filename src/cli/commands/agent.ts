import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { configFileFor } from '../../config/load.js';
import { UsageError } from '../exit-codes.js';
import type { GlobalOptions } from '../context.js';
import { AgentService } from '../../agent/service.js';

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
      if (!file) throw new UsageError('the agent needs a config file: --config, LIFEBOAT_CONFIG or /etc/lifeboat/lifeboat.yaml');
      if (opts.logFormat !== undefined && opts.logFormat !== 'text' && opts.logFormat !== 'json') throw new UsageError('--log-format must be text or json');
      // systemd's LoadCredential=password:/etc/lifeboat/password hands the password over here
      let passwordFile = g.passwordFile;
      const creds = process.env.CREDENTIALS_DIRECTORY;
      if (!passwordFile && !process.env.LIFEBOAT_PASSWORD_FILE && process.env.LIFEBOAT_PASSWORD === undefined && creds) {
        const f = path.join(creds, 'password');
        if (fs.existsSync(f)) passwordFile = f;
      }
      const agent = new AgentService({
        configFile: file,
        ...(g.repo ? { repo: g.repo } : {}),
        ...(passwordFile ? { passwordFile } : {}),
        ...(g.cacheDir ? { cacheDir: g.cacheDir } : {}),
        ...(opts.logFormat ? { logFormat: opts.logFormat as 'text' | 'json' } : {}),
      });
      await agent.start();
      // runs until a signal; stop() exits the process
      await new Promise<never>(() => undefined);
    });
}
