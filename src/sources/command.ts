/**
 * Any command's stdout as a dump (`type: command`), restored by piping it into `restore_command`.
 */
import type { CommandEntry } from '../config/databases.js';
import { commandSource } from '../engine/stream-backup.js';
import { lookupUser, runAsOptions, runTool } from './process.js';
import type { SpawnAs } from './process.js';
import type { DatabaseSource, DumpUnit, RestoreRequest, RestoreResult, SourceContext } from './types.js';

export class CommandSource implements DatabaseSource {
  constructor(
    private readonly entry: CommandEntry,
    private readonly ctx: SourceContext,
  ) {}

  /** Environment (and user, with run_as) for both commands. */
  private spawnOptions(): SpawnAs {
    const so = runAsOptions(this.entry.run_as ? lookupUser(this.entry.run_as) : undefined, this.ctx.env ?? process.env);
    return { ...so, env: { ...so.env, ...this.entry.env } };
  }

  async units(): Promise<DumpUnit[]> {
    const argv = this.entry.command;
    return [
      {
        database: this.entry.filename,
        filename: this.entry.filename,
        open: async () =>
          commandSource(argv, {
            ...this.spawnOptions(),
            timeoutMs: this.entry.timeout,
            stderr: this.ctx.stderr,
            info: { type: 'command', name: this.ctx.name, database: this.entry.filename, command: argv },
          }),
      },
    ];
  }

  async restore(req: RestoreRequest): Promise<RestoreResult> {
    const argv = this.entry.restore_command;
    if (!argv) throw new Error(`databases.${this.ctx.name} has no restore_command: use "lifeboat dump" to get the file`);
    if (req.into) throw new Error('--into does not apply to a command entry (its restore_command decides where the data goes)');
    if (!req.force) throw new Error(`restoring runs ${argv[0]}, which may overwrite live data: add --force`);
    req.note?.(`piping the dump into ${argv.join(' ')}`);
    await runTool(argv, { ...this.spawnOptions(), feed: req.feed, captureStdout: false, timeoutMs: this.entry.timeout, label: argv[0] });
    return { target: argv.join(' '), replaced: true };
  }
}
