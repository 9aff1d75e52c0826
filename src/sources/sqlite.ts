/**
 * SQLite: a consistent copy through SQLite's online backup API (better-sqlite3's `backup`, copying
 * every page in one step so writers in other processes cannot make it restart), into the private
 * temp directory, checked, streamed, and removed. Restored as a database file: a new file next to
 * the original by default; over an existing database through the backup API again, so its
 * connections, WAL and locks are respected.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { SqliteEntry } from '../config/databases.js';
import type { StreamSource } from '../engine/stream-backup.js';
import { stamp } from './process.js';
import { sweepStale } from './secret-file.js';
import type { DatabaseSource, DumpUnit, RestoreRequest, RestoreResult, SourceContext } from './types.js';

/** Copies `source` to `dest` (a new file) with the backup API; fails after `timeoutMs`. */
export async function sqliteBackup(source: string, dest: string, timeoutMs: number): Promise<void> {
  let db: Database.Database;
  try {
    // read-write when we may (nothing is written, but a hot journal left by a crashed writer must be
    // rolled back before anyone can read), else read-only
    try {
      db = new Database(source, { fileMustExist: true });
    } catch {
      db = new Database(source, { readonly: true, fileMustExist: true });
    }
  } catch (e) {
    throw new Error(`cannot open SQLite database ${source}: ${(e as Error).message}`);
  }
  const started = Date.now();
  try {
    db.pragma('busy_timeout = 10000');
    await db.backup(dest, {
      progress: () => {
        if (Date.now() - started > timeoutMs) throw new Error(`SQLite backup of ${source} timed out after ${Math.round(timeoutMs / 1000)} s`);
        return 0x7fffffff; // everything in the next step: one consistent read
      },
    });
  } finally {
    db.close();
  }
  const copy = new Database(dest, { fileMustExist: true });
  try {
    const check = copy.pragma('quick_check', { simple: true });
    if (check !== 'ok') throw new Error(`the copy of ${source} failed quick_check: ${String(check)}`);
    copy.pragma('journal_mode = DELETE'); // one self-contained file
  } finally {
    copy.close();
  }
}

export class SqliteSource implements DatabaseSource {
  constructor(
    private readonly entry: SqliteEntry,
    private readonly ctx: SourceContext,
  ) {}

  private get database(): string {
    return path.basename(this.entry.path);
  }

  async units(): Promise<DumpUnit[]> {
    if (!fs.existsSync(this.entry.path)) throw new Error(`SQLite database ${this.entry.path} does not exist`);
    return [{ database: this.database, filename: this.database, open: () => this.open() }];
  }

  private async open(): Promise<StreamSource> {
    fs.mkdirSync(this.ctx.tmpDir, { recursive: true, mode: 0o700 });
    sweepStale(this.ctx.tmpDir);
    const tmp = path.join(this.ctx.tmpDir, `sqlite-${crypto.randomBytes(8).toString('hex')}.db`);
    const remove = () => {
      for (const f of [tmp, `${tmp}-journal`, `${tmp}-wal`, `${tmp}-shm`]) fs.rmSync(f, { force: true });
    };
    try {
      await sqliteBackup(this.entry.path, tmp, this.entry.timeout);
    } catch (e) {
      remove();
      throw e;
    }
    const stream = fs.createReadStream(tmp, { highWaterMark: 1024 * 1024 });
    const done = new Promise<void>((resolve, reject) => {
      stream.on('end', resolve);
      stream.on('error', reject);
      stream.on('close', resolve);
    }).finally(remove);
    done.catch(() => undefined);
    return {
      stream,
      done,
      abort: () => stream.destroy(),
      info: { type: 'sqlite', name: this.ctx.name, database: this.database, path: this.entry.path, method: 'backup-api', size: fs.statSync(tmp).size } as StreamSource['info'],
    };
  }

  async restore(req: RestoreRequest): Promise<RestoreResult> {
    if (req.database !== this.database) throw new Error(`this entry holds the SQLite database ${this.database}, not ${req.database}`);
    const dir = path.dirname(this.entry.path);
    const ext = path.extname(this.database);
    const stem = path.basename(this.database, ext);
    const target = req.into ? path.resolve(dir, req.into) : req.force ? this.entry.path : path.join(dir, `${stem}_restored_${stamp()}${ext}`);
    const exists = fs.existsSync(target);
    if (exists && !req.force) throw new Error(`${target} already exists: choose another --into, or add --force to replace it`);
    // the dump, written next to the target and checked before it goes anywhere
    const tmp = path.join(path.dirname(target), `.${path.basename(target)}.lifeboat-${crypto.randomBytes(6).toString('hex')}`);
    try {
      const out = fs.createWriteStream(tmp, { mode: 0o600, flags: 'wx' });
      const closed = new Promise<void>((resolve, reject) => {
        out.on('close', resolve);
        out.on('error', reject);
      });
      await req.feed(out);
      out.end();
      await closed;
      const db = new Database(tmp, { fileMustExist: true });
      try {
        const check = db.pragma('integrity_check', { simple: true });
        if (check !== 'ok') throw new Error(`the restored database fails integrity_check: ${String(check)}`);
        if (exists) {
          req.note?.(`replacing ${target} through the SQLite backup API`);
          db.pragma('busy_timeout = 10000');
          await db.backup(target, { progress: () => 0x7fffffff });
        }
      } finally {
        db.close();
      }
      if (!exists) {
        const mode = fs.existsSync(this.entry.path) ? fs.statSync(this.entry.path).mode & 0o777 : 0o644;
        fs.chmodSync(tmp, mode);
        fs.renameSync(tmp, target);
      }
    } finally {
      for (const f of [tmp, `${tmp}-journal`, `${tmp}-wal`, `${tmp}-shm`]) fs.rmSync(f, { force: true });
    }
    return { target, replaced: exists };
  }
}
