import type { DatabaseEntry } from '../config/databases.js';
import { CommandSource } from './command.js';
import { MysqlSource } from './mysql.js';
import { PostgresSource } from './postgres.js';
import { SqliteSource } from './sqlite.js';
import type { DatabaseSource, SourceContext } from './types.js';

export type { DatabaseSource, DumpUnit, RestoreRequest, RestoreResult, SourceContext } from './types.js';

/** The source for a config entry. */
export function sourceFor(entry: DatabaseEntry, ctx: SourceContext): DatabaseSource {
  switch (entry.type) {
    case 'postgres':
      return new PostgresSource(entry, ctx);
    case 'mysql':
      return new MysqlSource(entry, ctx);
    case 'sqlite':
      return new SqliteSource(entry, ctx);
    case 'command':
      return new CommandSource(entry, ctx);
  }
}
