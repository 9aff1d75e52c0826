import type { Command } from 'commander';
import { Option } from 'commander';
import { CliContext } from '../context.js';
import { EXIT, UsageError } from '../exit-codes.js';
import type { Repository } from '../../repo/repository.js';
import { findSnapshot, type SnapshotEntry, type SnapshotFilter } from '../../engine/snapshot-select.js';
import { restore, type OverwritePolicy, type RestoreProgress, type RestoreResult } from '../../engine/restorer.js';
import { formatBytes } from './backup.js';

export const collect = (v: string, prev: string[]) => prev.concat([v]);

/** --host/--tag/--path: narrow `latest` (restic's names). */
export function addSnapshotFilterOptions(cmd: Command): Command {
  return cmd
    .option('--host <hostname>', 'for latest: only snapshots of this host (repeatable)', collect, [])
    .option('--tag <tags>', 'for latest: only snapshots with these tags (comma-separated: all; repeatable: any group)', collect, [])
    .option('--path <path>', 'for latest: only snapshots with exactly these paths (repeatable)', collect, []);
}

export function filterFrom(o: { host?: string[]; tag?: string[]; path?: string[] }): SnapshotFilter {
  return { hosts: o.host ?? [], tags: o.tag ?? [], paths: o.path ?? [] };
}

/** Resolves a snapshot argument (id, unique prefix or latest); a usage error when none matches. */
export async function selectSnapshot(repo: Repository, ref: string, filter: SnapshotFilter): Promise<SnapshotEntry> {
  const all = await repo.listSnapshots();
  try {
    return findSnapshot(all, ref, filter);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** Splits "ID:SUBPATH" (restic's syntax). */
export function splitSnapshotArg(arg: string): { ref: string; subpath?: string } {
  const i = arg.indexOf(':');
  if (i < 0) return { ref: arg };
  return { ref: arg.slice(0, i), subpath: arg.slice(i + 1) || '/' };
}

export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  const p = (n: number) => String(n).padStart(2, '0');
  return s >= 3600 ? `${Math.floor(s / 3600)}:${p(Math.floor(s / 60) % 60)}:${p(s % 60)}` : `${Math.floor(s / 60)}:${p(s % 60)}`;
}

interface RestoreCliOptions {
  target?: string;
  include: string[];
  exclude: string[];
  overwrite: OverwritePolicy;
  dryRun?: boolean;
  verify?: boolean;
  readConcurrency?: string;
  host: string[];
  tag: string[];
  path: string[];
}

function summaryJson(r: RestoreResult, dryRun: boolean): Record<string, unknown> {
  return {
    message_type: 'summary',
    seconds_elapsed: Math.round(r.durationMs / 1000),
    total_files: r.filesTotal,
    files_restored: r.filesRestored,
    files_skipped: r.filesSkipped,
    total_bytes: r.bytesTotal,
    bytes_restored: r.bytesRestored,
    bytes_skipped: r.bytesSkipped,
    dirs_restored: r.dirs,
    symlinks_restored: r.symlinks,
    hardlinks_restored: r.hardlinks,
    special_files_restored: r.specials,
    files_verified: r.filesVerified,
    bytes_downloaded: r.bytesDownloaded,
    requests: r.requests,
    refused: r.refused.length,
    errors: r.errors.length,
    dry_run: dryRun,
  };
}

export function registerRestore(program: Command): void {
  const cmd = program
    .command('restore')
    .description('restore a snapshot (or SNAPSHOT:SUBPATH, its contents) into a directory')
    .argument('<snapshot>', 'snapshot id, unique prefix or latest, optionally with :SUBPATH')
    .option('-t, --target <dir>', 'directory to restore into (created if needed)')
    .option('-i, --include <pattern>', 'restore only paths matching the pattern (repeatable)', collect, [])
    .option('-e, --exclude <pattern>', 'do not restore paths matching the pattern (repeatable)', collect, [])
    .addOption(new Option('--overwrite <when>', 'when to replace an existing file').choices(['always', 'if-changed', 'if-newer', 'never']).default('always'))
    .option('--dry-run', 'show what would be restored, write nothing')
    .option('--verify', 're-read the restored files and check them against the snapshot')
    .option('--read-concurrency <n>', 'ranged reads from the repository in flight (default 8)');
  addSnapshotFilterOptions(cmd).action(async (arg: string, opts: RestoreCliOptions, c: Command) => {
    const ctx = CliContext.from(c);
    if (!opts.target) throw new UsageError('please give a target directory with --target');
    let concurrency: number | undefined;
    if (opts.readConcurrency !== undefined) {
      concurrency = Number(opts.readConcurrency);
      if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) throw new UsageError('--read-concurrency must be an integer from 1 to 64');
    }
    const { ref, subpath } = splitSnapshotArg(arg);
    const out = ctx.out;
    const verbose = (out.opts.verbose ?? 0) > 0;
    const result = await ctx.withRepository(async (repo) => {
      const entry = await selectSnapshot(repo, ref, filterFrom(opts));
      const s = entry.snapshot;
      out.info(`restoring snapshot ${entry.id.slice(0, 8)} of [${s.paths.join(' ')}] at ${s.time} by ${s.username ?? '?'}@${s.hostname}${subpath ? ` (${subpath})` : ''} to ${opts.target}`);
      const started = Date.now();
      let last = 0;
      const onProgress = (p: RestoreProgress) => {
        const now = Date.now();
        if (now - last < 1000) return;
        last = now;
        if (out.json) {
          out.result(JSON.stringify({
            message_type: 'status',
            seconds_elapsed: Math.round((now - started) / 1000),
            percent_done: p.bytesTotal > 0 ? p.bytesDone / p.bytesTotal : 1,
            total_files: p.filesTotal,
            files_restored: p.filesDone,
            total_bytes: p.bytesTotal,
            bytes_restored: p.bytesDone,
          }));
        } else if (process.stderr.isTTY && !out.opts.quiet) {
          const rate = p.bytesDone / Math.max(0.001, (now - started) / 1000);
          const eta = rate > 0 ? (p.bytesTotal - p.bytesDone) / rate : 0;
          process.stderr.write(`\r[${formatDuration(now - started)}] ${p.filesDone}/${p.filesTotal} files ${formatBytes(p.bytesDone)}/${formatBytes(p.bytesTotal)} ${formatBytes(Math.round(rate))}/s ETA ${formatDuration(eta * 1000)}   `);
        }
      };
      const r = await restore(repo, entry.id, {
        target: opts.target!,
        subpath,
        include: opts.include,
        exclude: opts.exclude,
        overwrite: opts.overwrite,
        dryRun: !!opts.dryRun,
        verify: !!opts.verify,
        concurrency,
        onProgress,
        onWarning: (w) => (out.json ? process.stderr.write(JSON.stringify({ message_type: 'error', error: { message: w }, during: 'restore' }) + '\n') : out.warn(w)),
        onItem: (action, p) => {
          if (!verbose && !opts.dryRun) return;
          if (out.json) out.result(JSON.stringify({ message_type: 'verbose_status', action: action === 'restore' ? (opts.dryRun ? 'would restore' : 'restored') : action === 'skip' ? 'skipped' : 'refused', item: p }));
          else if (!out.opts.quiet) out.result(`${action === 'restore' ? (opts.dryRun ? 'would restore' : 'restored') : action === 'skip' ? 'skipped' : 'refused'} ${p}`);
        },
      });
      if (!out.json && process.stderr.isTTY && !out.opts.quiet) process.stderr.write('\r\x1b[K');
      return r;
    }, { sync: true, lock: ctx.readLock() });
    for (const e of result.errors) {
      if (out.json) process.stderr.write(JSON.stringify({ message_type: 'error', error: { message: e }, during: 'restore' }) + '\n');
      else process.stderr.write(`error: ${e}\n`);
    }
    if (out.json) out.result(JSON.stringify(summaryJson(result, !!opts.dryRun)));
    else {
      const verb = opts.dryRun ? 'Would restore' : 'Restored';
      out.info(`Summary: ${verb} ${result.filesRestored} files, ${result.dirs} dirs, ${result.symlinks} symlinks, ${result.hardlinks} hardlinks, ${result.specials} special files (${formatBytes(result.bytesRestored)}) in ${formatDuration(result.durationMs)}${result.filesSkipped ? `, skipped ${result.filesSkipped} files (${formatBytes(result.bytesSkipped)})` : ''}`);
      if (opts.verify) out.info(`verified ${result.filesVerified} files`);
    }
    const problems = result.errors.length + result.refused.length;
    if (problems > 0) throw new UsageError(`there were ${result.errors.length} errors and ${result.refused.length} refused entries`, EXIT.error);
  });
}
