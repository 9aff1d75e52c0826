/**
 * PostgreSQL: `pg_dump --format=plain` per database (plus `pg_dumpall --globals-only` for roles when
 * `databases: all`), restored through `psql`. The password reaches the tools through PGPASSFILE, a
 * 0600 file that exists only while they run; the database name through PGDATABASE.
 */
import type { PostgresEntry } from '../config/databases.js';
import { readSecret } from '../config/secrets.js';
import { commandSource, type StreamSource } from '../engine/stream-backup.js';
import { findTool, lookupUser, runAsOptions, runTool, stamp, toolEnv, type RunAs } from './process.js';
import type { SpawnAs } from './process.js';
import { SecretFile } from './secret-file.js';
import { dumpFileName, restoredName, type DatabaseSource, type DumpUnit, type RestoreRequest, type RestoreResult, type SourceContext } from './types.js';

const PKG = 'postgresql-client';
export const PG_GLOBALS = '_globals';

/** A .pgpass line matching any server with this password. */
export function pgpassLine(password: string): string {
  return `*:*:*:*:${password.replace(/\\/g, '\\\\').replace(/:/g, '\\:')}\n`;
}

export const quoteIdent = (s: string) => `"${s.replace(/"/g, '""')}"`;
export const quoteLiteral = (s: string) => `'${s.replace(/'/g, "''")}'`;

export class PostgresSource implements DatabaseSource {
  constructor(
    private readonly entry: PostgresEntry,
    private readonly ctx: SourceContext,
  ) {}

  /** The tools' environment: lifeboat's, without its secrets. */
  private get baseEnv(): NodeJS.ProcessEnv {
    return toolEnv(this.ctx.env ?? process.env, this.entry.password_env);
  }

  private runAsCache: RunAs | undefined;
  private get runAs(): RunAs | undefined {
    if (this.entry.run_as && !this.runAsCache) this.runAsCache = lookupUser(this.entry.run_as);
    return this.runAsCache;
  }

  private tool(name: string): string {
    return findTool([name], PKG, this.baseEnv);
  }

  /** Connection arguments (no secrets). */
  private connArgs(): string[] {
    const a = ['--no-password', `--port=${this.entry.port}`, `--username=${this.entry.user}`];
    if (this.entry.host) a.push(`--host=${this.entry.host}`);
    return a;
  }

  /** Runs fn with the environment the tools need; the password file lives only that long. */
  private async withEnv<T>(database: string, fn: (spawnOpts: SpawnAs, done: () => void) => Promise<T>, keep = false): Promise<T> {
    const password = readSecret(this.entry, `databases.${this.ctx.name}`);
    const env: NodeJS.ProcessEnv = { ...this.baseEnv, PGDATABASE: database, PGCONNECT_TIMEOUT: this.baseEnv.PGCONNECT_TIMEOUT ?? '15', PGAPPNAME: 'lifeboat' };
    delete env.PGPASSWORD;
    delete env.PGSERVICE;
    let secret: SecretFile | undefined;
    if (password !== undefined) {
      secret = SecretFile.create(this.ctx.tmpDir, 'pgpass', pgpassLine(password));
      env.PGPASSFILE = secret.path;
    }
    const done = () => secret?.remove();
    try {
      const r = await fn(runAsOptions(this.runAs, env), done);
      if (!keep) done();
      return r;
    } catch (e) {
      done();
      throw e;
    }
  }

  /** Runs SQL (no user data in it but quoted names) through psql against `database`; rows as arrays. */
  private async query(database: string, sql: string, opts: { timeoutMs?: number } = {}): Promise<string[][]> {
    const psql = this.tool('psql');
    const out = await this.withEnv(database, (so) =>
      runTool([psql, '-X', '-q', '-A', '-t', '-F', '\t', '-v', 'ON_ERROR_STOP=1', ...this.connArgs(), '-c', sql], { ...so, label: 'psql', timeoutMs: opts.timeoutMs ?? 120_000 }),
    );
    return out.split('\n').filter((l) => l.length > 0).map((l) => l.split('\t'));
  }

  async listDatabases(): Promise<string[]> {
    const rows = await this.query('postgres', 'SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY datname');
    return rows.map((r) => r[0]!);
  }

  async units(): Promise<DumpUnit[]> {
    const pgDump = this.tool('pg_dump');
    const all = this.entry.databases === 'all';
    const names = all ? await this.listDatabases() : (this.entry.databases as string[]);
    const version = (await runTool([pgDump, '--version'], { env: this.baseEnv, timeoutMs: 30_000 })).trim().split(' ').pop();
    const info = (database: string, tool: string) => ({
      type: 'postgres',
      name: this.ctx.name,
      database,
      ...(this.entry.host ? { host: this.entry.host } : {}),
      port: this.entry.port,
      user: this.entry.user,
      tool,
      tool_version: version,
      format: 'plain',
    });
    const units: DumpUnit[] = names.map((database) => ({
      database,
      filename: dumpFileName(database, '.sql'),
      open: () =>
        this.stream(database, [pgDump, '--format=plain', ...this.connArgs(), ...this.entry.dump_args], 'pg_dump', info(database, 'pg_dump')),
    }));
    if (all) {
      const pgDumpall = this.tool('pg_dumpall');
      units.push({
        database: PG_GLOBALS,
        filename: `${PG_GLOBALS}.sql`,
        open: () =>
          this.stream('postgres', [pgDumpall, '--globals-only', ...this.connArgs(), '--database=postgres'], 'pg_dumpall', { ...info(PG_GLOBALS, 'pg_dumpall'), globals: true }),
      });
    }
    return units;
  }

  private stream(database: string, argv: string[], label: string, info: Record<string, unknown>): Promise<StreamSource> {
    return this.withEnv(
      database,
      async (so, done) => {
        const src = commandSource(argv, { ...so, label, timeoutMs: this.entry.timeout, stderr: this.ctx.stderr, notFoundHint: `install the Debian package ${PKG}`, info: info as StreamSource['info'] });
        src.done.then(done, done);
        return src;
      },
      true,
    );
  }

  async restore(req: RestoreRequest): Promise<RestoreResult> {
    const psql = this.tool('psql');
    const load = (database: string, singleTransaction: boolean) =>
      this.withEnv(database, (so) =>
        runTool([psql, '-X', '-q', ...(singleTransaction ? ['-v', 'ON_ERROR_STOP=1', '--single-transaction'] : []), ...this.connArgs()], {
          ...so,
          label: 'psql',
          feed: req.feed,
          captureStdout: false,
          timeoutMs: this.entry.timeout,
        }),
      );
    if (req.database === PG_GLOBALS) {
      // roles and tablespaces: into the cluster; existing roles make harmless errors
      if (!req.force) throw new Error(`restoring ${PG_GLOBALS} (roles, tablespaces) changes the whole server: add --force`);
      await load('postgres', false);
      return { target: 'the server\'s roles and tablespaces', replaced: true };
    }
    const existing = new Map((await this.query('postgres', 'SELECT datname, pg_get_userbyid(datdba) FROM pg_database')).map((r) => [r[0]!, r[1]!]));
    const ts = stamp();
    const target = req.into ?? (req.force ? req.database : restoredName(req.database, ts, 63));
    if (Buffer.byteLength(target) > 63) throw new Error(`database name "${target}" is longer than PostgreSQL's 63 bytes`);
    const targetExists = existing.has(target);
    if (targetExists && !req.force) throw new Error(`database "${target}" already exists: choose another --into, or add --force to replace it`);
    const owner = existing.get(target) ?? existing.get(req.database);
    const create = (name: string) => this.query('postgres', `CREATE DATABASE ${quoteIdent(name)}${owner ? ` OWNER ${quoteIdent(owner)}` : ''}`);
    // load into a new database; an existing one is replaced only after the load succeeded
    const loadInto = targetExists ? restoredName(target, `${ts}_tmp`, 63) : target;
    await create(loadInto);
    req.note?.(`loading into database "${loadInto}"`);
    try {
      await load(loadInto, true);
    } catch (e) {
      await this.query('postgres', `DROP DATABASE IF EXISTS ${quoteIdent(loadInto)}`).catch(() => undefined);
      throw e;
    }
    if (!targetExists) return { target, replaced: false };
    const old = restoredName(target, `${ts}_old`, 63).replace('_restored_', '_replaced_');
    req.note?.(`replacing database "${target}" (its connections are closed)`);
    for (let attempt = 1; ; attempt++) {
      try {
        await this.query('postgres', `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = ${quoteLiteral(target)} AND pid <> pg_backend_pid()`);
        await this.query('postgres', `ALTER DATABASE ${quoteIdent(target)} RENAME TO ${quoteIdent(old)}`);
        break;
      } catch (e) {
        if (attempt >= 5) throw new Error(`could not replace database "${target}" (the restored copy is in "${loadInto}"): ${(e as Error).message}`);
        await new Promise((r) => setTimeout(r, 500 * attempt));
      }
    }
    await this.query('postgres', `ALTER DATABASE ${quoteIdent(loadInto)} RENAME TO ${quoteIdent(target)}`);
    await this.query('postgres', `DROP DATABASE ${quoteIdent(old)} WITH (FORCE)`);
    return { target, replaced: true };
  }
}
