import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import { pidAlive } from '../util/process.js';

/**
 * A throw-away SQLite database on disk, for commands that must remember a set as large as the
 * repository (check's and prune's "seen" and "used" blobs): memory stays flat however many blobs
 * there are. The file lives in the repository's cache directory and is removed on close (and,
 * if the process dies, by the next ScratchDb opened there).
 */
export class ScratchDb {
  readonly db: Database.Database;
  private readonly file: string;

  constructor(dir: string) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    for (const f of fs.readdirSync(dir)) {
      const m = /^scratch-(\d+)-[0-9a-f]+\.db$/.exec(f);
      if (m && !pidAlive(Number(m[1]))) fs.rmSync(path.join(dir, f), { force: true });
    }
    this.file = path.join(dir, `scratch-${process.pid}-${randomBytes(4).toString('hex')}.db`);
    this.db = new Database(this.file);
    this.db.pragma('journal_mode = OFF');
    this.db.pragma('synchronous = OFF');
    this.db.pragma('cache_size = -16384'); // 16 MiB page cache, whatever the set's size
  }

  /** A set of 32-byte ids in its own table. */
  idSet(name: string): IdSet {
    return new IdSet(this.db, name);
  }

  /** A map from ids to small integers in its own table. */
  idMap(name: string): IdMap {
    return new IdMap(this.db, name);
  }

  /** Runs fn in one transaction (many small writes, one commit). */
  batch<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  close(): void {
    if (this.db.open) this.db.close();
    fs.rmSync(this.file, { force: true });
  }
}

export class IdSet {
  private readonly insert: Database.Statement<[Buffer]>;
  private readonly get: Database.Statement<[Buffer], { one: number }>;
  private readonly countStmt: Database.Statement<[], { n: number }>;
  private readonly all: Database.Statement<[], { id: Buffer }>;

  constructor(db: Database.Database, readonly table: string) {
    if (!/^[a-z_]+$/.test(table)) throw new Error(`bad table name ${table}`);
    db.exec(`CREATE TABLE IF NOT EXISTS ${table} (id BLOB PRIMARY KEY) WITHOUT ROWID`);
    this.insert = db.prepare(`INSERT OR IGNORE INTO ${table} (id) VALUES (?)`);
    this.get = db.prepare(`SELECT 1 AS one FROM ${table} WHERE id = ?`);
    this.countStmt = db.prepare(`SELECT COUNT(*) AS n FROM ${table}`);
    this.all = db.prepare(`SELECT id FROM ${table}`);
  }

  /** Adds the id; true if it was new. */
  add(id: Buffer): boolean {
    return this.insert.run(id).changes > 0;
  }

  has(id: Buffer): boolean {
    return this.get.get(id) !== undefined;
  }

  get size(): number {
    return this.countStmt.get()!.n;
  }

  *ids(): IterableIterator<Buffer> {
    for (const r of this.all.iterate()) yield r.id;
  }
}

/** A map from 32-byte ids to small integers (a flag, an ordinal) in its own table. */
export class IdMap {
  private readonly upsert: Database.Statement<[Buffer, number]>;
  private readonly insertNew: Database.Statement<[Buffer, number]>;
  private readonly read: Database.Statement<[Buffer], { v: number }>;

  constructor(db: Database.Database, readonly table: string) {
    if (!/^[a-z_]+$/.test(table)) throw new Error(`bad table name ${table}`);
    db.exec(`CREATE TABLE IF NOT EXISTS ${table} (id BLOB PRIMARY KEY, v INTEGER NOT NULL) WITHOUT ROWID`);
    this.upsert = db.prepare(`INSERT OR REPLACE INTO ${table} (id, v) VALUES (?, ?)`);
    this.insertNew = db.prepare(`INSERT OR IGNORE INTO ${table} (id, v) VALUES (?, ?)`);
    this.read = db.prepare(`SELECT v FROM ${table} WHERE id = ?`);
  }

  set(id: Buffer, v: number): void {
    this.upsert.run(id, v);
  }

  /** Sets the value unless the id has one already; true if it was set. */
  setIfAbsent(id: Buffer, v: number): boolean {
    return this.insertNew.run(id, v).changes > 0;
  }

  get(id: Buffer): number | undefined {
    return this.read.get(id)?.v;
  }
}
