/**
 * Database dumps end to end through the built CLI, against the private PostgreSQL 15 and MariaDB
 * 10.11 servers started by the global setup: dump, damage, restore, compare (schema text, row
 * counts, per-table checksums); `databases: all`; failures (wrong password, missing database, dump
 * killed mid-way, missing client tool); and secrets: never in argv, snapshots or output.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initCliRepo, runCli, type RunResult } from '../helpers/cli.js';
import { deleteBucket, makeTempDir, s3Endpoint } from '../helpers/storage-backends.js';
import {
  holdLock,
  mariadb,
  mariadbServer,
  myCreate,
  myDatabases,
  myFingerprint,
  pgCreate,
  pgDatabases,
  pgFingerprint,
  pgServer,
  psql,
  uniqueName,
  waitForProcess,
  type Server,
} from '../sources/db-fixtures.js';

interface DumpJson {
  name: string;
  database: string;
  path: string;
  snapshot_id?: string;
  bytes: number;
  error?: string;
}

interface SnapshotJson {
  id: string;
  tags: string[];
  paths: string[];
  source: Record<string, unknown>;
}

let dir: string;
let env: Record<string, string>;
let pg: Server;
let my: Server;
/** Every CLI output of this file, searched for secrets at the end of each test. */
const outputs: string[] = [];

async function cli(args: string[], extraEnv: Record<string, string> = {}): Promise<RunResult> {
  const r = await runCli(['--config', path.join(dir, 'lifeboat.yaml'), ...args], { ...env, ...extraEnv });
  outputs.push(r.stdout, r.stderr);
  return r;
}

function writeConfig(yaml: string): void {
  fs.writeFileSync(path.join(dir, 'lifeboat.yaml'), yaml);
}

function pgEntry(name: string, databases: string, extra = ''): string {
  return `  ${name}:\n    type: postgres\n    host: ${pg.host}\n    port: ${pg.port}\n    user: ${pg.user}\n    password_file: pg.pass\n    databases: ${databases}\n${extra}`;
}

function myEntry(name: string, databases: string, extra = ''): string {
  return `  ${name}:\n    type: mysql\n    host: ${my.host}\n    port: ${my.port}\n    user: ${my.user}\n    password_env: LB_TEST_MY_PW\n    databases: ${databases}\n${extra}`;
}

async function snapshots(): Promise<SnapshotJson[]> {
  const r = await cli(['snapshots', '--json']);
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as SnapshotJson[];
}

function expectNoSecrets(): void {
  for (const o of outputs) {
    expect(o).not.toContain(pg.password);
    expect(o).not.toContain(my.password);
  }
}

function tmpDirEmpty(): void {
  // password files and the SQLite copy live in <cache>/<repo id>/tmp and are removed afterwards
  const cache = path.join(dir, 'cache');
  for (const repoId of fs.readdirSync(cache)) {
    const t = path.join(cache, repoId, 'tmp');
    if (fs.existsSync(t)) expect(fs.readdirSync(t)).toEqual([]);
  }
}

const buckets: string[] = [];
afterAll(async () => {
  await Promise.allSettled(buckets.map((b) => deleteBucket(s3Endpoint(), b)));
});

/** A password with every character that needs escaping somewhere: .pgpass, option files, shells. */
const NASTY = `p:a\\ss "w'o$rd #1;`;

beforeAll(async () => {
  pg = pgServer();
  my = mariadbServer();
  dir = await makeTempDir();
  env = { ...(await initCliRepo('local', dir, [])), LB_TEST_MY_PW: my.password };
  fs.writeFileSync(path.join(dir, 'pg.pass'), `${pg.password}\n`, { mode: 0o600 });
});

describe('PostgreSQL', () => {
  it('dumps a database, and restores it into a new database and over the original, with the same schema and rows', async () => {
    const db = uniqueName('shop');
    pgCreate(pg, db);
    const before = pgFingerprint(pg, db);
    writeConfig(`databases:\n${pgEntry('main', `[${db}]`)}`);

    const dump = await cli(['db', 'dump', 'main', '--json']);
    expect(dump.stderr).toBe('');
    expect(dump.code).toBe(0);
    const results = JSON.parse(dump.stdout) as DumpJson[];
    expect(results).toHaveLength(1);
    expect(results[0]).toMatchObject({ name: 'main', database: db, path: `/db/main/${db}.sql` });
    const snap = (await snapshots()).find((s) => s.id === results[0]!.snapshot_id)!;
    expect(snap.tags).toEqual(['db', 'db:main']);
    expect(snap.paths).toEqual([`/db/main/${db}.sql`]);
    expect(snap.source).toMatchObject({ type: 'postgres', name: 'main', database: db, tool: 'pg_dump', format: 'plain' });
    // the dump is plain SQL
    const sql = await cli(['dump', 'latest', `/db/main/${db}.sql`]);
    expect(sql.stdout).toContain('CREATE TABLE public.orders');

    // damage: rows gone, a table dropped
    psql(pg, db, 'DELETE FROM orders WHERE id % 3 = 0; DROP VIEW big_orders; DROP TABLE audit; UPDATE customers SET name = \'x\'');
    expect(pgFingerprint(pg, db)).not.toEqual(before);

    // into a new database by default, named and announced
    const r1 = await cli(['db', 'restore', 'main', '--database', db]);
    expect(r1.code).toBe(0);
    const restored = new RegExp(`${db}_restored_\\d{14}`).exec(r1.stdout)?.[0];
    expect(restored, r1.stdout).toBeDefined();
    expect(r1.stdout).toContain(`into ${restored}`);
    expect(pgFingerprint(pg, restored!)).toEqual(before);

    // the original is not touched without --force
    const r2 = await cli(['db', 'restore', 'main', '--database', db, '--into', db]);
    expect(r2.code).toBe(1);
    expect(r2.stderr).toContain('already exists');
    expect(r2.stderr).toContain('--force');

    // over the original with --force (while a client is connected to it)
    const r3 = await cli(['db', 'restore', 'main', '--database', db, '--force']);
    expect(r3.stderr).toBe('');
    expect(r3.code).toBe(0);
    expect(pgFingerprint(pg, db)).toEqual(before);
    expect(pgDatabases(pg).filter((d) => d.startsWith(`${db}_`))).toEqual([restored]);
    tmpDirEmpty();
    expectNoSecrets();
  });

  it('databases: all dumps every non-template database and the roles (pg_dumpall --globals-only)', async () => {
    const a = uniqueName('alla');
    const b = uniqueName('allb');
    pgCreate(pg, a, 50);
    pgCreate(pg, b, 50);
    const role = uniqueName('role');
    psql(pg, 'postgres', `CREATE ROLE ${role} LOGIN`);
    writeConfig(`databases:\n${pgEntry('everything', 'all')}`);
    const dump = await cli(['db', 'dump', 'everything', '--json']);
    expect(dump.code).toBe(0);
    const dbs = (JSON.parse(dump.stdout) as DumpJson[]).map((r) => r.database);
    const expected = pgDatabases(pg).filter((d) => !d.startsWith('template'));
    expect(dbs.sort()).toEqual([...expected, '_globals'].sort());
    const globals = await cli(['dump', 'latest', '/db/everything/_globals.sql']);
    expect(globals.stdout).toContain(`CREATE ROLE ${role}`);
    // --database is needed when an entry has several
    const r = await cli(['db', 'restore', 'everything']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('give --database');
    expectNoSecrets();
  });

  it('fails with the server\'s reason, and saves no snapshot, for a wrong password and a missing database', async () => {
    const before = (await snapshots()).length;
    fs.writeFileSync(path.join(dir, 'wrong.pass'), 'not-the-password\n', { mode: 0o600 });
    writeConfig(`databases:\n${pgEntry('bad', '[postgres]').replace('pg.pass', 'wrong.pass')}${pgEntry('missing', '[no_such_db]')}`);
    const wrong = await cli(['db', 'dump', 'bad']);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/error: bad\/postgres: command pg_dump exited with status 1: .*password authentication failed/);
    expect(wrong.stderr).not.toContain('not-the-password');
    const missing = await cli(['db', 'dump', 'missing']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/database "no_such_db" does not exist/);
    expect(missing.stderr).toContain('1 of 1 database dumps failed');
    expect((await snapshots()).length).toBe(before);
    tmpDirEmpty();
    expectNoSecrets();
  });

  it('a pg_dump killed mid-way fails the job with its stderr tail; its argv holds no password, its password file is private and removed', async () => {
    const db = uniqueName('killed');
    pgCreate(pg, db, 100);
    writeConfig(`databases:\n${pgEntry('k', `[${db}]`)}`);
    const before = (await snapshots()).length;
    // a session holding an exclusive lock makes pg_dump wait, mid-way, until we kill it
    const locker = holdLock(['psql', '-X', '-h', pg.host, '-p', String(pg.port), '-U', pg.user, '-d', db], 'BEGIN; LOCK TABLE orders IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(120);', { ...process.env, PGPASSWORD: pg.password });
    try {
      const run = cli(['db', 'dump', 'k']);
      const proc = await waitForProcess((a) => a[0]!.endsWith('pg_dump') && a.includes(`--port=${pg.port}`));
      expect(proc.argv.join(' ')).not.toContain(pg.password);
      const passfile = proc.environ.find((e) => e.startsWith('PGPASSFILE='))!.slice('PGPASSFILE='.length);
      expect(proc.environ.some((e) => e.startsWith('PGPASSWORD='))).toBe(false);
      expect(fs.statSync(passfile).mode & 0o777).toBe(0o600);
      expect(passfile.startsWith(path.join(dir, 'cache'))).toBe(true);
      expect(fs.readFileSync(passfile, 'utf8')).toContain(pg.password);
      await new Promise((r) => setTimeout(r, 500));
      process.kill(proc.pid, 'SIGKILL');
      const r = await run;
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`error: k/${db}: command pg_dump was killed by SIGKILL`);
      expect(fs.existsSync(passfile)).toBe(false);
    } finally {
      locker.kill('SIGKILL');
    }
    expect((await snapshots()).length).toBe(before);
    tmpDirEmpty();
    expectNoSecrets();
  });

  it('passwords with : \\ " \' $ # ; and spaces work, and an S3 repository holds the dumps', async () => {
    const role = uniqueName('nasty');
    const db = uniqueName('s3db');
    psql(pg, 'postgres', `CREATE ROLE ${role} LOGIN SUPERUSER PASSWORD '${NASTY.replace(/'/g, "''")}'`);
    pgCreate(pg, db, 100);
    const before = pgFingerprint(pg, db);
    const s3dir = await makeTempDir();
    const s3env = await initCliRepo('s3', s3dir, buckets);
    const pw = path.join(dir, 'nasty.pass');
    fs.writeFileSync(pw, NASTY + '\n', { mode: 0o600 });
    writeConfig(`databases:\n  n:\n    type: postgres\n    host: ${pg.host}\n    port: ${pg.port}\n    user: ${role}\n    password_file: nasty.pass\n    databases: [${db}]\n`);
    const dump = await runCli(['--config', path.join(dir, 'lifeboat.yaml'), 'db', 'dump', 'n'], s3env);
    expect(dump.stderr).toBe('');
    expect(dump.code).toBe(0);
    const restore = await runCli(['--config', path.join(dir, 'lifeboat.yaml'), 'db', 'restore', 'n', '--json'], s3env);
    expect(restore.code).toBe(0);
    const res = JSON.parse(restore.stdout) as { target: string; replaced: boolean };
    expect(res.replaced).toBe(false);
    expect(pgFingerprint(pg, res.target)).toEqual(before);
    for (const o of [dump.stdout, dump.stderr, restore.stdout, restore.stderr]) expect(o).not.toContain(NASTY);
  });

  it('run_as: the tools run as the server\'s OS user, with peer authentication over the socket and no password', async () => {
    const osUser = process.env.PG_TEST_OS_USER!;
    const socket = process.env.PG_TEST_SOCKET_DIR!;
    if (osUser !== 'postgres') psql(pg, 'postgres', `DO $$ BEGIN CREATE ROLE "${osUser}" SUPERUSER LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$`);
    const db = uniqueName('peer');
    pgCreate(pg, db, 50);
    const before = pgFingerprint(pg, db);
    writeConfig(`databases:\n  peer:\n    type: postgres\n    host: ${socket}\n    port: ${pg.port}\n    user: ${osUser}\n    run_as: ${osUser}\n    databases: [${db}]\n`);
    const dump = await cli(['db', 'dump', 'peer']);
    expect(dump.stderr).toBe('');
    expect(dump.code).toBe(0);
    const restore = await cli(['db', 'restore', 'peer', '--json']);
    expect(restore.stderr).toBe('');
    expect(restore.code).toBe(0);
    expect(pgFingerprint(pg, (JSON.parse(restore.stdout) as { target: string }).target)).toEqual(before);
    // without run_as, root is refused by peer authentication: the reason is the server's
    writeConfig(`databases:\n  peer:\n    type: postgres\n    host: ${socket}\n    port: ${pg.port}\n    user: ${osUser}\n    databases: [${db}]\n`);
    const refused = await cli(['db', 'dump', 'peer']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('Peer authentication failed');
  });

  it('says which package to install when pg_dump is missing', async () => {
    writeConfig(`databases:\n${pgEntry('main', '[postgres]')}`);
    const empty = path.join(dir, 'empty-bin');
    fs.mkdirSync(empty, { recursive: true });
    const r = await cli(['db', 'dump', 'main'], { PATH: empty });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('pg_dump not found in PATH: install the Debian package postgresql-client');
  });
});

describe('MariaDB', () => {
  it('dumps a database and restores it, with routines, triggers, events and views, the same rows and checksums', async () => {
    const db = uniqueName('shop');
    myCreate(my, db);
    const before = myFingerprint(my, db);
    writeConfig(`databases:\n${myEntry('maria', `[${db}]`)}`);
    const dump = await cli(['db', 'dump', 'maria', '--json']);
    expect(dump.code).toBe(0);
    const [res] = JSON.parse(dump.stdout) as DumpJson[];
    expect(res).toMatchObject({ database: db, path: `/db/maria/${db}.sql` });
    const snap = (await snapshots()).find((s) => s.id === res!.snapshot_id)!;
    expect(snap.source).toMatchObject({ type: 'mysql', name: 'maria', database: db, tool: 'mariadb-dump' });
    expect(snap.tags).toEqual(['db', 'db:maria']);

    mariadb(my, 'DELETE FROM audit; DROP VIEW big_orders; DROP PROCEDURE order_count; UPDATE customers SET name = \'x\' WHERE id < 100', db);
    expect(myFingerprint(my, db)).not.toEqual(before);

    const r1 = await cli(['db', 'restore', 'maria', '--database', db]);
    expect(r1.code).toBe(0);
    const restored = new RegExp(`${db}_restored_\\d{14}`).exec(r1.stdout)?.[0];
    expect(restored, r1.stdout).toBeDefined();
    expect(myFingerprint(my, restored!)).toEqual(before);

    const r2 = await cli(['db', 'restore', 'maria', '--into', restored!]);
    expect(r2.code).toBe(1);
    expect(r2.stderr).toContain('already exists');

    const r3 = await cli(['db', 'restore', 'maria', '--force']);
    expect(r3.code).toBe(0);
    expect(myFingerprint(my, db)).toEqual(before);
    tmpDirEmpty();
    expectNoSecrets();
  });

  it('databases: all skips information_schema, performance_schema and sys', async () => {
    writeConfig(`databases:\n${myEntry('allmaria', 'all')}`);
    const dump = await cli(['db', 'dump', 'allmaria', '--json']);
    expect(dump.code).toBe(0);
    const got = (JSON.parse(dump.stdout) as DumpJson[]).map((r) => r.database).sort();
    const want = myDatabases(my).filter((d) => !['information_schema', 'performance_schema', 'sys'].includes(d)).sort();
    expect(got).toEqual(want);
    expect(got).toContain('mysql');
  });

  it('wrong password and missing database fail without a snapshot; mariadb-dump gets the password in a private option file, not argv', async () => {
    const db = uniqueName('lockd');
    myCreate(my, db, 50);
    const before = (await snapshots()).length;
    writeConfig(`databases:\n${myEntry('bad', `[${db}]`).replace('LB_TEST_MY_PW', 'LB_TEST_WRONG')}${myEntry('missing', '[no_such_db]')}${myEntry('locked', `[${db}]`)}`);
    const wrong = await cli(['db', 'dump', 'bad'], { LB_TEST_WRONG: 'nope-nope' });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/Access denied for user/);
    const missing = await cli(['db', 'dump', 'missing']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/Unknown database 'no_such_db'/);

    const locker = holdLock(['mariadb', '--no-defaults', '-h', my.host, '-P', String(my.port), '-u', my.user, db], 'LOCK TABLES orders WRITE; SELECT SLEEP(120);', { ...process.env, MYSQL_PWD: my.password });
    try {
      await new Promise((r) => setTimeout(r, 500));
      const run = cli(['db', 'dump', 'locked']);
      const proc = await waitForProcess((a) => a[0]!.endsWith('mariadb-dump') && a.includes(db));
      expect(proc.argv.join(' ')).not.toContain(my.password);
      expect(proc.environ.some((e) => e.startsWith('MYSQL_PWD='))).toBe(false);
      const optFile = proc.argv[1]!.replace('--defaults-extra-file=', '');
      expect(fs.statSync(optFile).mode & 0o777).toBe(0o600);
      expect(fs.readFileSync(optFile, 'utf8')).toContain(my.password);
      process.kill(proc.pid, 'SIGTERM');
      const r = await run;
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`error: locked/${db}: command mariadb-dump was killed by SIGTERM`);
      expect(fs.existsSync(optFile)).toBe(false);
    } finally {
      locker.kill('SIGKILL');
    }
    expect((await snapshots()).length).toBe(before);
    tmpDirEmpty();
    expectNoSecrets();
  });

  it('a password with : \\ " \' $ # ; and spaces reaches mariadb-dump intact', async () => {
    const user = uniqueName('nasty');
    const db = uniqueName('pwdb');
    mariadb(my, `CREATE USER '${user}'@'%' IDENTIFIED BY '${NASTY.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'; GRANT ALL ON *.* TO '${user}'@'%'`);
    myCreate(my, db, 50);
    const before = myFingerprint(my, db);
    writeConfig(`databases:\n  n:\n    type: mysql\n    host: ${my.host}\n    port: ${my.port}\n    user: ${user}\n    password_env: LB_NASTY\n    databases: [${db}]\n`);
    const dump = await cli(['db', 'dump', 'n'], { LB_NASTY: NASTY });
    expect(dump.stderr).toBe('');
    expect(dump.code).toBe(0);
    const restore = await cli(['db', 'restore', 'n', '--into', `${db}_copy`], { LB_NASTY: NASTY });
    expect(restore.code).toBe(0);
    expect(myFingerprint(my, `${db}_copy`)).toEqual(before);
    for (const o of outputs) expect(o).not.toContain(NASTY);
  });

  it('socket: root through unix_socket authentication (Debian\'s default), no password anywhere', async () => {
    const db = uniqueName('sock');
    myCreate(my, db, 50);
    const before = myFingerprint(my, db);
    writeConfig(`databases:\n  local:\n    type: mysql\n    socket: ${process.env.MARIADB_TEST_SOCKET}\n    user: root\n    databases: [${db}]\n`);
    const dump = await cli(['db', 'dump', 'local', '--json']);
    expect(dump.stderr).toBe('');
    expect(dump.code).toBe(0);
    const [res] = JSON.parse(dump.stdout) as DumpJson[];
    const snap = (await snapshots()).find((x) => x.id === res!.snapshot_id)!;
    expect(snap.source).toMatchObject({ type: 'mysql', socket: process.env.MARIADB_TEST_SOCKET, user: 'root' });
    const restore = await cli(['db', 'restore', 'local', '--json']);
    expect(restore.code).toBe(0);
    expect(myFingerprint(my, (JSON.parse(restore.stdout) as { target: string }).target)).toEqual(before);
  });

  it('says which package to install when mariadb-dump is missing', async () => {
    writeConfig(`databases:\n${myEntry('maria', '[x]')}`);
    const r = await cli(['db', 'dump', 'maria'], { PATH: '/nonexistent' });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('mariadb-dump or mysqldump not found in PATH: install the Debian package mariadb-client');
  });
});
