/**
 * What a database source offers the dump job and `db restore`: the databases it will dump (each a
 * byte stream with its snapshot metadata) and a way to load a dump back.
 */
import type { Writable } from 'node:stream';
import type { StreamSource } from '../engine/stream-backup.js';

export interface DumpUnit {
  /** The database's name (recorded as source.database). */
  database: string;
  /** The file name under /db/NAME/. */
  filename: string;
  /** Starts the dump. */
  open(): Promise<StreamSource>;
}

export interface RestoreRequest {
  /** The database the dump was taken from. */
  database: string;
  /** Where to restore: a new database (or file) name; default `DATABASE_restored_YYYYMMDDHHMMSS`. */
  into?: string;
  /** Allow restoring over an existing database (the original included). */
  force: boolean;
  /** Writes the dump's bytes. */
  feed: (out: Writable) => Promise<void>;
  /** Progress notes for the user. */
  note?: (line: string) => void;
}

export interface RestoreResult {
  /** The database (or file) that now holds the restored data. */
  target: string;
  /** True when an existing database was replaced. */
  replaced: boolean;
}

export interface DatabaseSource {
  /** The databases to dump, resolving `all` (may ask the server). */
  units(): Promise<DumpUnit[]>;
  restore(req: RestoreRequest): Promise<RestoreResult>;
}

export interface SourceContext {
  /** The entry's name in the config. */
  name: string;
  /** A private directory for short-lived files (secrets, the SQLite copy). */
  tmpDir: string;
  /** Where the tools' stderr goes. */
  stderr?: NodeJS.WritableStream;
  /** The environment the tools run with (default: ours). */
  env?: NodeJS.ProcessEnv;
}

/** A database name as a file name: `/` and `%` escaped, `.`/`..` spelled out. */
export function dumpFileName(database: string, ext: string): string {
  let n = database.replace(/%/g, '%25').replace(/\//g, '%2F').replace(/\0/g, '%00');
  if (n === '' || n === '.' || n === '..') n = n.replace(/\./g, '%2E') || '%';
  return `${n}${ext}`;
}

/** The default name for a restored copy: `DB_restored_YYYYMMDDHHMMSS`, cut to `max` characters. */
export function restoredName(database: string, ts: string, max = 64): string {
  const suffix = `_restored_${ts}`;
  return database.slice(0, Math.max(1, max - suffix.length)) + suffix;
}
