import type { Command } from 'commander';
import { CliContext } from '../context.js';
import { UsageError } from '../exit-codes.js';
import { parseSize } from '../../engine/excludes.js';
import { runRestoreTest } from '../../jobs/restore-test.js';

/** `lifeboat restore-test`: restore a random sample of the latest snapshots and verify every byte. */
export function registerRestoreTest(program: Command): void {
  program
    .command('restore-test')
    .description('restore a random sample of files from the latest snapshot of each backup and database into a temporary directory, verify every byte, clean up')
    .option('--files <n>', 'files per snapshot (the largest is always among them)', '20')
    .option('--max-bytes <size>', 'stop adding files to a snapshot\'s sample past this size', '1G')
    .option('--host <hostname>', 'only this host\'s snapshots')
    .option('--no-databases', 'leave out the database dumps')
    .action(async (opts: { files: string; maxBytes: string; host?: string; databases: boolean }, cmd: Command) => {
      const ctx = CliContext.from(cmd);
      const files = Number(opts.files);
      if (!Number.isInteger(files) || files < 1) throw new UsageError('--files must be a positive integer');
      let maxBytes: number;
      try {
        maxBytes = parseSize(opts.maxBytes);
      } catch (e) {
        throw new UsageError(`--max-bytes: ${(e as Error).message}`);
      }
      const r = await ctx.withRepository(
        (repo) => runRestoreTest(repo, { files, maxBytes, databases: opts.databases, ...(opts.host ? { host: opts.host } : {}), onFile: (s, p, n) => ctx.out.debug(`verified ${s.slice(0, 8)}:${p} (${n} bytes)`) }),
        { lock: ctx.readLock() },
      );
      if (ctx.out.json) {
        ctx.out.printJson({
          ok: r.ok,
          snapshots_tested: r.snapshotsTested.length,
          files_verified: r.filesVerified,
          bytes_verified: r.bytesVerified,
          failures: r.failures,
          snapshots: r.snapshotsTested,
          repository: r.repository,
        });
      } else {
        for (const s of r.snapshotsTested) ctx.out.info(`${s.id.slice(0, 8)} ${s.paths.join(' ')}: ${s.files} files, ${s.bytes} bytes verified`);
        for (const f of r.failures) process.stderr.write(`error: ${f.snapshot.slice(0, 8)}:${f.path}: ${f.error}\n`);
        if (r.snapshotsTested.length === 0) ctx.out.info('no snapshots to test');
        else if (r.ok) ctx.out.info(`restore test passed: ${r.filesVerified} files, ${r.bytesVerified} bytes restored and verified`);
      }
      if (!r.ok) throw new UsageError(`restore test FAILED: ${r.failures.length} file(s) could not be restored intact`);
    });
}
