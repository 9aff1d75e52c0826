import type { Command } from 'commander';
import { spawn } from 'node:child_process';
import os from 'node:os';
import { CliContext } from '../context.js';
import { UsageError } from '../exit-codes.js';
import { clip } from '../../cloud/openstack/labels.js';
import { describePreUpgrade } from '../../jobs/pre-upgrade.js';
import { preUpgradeFailure, preUpgradeFromCli } from './pre-upgrade.js';

interface GuardOpts {
  mode?: string;
  fail?: string;
  wait?: boolean;
  timeout?: string;
  reason?: string;
}

/** Runs argv with inherited stdio; resolves with its exit code (128+n for a signal, as a shell reports it). */
function runCommand(argv: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: 'inherit' });
    const forward = (sig: NodeJS.Signals) => child.kill(sig);
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    child.on('error', (e: NodeJS.ErrnoException) => reject(new UsageError(`cannot run ${argv[0]}: ${e.code === 'ENOENT' ? 'command not found' : e.message}`, e.code === 'ENOENT' ? 127 : 126)));
    child.on('close', (code, signal) => {
      process.off('SIGINT', forward);
      process.off('SIGTERM', forward);
      resolve(code ?? 128 + (signal ? (os.constants.signals[signal] ?? 0) : 0));
    });
  });
}

export function registerGuard(program: Command): void {
  program
    .command('guard')
    .description('take the pre-upgrade rollback point, then run the command (its exit status is passed through)')
    .argument('<command...>', 'the command and its arguments, after --')
    .option('--mode <mode>', 'snapshot, files or both (default: config, else both)')
    .option('--fail <policy>', 'closed (default): do not run the command when the rollback point fails; open: run it anyway')
    .option('--wait', 'wait until the instance snapshot is complete before running the command (default)')
    .option('--no-wait', 'start the command once the cloud accepted the snapshot')
    .option('--timeout <duration>', 'how long the snapshot may take')
    .option('--reason <text>', 'why (default: guard)')
    .action(async (argv: string[], o: GuardOpts, c: Command) => {
      const ctx = CliContext.from(c);
      const fail = o.fail ?? 'closed';
      if (fail !== 'open' && fail !== 'closed') throw new UsageError('--fail must be open or closed');
      const line = argv.join(' ');
      let ok = false;
      let message: string;
      try {
        const r = await preUpgradeFromCli(ctx, { reason: o.reason ?? 'guard', ...(o.mode ? { mode: o.mode } : {}), ...(o.wait !== undefined ? { wait: o.wait } : {}), ...(o.timeout ? { timeout: o.timeout } : {}) }, {
          labels: { trigger: 'guard', command: clip(line) },
          transaction: [`command: ${line}`],
          progress: (l) => process.stderr.write(`lifeboat: ${l}\n`),
        });
        ok = r.ok;
        message = ok ? describePreUpgrade(r).join('; ') : preUpgradeFailure(r);
      } catch (e) {
        if (e instanceof UsageError) throw e;
        message = (e as Error).message;
      }
      if (ok) for (const l of message.split('; ')) process.stderr.write(`lifeboat: ${l}\n`);
      else if (fail === 'closed') throw new UsageError(`the rollback point failed, not running "${clip(line, 80)}": ${message}`);
      else process.stderr.write(`lifeboat: WARNING: the rollback point FAILED (${message}); running the command anyway (--fail open)\n`);
      const code = await runCommand(argv);
      if (code !== 0) throw new UsageError(`${argv[0]} exited with status ${code}`, code);
    });
}
