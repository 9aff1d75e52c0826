/**
 * The database dump job: for one `databases:` entry, one snapshot per database, each holding
 * /db/NAME/FILE (tagged `db` and `db:NAME`). A database whose dump fails gets no snapshot; the
 * others still run. Used by `lifeboat db dump` and, later, by the agent's scheduler.
 */
import path from 'node:path';
import type { DatabaseEntry } from '../config/databases.js';
import type { Repository } from '../repo/repository.js';
import { backupStream } from '../engine/stream-backup.js';
import { sourceFor } from '../sources/index.js';

export interface DbDumpResult {
  /** The config entry. */
  name: string;
  /** The database ('*' when the entry's databases could not even be listed). */
  database: string;
  /** The path inside the snapshot. */
  path: string;
  snapshotId?: string;
  /** Bytes of the dump. */
  bytes: number;
  /** New bytes added to the repository (before compression) and as stored. */
  added: number;
  stored: number;
  durationMs: number;
  error?: string;
}

export interface DbDumpOptions {
  hostname?: string;
  /** Where the tools' stderr goes (default: ours). */
  stderr?: NodeJS.WritableStream;
  /** The tools' environment (default: ours). */
  env?: NodeJS.ProcessEnv;
  /** Told when a database's dump starts and when it ended. */
  onStart?: (database: string) => void;
  onResult?: (r: DbDumpResult) => void;
  /** Told the bytes of the current database's dump read so far. */
  onBytes?: (database: string, n: number) => void;
}

/** Snapshot tags of an entry's dumps. */
export function dbTags(name: string): string[] {
  return ['db', `db:${name}`];
}

/** A private directory under the repository's cache for password files and the SQLite copy. */
export function dbTmpDir(repo: Repository): string {
  return path.join(repo.cacheDir, 'tmp');
}

export async function runDbDump(repo: Repository, name: string, entry: DatabaseEntry, opts: DbDumpOptions = {}): Promise<DbDumpResult[]> {
  const source = sourceFor(entry, { name, tmpDir: dbTmpDir(repo), stderr: opts.stderr, env: opts.env });
  const results: DbDumpResult[] = [];
  const report = (r: DbDumpResult) => {
    results.push(r);
    opts.onResult?.(r);
  };
  let units;
  try {
    units = await source.units();
  } catch (e) {
    report({ name, database: '*', path: `/db/${name}`, bytes: 0, added: 0, stored: 0, durationMs: 0, error: (e as Error).message });
    return results;
  }
  for (const unit of units) {
    const file = `db/${name}/${unit.filename}`;
    const started = Date.now();
    opts.onStart?.(unit.database);
    try {
      const stream = await unit.open();
      const r = await backupStream(repo, file, stream, {
        hostname: opts.hostname,
        tags: [...dbTags(name), ...entry.tags],
        onBytes: opts.onBytes ? (n) => opts.onBytes!(unit.database, n) : undefined,
      });
      report({
        name,
        database: unit.database,
        path: `/${file}`,
        snapshotId: r.snapshotId ?? undefined,
        bytes: r.summary.totalBytesProcessed,
        added: r.summary.dataAdded,
        stored: r.summary.dataAddedPacked,
        durationMs: Date.now() - started,
      });
    } catch (e) {
      report({ name, database: unit.database, path: `/${file}`, bytes: 0, added: 0, stored: 0, durationMs: Date.now() - started, error: (e as Error).message });
    }
  }
  return results;
}
