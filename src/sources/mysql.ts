/**
 * MariaDB / MySQL: `mariadb-dump` (or `mysqldump`) with --single-transaction --routines --triggers
 * --events per database, restored through `mariadb` (or `mysql`). The password reaches the tools
 * in a 0600 option file (--defaults-extra-file) that exists only while they run.
 */
import type { MysqlEntry } from '../config/databases.js';
import { readSecret } from '../config/secrets.js';
import { commandSource, type StreamSource } from '../engine/stream-backup.js';
import { findTool, lookupUser, runAsOptions, runTool, stamp, toolEnv } from './process.js';
import type { SpawnAs } from './process.js';
import { SecretFile } from './secret-file.js';
import { dumpFileName, restoredName, type DatabaseSource, type DumpUnit, type RestoreRequest, type RestoreResult, type SourceContext } from './types.js';

const PKG = 'mariadb-client';
/** Skipped by `databases: all`. */
export const MYSQL_SYSTEM_SCHEMAS = new Set(['information_schema', 'performance_schema', 'sys']);

const quoteIdent = (s: string) => `\`${s.replace(/`/g, '``')}\``;

/** An option-file value: double-quoted, with \\ and \" escaped. */
export function optionValue(v: string): string {
  return `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
}

export class MysqlSource implements DatabaseSource {
  constructor(
    private readonly entry: MysqlEntry,
    private readonly ctx: SourceContext,
  ) {}

  /** The tools' environment: lifeboat's, without its secrets. */
  private get baseEnv(): NodeJS.ProcessEnv {
    return toolEnv(this.ctx.env ?? process.env, this.entry.password_env);
  }

  private dumpTool(): string {
    return findTool(['mariadb-dump', 'mysqldump'], PKG, this.baseEnv);
  }

  private clientTool(): string {
    return findTool(['mariadb', 'mysql'], PKG, this.baseEnv);
  }

  /** Connection arguments (no secrets); the option file, when any, must come first. */
  private connArgs(optionFile: string | undefined): string[] {
    const a: string[] = [];
    if (optionFile) a.push(`--defaults-extra-file=${optionFile}`);
    a.push(`--user=${this.entry.user}`);
    if (this.entry.socket) a.push('--protocol=SOCKET', `--socket=${this.entry.socket}`);
    // "localhost" means the default socket to MySQL clients; any other host means TCP
    else if (this.entry.host === 'localhost') a.push('--host=localhost');
    else if (this.entry.host) a.push('--protocol=TCP', `--host=${this.entry.host}`, `--port=${this.entry.port}`);
    return a;
  }

  private async withConn<T>(fn: (args: string[], so: SpawnAs, done: () => void) => Promise<T>, keep = false): Promise<T> {
    const password = readSecret(this.entry, `databases.${this.ctx.name}`);
    const env: NodeJS.ProcessEnv = { ...this.baseEnv };
    delete env.MYSQL_PWD;
    let secret: SecretFile | undefined;
    if (password !== undefined) secret = SecretFile.create(this.ctx.tmpDir, 'my-cnf', `[client]\npassword=${optionValue(password)}\n`);
    const done = () => secret?.remove();
    try {
      const r = await fn(this.connArgs(secret?.path), runAsOptions(this.entry.run_as ? lookupUser(this.entry.run_as) : undefined, env), done);
      if (!keep) done();
      return r;
    } catch (e) {
      done();
      throw e;
    }
  }

  private async query(sql: string, database?: string): Promise<string[][]> {
    const client = this.clientTool();
    const out = await this.withConn((args, so) =>
      runTool([client, ...args, '--batch', '--skip-column-names', '--raw', '--connect-timeout=15', `--execute=${sql}`, ...(database ? [database] : [])], { ...so, label: 'mariadb', timeoutMs: 120_000 }),
    );
    return out.split('\n').filter((l) => l.length > 0).map((l) => l.split('\t'));
  }

  async listDatabases(): Promise<string[]> {
    return (await this.query('SHOW DATABASES')).map((r) => r[0]!).filter((d) => !MYSQL_SYSTEM_SCHEMAS.has(d)).sort();
  }

  async units(): Promise<DumpUnit[]> {
    const dump = this.dumpTool();
    const names = this.entry.databases === 'all' ? await this.listDatabases() : (this.entry.databases as string[]);
    const version = (await runTool([dump, '--version'], { env: this.baseEnv, timeoutMs: 30_000 })).trim();
    return names.map((database) => ({
      database,
      filename: dumpFileName(database, '.sql'),
      open: () =>
        this.withConn(
          async (args, so, done): Promise<StreamSource> => {
            const argv = [dump, ...args, '--single-transaction', '--routines', '--triggers', '--events', ...this.entry.dump_args, '--', database];
            const src = commandSource(argv, {
              ...so,
              label: 'mariadb-dump',
              timeoutMs: this.entry.timeout,
              stderr: this.ctx.stderr,
              notFoundHint: `install the Debian package ${PKG}`,
              info: {
                type: 'mysql',
                name: this.ctx.name,
                database,
                ...(this.entry.socket ? { socket: this.entry.socket } : { host: this.entry.host ?? 'localhost', port: this.entry.port }),
                user: this.entry.user,
                tool: dump.split('/').pop(),
                tool_version: version,
              } as StreamSource['info'],
            });
            src.done.then(done, done);
            return src;
          },
          true,
        ),
    }));
  }

  async restore(req: RestoreRequest): Promise<RestoreResult> {
    const client = this.clientTool();
    const schemas = new Map((await this.query('SELECT SCHEMA_NAME, DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA')).map((r) => [r[0]!, r]));
    const target = req.into ?? (req.force ? req.database : restoredName(req.database, stamp(), 64));
    if (MYSQL_SYSTEM_SCHEMAS.has(target)) throw new Error(`cannot restore into the system schema ${target}`);
    const exists = schemas.has(target);
    if (exists && !req.force) throw new Error(`database "${target}" already exists: choose another --into, or add --force to replace it`);
    const like = schemas.get(target) ?? schemas.get(req.database);
    const charset = like ? ` CHARACTER SET ${like[1]} COLLATE ${like[2]}` : '';
    if (exists) {
      req.note?.(`dropping database "${target}" to replace it`);
      await this.query(`DROP DATABASE ${quoteIdent(target)}`);
    }
    await this.query(`CREATE DATABASE ${quoteIdent(target)}${charset}`);
    req.note?.(`loading into database "${target}"`);
    try {
      await this.withConn((args, so) =>
        runTool([client, ...args, '--connect-timeout=15', '--', target], { ...so, label: 'mariadb', feed: req.feed, captureStdout: false, timeoutMs: this.entry.timeout }),
      );
    } catch (e) {
      if (!exists) await this.query(`DROP DATABASE IF EXISTS ${quoteIdent(target)}`).catch(() => undefined);
      throw e;
    }
    return { target, replaced: exists };
  }
}
