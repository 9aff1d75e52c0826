import { z } from 'zod';
import { durationSchema } from './duration.js';
import { jobFields } from './schedule.js';

/**
 * The `databases:` section: named dump sources. Each entry becomes one snapshot per database,
 * tagged `db` and `db:NAME`, holding /db/NAME/DATABASE.sql (or the entry's file name).
 */

const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'use letters, digits, _ . - (starting with a letter or digit)');

/** Run the client tools as this system user (needs root), e.g. `postgres` for peer authentication. */
const runAs = z.string().regex(/^[a-z_][a-z0-9_.-]*\$?$/i, 'a system user name').optional();

/** Secrets come from a file or the environment, never from the config file itself. */
const secretFields = {
  /** A file holding the password (one line; a trailing newline is ignored). Relative to the config file. */
  password_file: z.string().min(1).optional(),
  /** The name of an environment variable holding the password. */
  password_env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name').optional(),
  /** Refused with a helpful message: inline secrets would end up in backups of /etc and in diffs. */
  password: z.unknown().optional(),
};

const common = {
  /** How long one database's dump may take before it is killed and the job fails. */
  timeout: durationSchema.prefault('2h'),
  /** Extra tags for the snapshots (besides db and db:NAME). */
  tags: z.array(z.string().regex(/^[^,\s]+$/, 'a tag without commas or spaces')).default([]),
  /** The agent's schedule, hooks and priority for this entry's dumps (job name db:NAME). */
  ...jobFields,
};

const databaseList = z.union([z.literal('all'), z.array(z.string().min(1)).min(1)], { error: 'expected "all" or a list of database names' });
const port = z.number().int().min(1).max(65535);

export const postgresEntrySchema = z
  .object({
    type: z.literal('postgres'),
    /** Host name, IP address, or a Unix socket directory (starting with /). Default: libpq's default socket. */
    host: z.string().min(1).optional(),
    port: port.default(5432),
    user: z.string().min(1).default('postgres'),
    ...secretFields,
    run_as: runAs,
    /** `all`: every database that allows connections except templates, plus `pg_dumpall --globals-only`. */
    databases: databaseList.default('all'),
    /** Extra pg_dump arguments, e.g. ["--exclude-table-data=audit_log"]. */
    dump_args: z.array(z.string()).default([]),
    ...common,
  })
  .strict();

export const mysqlEntrySchema = z
  .object({
    type: z.literal('mysql'),
    host: z.string().min(1).optional(),
    port: port.default(3306),
    /** A Unix socket path (instead of host and port). */
    socket: z.string().min(1).optional(),
    user: z.string().min(1).default('root'),
    ...secretFields,
    run_as: runAs,
    /** `all`: every database except information_schema, performance_schema, sys and mysql. */
    databases: databaseList.default('all'),
    /** Extra mariadb-dump arguments. */
    dump_args: z.array(z.string()).default([]),
    ...common,
  })
  .strict();

export const sqliteEntrySchema = z
  .object({
    type: z.literal('sqlite'),
    /** The database file (relative paths are relative to the config file). */
    path: z.string().min(1),
    ...common,
  })
  .strict();

export const commandEntrySchema = z
  .object({
    type: z.literal('command'),
    /** The command and its arguments (no shell); its stdout is the backup. */
    command: z.array(z.string().min(1)).min(1),
    /** The file name inside the snapshot: /db/NAME/FILENAME. */
    filename: z.string().regex(/^[^/\0]+$/, 'a file name without slashes').refine((f) => f !== '.' && f !== '..', 'a file name'),
    /** Optional: a command that reads the backup on stdin for `db restore`. */
    restore_command: z.array(z.string().min(1)).min(1).optional(),
    run_as: runAs,
    /** Extra environment variables for both commands (not secrets: use password files for those). */
    env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), z.string()).default({}),
    ...common,
  })
  .strict();

export const databaseEntrySchema = z
  .discriminatedUnion('type', [postgresEntrySchema, mysqlEntrySchema, sqliteEntrySchema, commandEntrySchema], {
    error: (iss) => (iss.code === 'invalid_union' ? 'type must be one of postgres, mysql, sqlite, command' : undefined),
  })
  .superRefine((e, ctx) => {
    if ('password' in e && e.password !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['password'], message: 'passwords are not written in the config file: use password_file or password_env' });
    }
    if ('password_file' in e && e.password_file && e.password_env) {
      ctx.addIssue({ code: 'custom', path: ['password_env'], message: 'give password_file or password_env, not both' });
    }
    if ((e.type === 'postgres' || e.type === 'mysql') && e.run_as && (e.password_file || e.password_env)) {
      ctx.addIssue({ code: 'custom', path: ['run_as'], message: 'run_as is for peer (socket) authentication: leave out password_file and password_env' });
    }
    if (e.type === 'mysql' && e.socket && e.host) {
      ctx.addIssue({ code: 'custom', path: ['socket'], message: 'give host or socket, not both' });
    }
  });

export const databasesSectionSchema = z.record(name, databaseEntrySchema);

export type PostgresEntry = z.infer<typeof postgresEntrySchema>;
export type MysqlEntry = z.infer<typeof mysqlEntrySchema>;
export type SqliteEntry = z.infer<typeof sqliteEntrySchema>;
export type CommandEntry = z.infer<typeof commandEntrySchema>;
export type DatabaseEntry = z.infer<typeof databaseEntrySchema>;
