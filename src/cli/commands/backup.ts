import fs from 'node:fs';
import type { Command } from 'commander';
import { journalScope, parseJournalFile } from '../../engine/journal-scope.js';
import cliProgress from 'cli-progress';
import { CliContext } from '../context.js';
import { EXIT, UsageError } from '../exit-codes.js';
import { Archiver, type BackupResult, type BackupSummary } from '../../engine/archiver.js';
import { parseSize } from '../../engine/excludes.js';
import { backupStream, commandSource, stdinSource } from '../../engine/stream-backup.js';
import { findSnapshot } from '../../engine/snapshot-select.js';
import { parseDuration } from '../../util/duration.js';
import { localTimeZone, parseTimeArgument } from '../../engine/zoned-time.js';

interface BackupCliOptions {
  tag: string[];
  host?: string;
  exclude: string[];
  iexclude: string[];
  excludeFile: string[];
  excludeCaches?: boolean;
  excludeLargerThan?: string;
  oneFileSystem?: boolean;
  parent?: string;
  force?: boolean;
  dryRun?: boolean;
  stdin?: boolean;
  stdinFilename?: string;
  stdinFromCommand?: boolean;
  readConcurrency?: string;
  time?: string;
  changedFrom?: string;
}

const collect = (v: string, prev: string[]) => prev.concat([v]);

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(3)} ${units[i]}`;
}

function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
}

function jsonSummary(s: BackupSummary, snapshotId: string | null, dryRun: boolean): Record<string, unknown> {
  const o: Record<string, unknown> = {
    message_type: 'summary',
    files_new: s.filesNew,
    files_changed: s.filesChanged,
    files_unmodified: s.filesUnmodified,
    dirs_new: s.dirsNew,
    dirs_changed: s.dirsChanged,
    dirs_unmodified: s.dirsUnmodified,
    data_blobs: s.dataBlobs,
    tree_blobs: s.treeBlobs,
    data_added: s.dataAdded,
    data_added_packed: s.dataAddedPacked,
    total_files_processed: s.totalFilesProcessed,
    total_bytes_processed: s.totalBytesProcessed,
    total_duration: s.totalDurationMs / 1000,
    files_read: s.filesRead,
    bytes_read: s.bytesRead,
    errors: s.errors,
    incomplete: s.incomplete,
  };
  if (snapshotId) o.snapshot_id = snapshotId;
  if (dryRun) o.dry_run = true;
  return o;
}

export function registerBackup(program: Command): void {
  program
    .command('backup')
    .description('back up files and directories (or stdin, or a command\'s output) into a new snapshot')
    .argument('[paths...]', 'files and directories to back up (with --stdin-from-command: the command and its arguments, after --)')
    .option('--tag <tag>', 'add a tag to the snapshot (repeatable, or comma-separated)', collect, [])
    .option('--host <hostname>', 'hostname to record (default: this host\'s name)')
    .option('-e, --exclude <pattern>', 'exclude paths matching the pattern (repeatable)', collect, [])
    .option('--iexclude <pattern>', 'like --exclude, ignoring case (repeatable)', collect, [])
    .option('--exclude-file <file>', 'read exclude patterns from a file (repeatable)', collect, [])
    .option('--exclude-caches', 'exclude the contents of directories holding a valid CACHEDIR.TAG')
    .option('--exclude-larger-than <size>', 'skip files larger than SIZE (e.g. 500k, 10M, 1G)')
    .option('-x, --one-file-system', 'don\'t cross file-system boundaries (mount points are kept as empty directories)')
    .option('--parent <snapshot>', 'compare against this snapshot (default: the latest with the same host and paths)')
    .option('-f, --force', 'read every file, ignoring the parent snapshot')
    .option('-n, --dry-run', 'read and chunk everything, report what would be added, write nothing')
    .option('--stdin', 'back up what is read from standard input')
    .option('--stdin-filename <name>', 'file name for --stdin and --stdin-from-command', 'stdin')
    .option('--stdin-from-command', 'back up the standard output of the command given after --')
    .option('--read-concurrency <n>', 'files read at once (default 16)')
    .option('--changed-from <file>', 'read only the directories holding these paths (NUL-separated; the agent\'s watcher journal); the rest comes from the parent snapshot')
    .option('--time <time>', 'the snapshot\'s time instead of now, as restic\'s --time ("2012-11-01 22:08:41" local time, or RFC 3339)')
    .action(async (paths: string[], opts: BackupCliOptions, cmd: Command) => {
      const ctx = CliContext.from(cmd);
      const json = ctx.out.json;
      if (opts.stdin && opts.stdinFromCommand) throw new UsageError('--stdin and --stdin-from-command exclude each other');
      const streamMode = opts.stdin || opts.stdinFromCommand;
      if (opts.stdin && paths.length > 0) throw new UsageError('--stdin takes no paths');
      if (!streamMode && paths.length === 0) throw new UsageError('nothing to back up: give at least one path (or --stdin)');
      if (opts.stdinFromCommand && paths.length === 0) throw new UsageError('--stdin-from-command needs a command after --');
      const tags = opts.tag.flatMap((t) => t.split(',')).map((t) => t.trim()).filter(Boolean);
      let excludeLargerThan: number | undefined;
      if (opts.excludeLargerThan !== undefined) {
        try {
          excludeLargerThan = parseSize(opts.excludeLargerThan);
        } catch (e) {
          throw new UsageError(`--exclude-larger-than: ${(e as Error).message}`);
        }
      }
      let fileConcurrency: number | undefined;
      if (opts.readConcurrency !== undefined) {
        fileConcurrency = Number(opts.readConcurrency);
        if (!Number.isInteger(fileConcurrency) || fileConcurrency < 1) throw new UsageError('--read-concurrency must be a positive integer');
      }
      let time: Date | undefined;
      if (opts.time !== undefined) {
        try {
          time = parseTimeArgument(opts.time, localTimeZone());
        } catch (e) {
          throw new UsageError(`--time: ${(e as Error).message}`);
        }
      }
      let checkpointMs: number | undefined;
      const interval = process.env.LIFEBOAT_CHECKPOINT_INTERVAL;
      if (interval) {
        try {
          checkpointMs = parseDuration(interval);
        } catch (e) {
          throw new UsageError(`LIFEBOAT_CHECKPOINT_INTERVAL: ${(e as Error).message}`);
        }
        if (checkpointMs < 1000) throw new UsageError('LIFEBOAT_CHECKPOINT_INTERVAL must be at least 1s');
      }
      const errLine = (p: string, reason: string) => {
        if (json) process.stderr.write(JSON.stringify({ message_type: 'error', error: { message: reason }, during: 'archival', item: p }) + '\n');
        else process.stderr.write(`error: ${p}: ${reason}\n`);
      };

      const result = await ctx.withRepository<BackupResult>(async (repo) => {
        if (checkpointMs !== undefined) repo.checkpointMs = checkpointMs;
        if (streamMode) {
          const source = opts.stdinFromCommand ? commandSource(paths) : stdinSource();
          return backupStream(repo, opts.stdinFilename ?? 'stdin', source, { hostname: opts.host, tags, dryRun: opts.dryRun, time });
        }
        let parent: string | undefined;
        if (opts.parent && !opts.force) {
          try {
            parent = findSnapshot(await repo.listSnapshots(), opts.parent).id;
          } catch (e) {
            throw new UsageError(`--parent: ${(e as Error).message}`);
          }
        }
        const archiver = new Archiver(repo, {
          hostname: opts.host,
          tags,
          parent,
          force: opts.force,
          dryRun: opts.dryRun,
          oneFileSystem: opts.oneFileSystem,
          ...(opts.changedFrom !== undefined ? { scope: journalScope(parseJournalFile(fs.readFileSync(opts.changedFrom, 'utf8'))) } : {}),
          fileConcurrency,
          excludes: {
            exclude: opts.exclude,
            iexclude: opts.iexclude,
            excludeFiles: opts.excludeFile,
            excludeCaches: opts.excludeCaches,
            excludeLargerThan,
          },
          onError: errLine,
          time,
        });
        const stop = startProgress(archiver, json, ctx.out.opts.quiet);
        try {
          const r = await archiver.backup(paths);
          if (!json && r.parentId) ctx.out.info(`using parent snapshot ${r.parentId.slice(0, 8)}`);
          return r;
        } finally {
          stop();
        }
      }, { lock: 'shared' });

      const s = result.summary;
      if (json) {
        process.stdout.write(JSON.stringify(jsonSummary(s, result.snapshotId, !!opts.dryRun)) + '\n');
      } else {
        const pad = (n: number) => String(n).padStart(5);
        ctx.out.info('');
        ctx.out.info(`Files:       ${pad(s.filesNew)} new, ${pad(s.filesChanged)} changed, ${pad(s.filesUnmodified)} unmodified`);
        ctx.out.info(`Dirs:        ${pad(s.dirsNew)} new, ${pad(s.dirsChanged)} changed, ${pad(s.dirsUnmodified)} unmodified`);
        ctx.out.info(`${opts.dryRun ? 'Would add' : 'Added'} to the repository: ${formatBytes(s.dataAdded)} (${formatBytes(s.dataAddedPacked)} stored)`);
        ctx.out.info('');
        ctx.out.info(`processed ${s.totalFilesProcessed} files, ${formatBytes(s.totalBytesProcessed)} in ${formatDuration(s.totalDurationMs)}`);
        if (result.snapshotId) ctx.out.info(`snapshot ${result.snapshotId.slice(0, 8)} saved`);
      }
      if (s.incomplete) {
        throw new UsageError(`at least one source file could not be read; snapshot ${result.snapshotId?.slice(0, 8) ?? '(dry run)'} is incomplete`, EXIT.incomplete);
      }
    });
}

/** JSON status lines (at most every second) or, on a TTY, a progress bar on stderr. */
function startProgress(a: Archiver, json: boolean, quiet: boolean): () => void {
  const p = a.progress;
  if (json) {
    const t = setInterval(() => {
      const secs = (Date.now() - p.startedAt) / 1000;
      process.stdout.write(JSON.stringify({
        message_type: 'status',
        seconds_elapsed: Math.floor(secs),
        percent_done: p.bytesSeen > 0 ? Math.min(1, p.bytesDone / p.bytesSeen) : 0,
        total_files: p.filesSeen,
        files_done: p.filesDone,
        total_bytes: p.bytesSeen,
        bytes_done: p.bytesDone,
        error_count: p.errors,
        current_files: [...p.currentFiles].slice(0, 4),
      }) + '\n');
    }, 1000);
    t.unref();
    return () => clearInterval(t);
  }
  if (quiet || !process.stderr.isTTY) return () => undefined;
  const bar = new cliProgress.SingleBar({
    stream: process.stderr,
    format: '{bar} {percentage}% | {files}/{totalFiles} files | {done}/{total} | {rate}/s | ETA {eta_formatted}',
    hideCursor: true,
    clearOnComplete: true,
    etaBuffer: 30,
  }, cliProgress.Presets.shades_classic);
  bar.start(1, 0, { files: 0, totalFiles: 0, done: '0 B', total: '0 B', rate: '0 B' });
  const t = setInterval(() => {
    const secs = Math.max(0.001, (Date.now() - p.startedAt) / 1000);
    bar.setTotal(Math.max(1, p.bytesSeen));
    bar.update(Math.min(p.bytesDone, Math.max(1, p.bytesSeen)), {
      files: p.filesDone,
      totalFiles: p.filesSeen,
      done: formatBytes(p.bytesDone),
      total: formatBytes(p.bytesSeen),
      rate: formatBytes(Math.round(p.bytesDone / secs)),
    });
  }, 250);
  t.unref();
  return () => {
    clearInterval(t);
    bar.stop();
  };
}
