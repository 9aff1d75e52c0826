import type { Command } from 'commander';
import { CliContext } from '../context.js';
import { UsageError } from '../exit-codes.js';
import { table } from '../output.js';
import { formatBytes } from './backup.js';
import { formatDuration } from './restore.js';
import type { DatabaseEntry } from '../../config/databases.js';
import { runDbDump, dbTmpDir, type DbDumpResult } from '../../jobs/db-dump.js';
import { sourceFor } from '../../sources/index.js';
import { dumpFile } from '../../engine/dump.js';
import { TreeLoader, resolvePath } from '../../engine/tree-load.js';
import { findSnapshot, type SnapshotEntry } from '../../engine/snapshot-select.js';

function entries(ctx: CliContext): Record<string, DatabaseEntry> {
  if (!ctx.config) throw new UsageError('no config file: give --config FILE (or LIFEBOAT_CONFIG, or write /etc/lifeboat/lifeboat.yaml)');
  return ctx.config.config.databases;
}

function entryNamed(ctx: CliContext, name: string): DatabaseEntry {
  const all = entries(ctx);
  const e = all[name];
  if (!e) {
    const known = Object.keys(all);
    throw new UsageError(`no database entry "${name}" in ${ctx.config!.file}${known.length ? ` (entries: ${known.join(', ')})` : ' (its databases: section is empty)'}`);
  }
  return e;
}

function target(e: DatabaseEntry): string {
  switch (e.type) {
    case 'postgres':
    case 'mysql':
      return e.type === 'mysql' && e.socket ? `${e.user}@${e.socket}` : `${e.user}@${e.host ?? 'localhost'}:${e.port}`;
    case 'sqlite':
      return e.path;
    case 'command':
      return e.command.join(' ');
  }
}

function dbList(e: DatabaseEntry): string[] | 'all' {
  if (e.type === 'postgres' || e.type === 'mysql') return e.databases;
  if (e.type === 'sqlite') return [e.path.split('/').pop()!];
  return [e.filename];
}

function registerList(db: Command): void {
  db.command('list')
    .description('list the database entries of the config file')
    .action((_o: unknown, c: Command) => {
      const ctx = CliContext.from(c);
      const all = Object.entries(entries(ctx));
      if (ctx.out.json) {
        ctx.out.printJson(
          all.map(([name, e]) => ({
            name,
            type: e.type,
            target: target(e),
            databases: dbList(e),
            timeout_seconds: e.timeout / 1000,
            tags: e.tags,
            password: 'password_file' in e && e.password_file ? 'file' : 'password_env' in e && e.password_env ? 'env' : 'none',
          })),
        );
        return;
      }
      if (all.length === 0) {
        ctx.out.result(`no database entries in ${ctx.config!.file}`);
        return;
      }
      const rows = all.map(([name, e]) => {
        const d = dbList(e);
        return [name, e.type, target(e), d === 'all' ? 'all' : d.join(','), formatDuration(e.timeout)];
      });
      ctx.out.result(table(['name', 'type', 'target', 'databases', 'timeout'], rows));
    });
}

/** One status line on a terminal's stderr, redrawn at most 4 times a second. */
class ProgressLine {
  private last = 0;
  private shown = false;
  constructor(private readonly enabled: boolean) {}

  set(text: string): void {
    if (!this.enabled || Date.now() - this.last < 250) return;
    this.last = Date.now();
    process.stderr.write(`\r\x1b[K${text}`);
    this.shown = true;
  }

  clear(): void {
    if (this.shown) process.stderr.write('\r\x1b[K');
    this.shown = false;
  }
}

function jsonResult(r: DbDumpResult): Record<string, unknown> {
  return {
    name: r.name,
    database: r.database,
    path: r.path,
    ...(r.snapshotId ? { snapshot_id: r.snapshotId } : {}),
    bytes: r.bytes,
    data_added: r.added,
    data_added_packed: r.stored,
    duration_seconds: r.durationMs / 1000,
    ...(r.error ? { error: r.error } : {}),
  };
}

function registerDump(db: Command): void {
  db.command('dump')
    .description('dump databases into snapshots (one per database, tagged db and db:NAME); all entries when no name is given')
    .argument('[names...]', 'entries of the config\'s databases: section')
    .option('--host <hostname>', 'hostname to record (default: this host\'s name)')
    .action(async (names: string[], opts: { host?: string }, c: Command) => {
      const ctx = CliContext.from(c);
      const all = entries(ctx);
      const chosen = names.length > 0 ? names : Object.keys(all);
      if (chosen.length === 0) throw new UsageError(`no database entries in ${ctx.config!.file}`);
      const selected = chosen.map((n) => [n, entryNamed(ctx, n)] as const);
      const progress = new ProgressLine(!ctx.out.json && !ctx.out.opts.quiet && !!process.stderr.isTTY);
      const results = await ctx.withRepository(async (repo) => {
        const out: DbDumpResult[] = [];
        for (const [name, entry] of selected) {
          out.push(
            ...(await runDbDump(repo, name, entry, {
              hostname: opts.host,
              onStart: (d) => ctx.out.debug(`dumping ${name}/${d}`),
              onBytes: (d, n) => progress.set(`${name}/${d}: ${formatBytes(n)} dumped`),
              onResult: (r) => {
                progress.clear();
                if (ctx.out.json) return;
                if (r.error) process.stderr.write(`error: ${r.name}/${r.database}: ${r.error}\n`);
                else ctx.out.info(`${r.name}/${r.database}: snapshot ${r.snapshotId?.slice(0, 8)} saved, ${formatBytes(r.bytes)} dumped, ${formatBytes(r.added)} new (${formatBytes(r.stored)} stored) in ${formatDuration(r.durationMs)}`);
              },
            })),
          );
        }
        return out;
      }, { lock: 'shared' });
      if (ctx.out.json) ctx.out.printJson(results.map(jsonResult));
      const failed = results.filter((r) => r.error);
      if (failed.length > 0) {
        throw new UsageError(`${failed.length} of ${results.length} database dumps failed (${failed.map((r) => `${r.name}/${r.database}`).join(', ')}); no snapshot was saved for them`);
      }
    });
}

interface RestoreOptions {
  snapshot?: string;
  database?: string;
  into?: string;
  force?: boolean;
}

/** The entry's dump snapshots, oldest first. */
function dumpsOf(all: SnapshotEntry[], name: string): SnapshotEntry[] {
  return all
    .filter((s) => s.snapshot.tags.includes(`db:${name}`) && typeof (s.snapshot.source as { database?: unknown }).database === 'string')
    .sort((a, b) => Date.parse(a.snapshot.time) - Date.parse(b.snapshot.time) || a.id.localeCompare(b.id));
}

const dbOf = (s: SnapshotEntry) => String((s.snapshot.source as Record<string, unknown>).database);

function registerRestore(db: Command): void {
  db.command('restore')
    .description('load a dump back: into a new database by default (DATABASE_restored_YYYYMMDDHHMMSS), over an existing one only with --force')
    .argument('<name>', 'entry of the config\'s databases: section')
    .option('--snapshot <id>', 'the snapshot to restore (default: the latest dump of the database)')
    .option('--database <db>', 'the database whose dump to restore (may be left out when the entry has only one)')
    .option('--into <newdb>', 'the database (SQLite: file) to restore into')
    .option('--force', 'allow replacing an existing database (the original when --into is not given)')
    .action(async (name: string, opts: RestoreOptions, c: Command) => {
      const ctx = CliContext.from(c);
      const entry = entryNamed(ctx, name);
      const result = await ctx.withRepository(async (repo) => {
        const dumps = dumpsOf(await repo.listSnapshots(), name);
        let chosen: SnapshotEntry;
        if (opts.snapshot) {
          try {
            chosen = findSnapshot(dumps, opts.snapshot);
          } catch (e) {
            throw new UsageError(`--snapshot: ${(e as Error).message} among the dumps of ${name}`);
          }
          if (opts.database !== undefined && dbOf(chosen) !== opts.database) {
            throw new UsageError(`snapshot ${chosen.id.slice(0, 8)} holds database ${dbOf(chosen)}, not ${opts.database}`);
          }
        } else {
          const databases = [...new Set(dumps.map(dbOf))].sort();
          const database = opts.database ?? (databases.length === 1 ? databases[0] : undefined);
          if (database === undefined) {
            throw new UsageError(databases.length === 0 ? `no dumps of ${name} in this repository` : `give --database (dumps of ${name} hold: ${databases.join(', ')})`);
          }
          const of = dumps.filter((s) => dbOf(s) === database);
          if (of.length === 0) throw new UsageError(`no dump of database ${database} for ${name}${databases.length ? ` (there are: ${databases.join(', ')})` : ''}`);
          chosen = of[of.length - 1]!;
        }
        const database = dbOf(chosen);
        const r = await resolvePath(new TreeLoader(repo), chosen.snapshot.tree, chosen.snapshot.paths[0]!).catch((e: Error) => {
          throw new UsageError(`snapshot ${chosen.id.slice(0, 8)}: ${e.message}`);
        });
        const node = r.node;
        if (!node || node.type !== 'file') throw new UsageError(`snapshot ${chosen.id.slice(0, 8)} holds no dump file at ${chosen.snapshot.paths[0]}`);
        ctx.out.info(`restoring ${name}/${database} from snapshot ${chosen.id.slice(0, 8)} of ${chosen.snapshot.time.slice(0, 19).replace('T', ' ')} (${formatBytes(node.size ?? 0)})`);
        const source = sourceFor(entry, { name, tmpDir: dbTmpDir(repo) });
        const res = await source.restore({
          database,
          into: opts.into,
          force: !!opts.force,
          feed: (out) => dumpFile(repo, node, out),
          note: (l) => ctx.out.info(l),
        });
        return { ...res, database, snapshotId: chosen.id };
      }, { sync: true, lock: ctx.readLock() });
      if (ctx.out.json) {
        ctx.out.printJson({ name, database: result.database, snapshot_id: result.snapshotId, target: result.target, replaced: result.replaced });
      } else {
        ctx.out.result(result.replaced ? `restored ${name}/${result.database} over ${result.target}` : `restored ${name}/${result.database} into ${result.target}`);
      }
    });
}

export function registerDb(program: Command): void {
  const db = program.command('db').description('database dumps: list the config\'s entries, dump them, restore them');
  registerList(db);
  registerDump(db);
  registerRestore(db);
}
