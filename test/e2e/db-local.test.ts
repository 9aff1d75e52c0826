/**
 * Dumps that need no database server, through the built CLI: SQLite (online backup API while
 * another process writes), `type: command`, and the config file itself (precedence, errors that
 * name file:line:field).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FAST_KDF, initCliRepo, runCli, type RunResult } from '../helpers/cli.js';
import { makeTempDir } from '../helpers/storage-backends.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

let dir: string;
let env: Record<string, string>;

async function cli(args: string[], extraEnv: Record<string, string> = {}): Promise<RunResult> {
  return runCli(['--config', path.join(dir, 'lifeboat.yaml'), ...args], { ...env, ...extraEnv });
}

async function snapshotCount(): Promise<number> {
  const r = await cli(['snapshots', '--json']);
  expect(r.code).toBe(0);
  return (JSON.parse(r.stdout) as unknown[]).length;
}

beforeAll(async () => {
  dir = await makeTempDir();
  env = await initCliRepo('local', dir, []);
});

/** Another process writing to the database: each transaction adds one row to `a` and one to `b`. */
function startWriter(db: string): Promise<ChildProcess> {
  const script = `
const Database = require(${JSON.stringify(path.join(ROOT, 'node_modules/better-sqlite3'))});
const db = new Database(process.argv[1]);
db.pragma('busy_timeout = 20000');
const ins = db.transaction((i) => {
  db.prepare('INSERT INTO a (id, payload) VALUES (?, randomblob(3000))').run(i);
  db.prepare('INSERT INTO b (id, payload) VALUES (?, randomblob(3000))').run(i);
});
let i = db.prepare('SELECT coalesce(max(id), 0) AS m FROM a').get().m;
process.stdout.write('ready\\n');
for (;;) ins(++i);
`;
  const child = spawn(process.execPath, ['-e', script, db], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.stdout!.once('data', () => resolve(child));
    child.once('exit', (code) => reject(new Error(`writer exited with ${code}`)));
  });
}

describe.each(['wal', 'delete'] as const)('SQLite (journal_mode=%s)', (mode) => {
  let writer: ChildProcess | undefined;
  afterEach(() => {
    writer?.kill('SIGKILL');
    writer = undefined;
  });

  it('backs up a consistent copy while another process writes, and restores it to a new file and over the original', async () => {
    const data = path.join(dir, `sqlite-${mode}`);
    fs.mkdirSync(data);
    const file = path.join(data, 'app.db');
    const db = new Database(file);
    db.pragma(`journal_mode = ${mode}`);
    db.exec('CREATE TABLE a (id INTEGER PRIMARY KEY, payload BLOB); CREATE TABLE b (id INTEGER PRIMARY KEY, payload BLOB)');
    const fill = db.transaction(() => {
      for (let i = 1; i <= 3000; i++) {
        db.prepare('INSERT INTO a VALUES (?, randomblob(3000))').run(i);
        db.prepare('INSERT INTO b VALUES (?, randomblob(3000))').run(i);
      }
    });
    fill();
    db.close();
    fs.writeFileSync(path.join(dir, 'lifeboat.yaml'), `databases:\n  lite:\n    type: sqlite\n    path: ${file}\n`);

    writer = await startWriter(file);
    await new Promise((r) => setTimeout(r, 300));
    const dump = await cli(['db', 'dump', 'lite', '--json']);
    expect(dump.stderr).toBe('');
    expect(dump.code).toBe(0);
    const [res] = JSON.parse(dump.stdout) as Array<{ database: string; path: string; snapshot_id: string }>;
    expect(res).toMatchObject({ database: 'app.db', path: '/db/lite/app.db' });
    // the temporary copy is gone
    for (const repoId of fs.readdirSync(path.join(dir, 'cache'))) {
      const t = path.join(dir, 'cache', repoId, 'tmp');
      if (fs.existsSync(t)) expect(fs.readdirSync(t)).toEqual([]);
    }
    writer.kill('SIGKILL');
    writer = undefined;
    // killed mid-transaction, the writer may leave a hot journal: the next dump rolls it back and works
    const again = await cli(['db', 'dump', 'lite']);
    expect(again.stderr).toBe('');
    expect(again.code).toBe(0);

    const r1 = await cli(['db', 'restore', 'lite', '--snapshot', res!.snapshot_id]);
    expect(r1.stderr).toBe('');
    expect(r1.code).toBe(0);
    const restored = /into (\S+app_restored_\d{14}\.db)/.exec(r1.stdout)?.[1];
    expect(restored, r1.stdout).toBeDefined();
    const copy = new Database(restored!, { readonly: true });
    expect(copy.pragma('integrity_check', { simple: true })).toBe('ok');
    const a = copy.prepare('SELECT count(*) AS n, max(id) AS m FROM a').get() as { n: number; m: number };
    const b = copy.prepare('SELECT count(*) AS n, max(id) AS m FROM b').get() as { n: number; m: number };
    copy.close();
    expect(a.n).toBeGreaterThan(3000); // rows the writer added before the backup
    expect(b).toEqual(a); // every transaction whole: a consistent copy
    const live = new Database(file); // not read-only: the killed writer may have left a hot journal to roll back
    expect((live.prepare('SELECT count(*) AS n FROM a').get() as { n: number }).n).toBeGreaterThan(a.n); // and it kept writing
    live.close();

    // over the original only with --force
    const r2 = await cli(['db', 'restore', 'lite', '--into', file]);
    expect(r2.code).toBe(1);
    expect(r2.stderr).toContain('already exists');
    const r3 = await cli(['db', 'restore', 'lite', '--force', '--snapshot', res!.snapshot_id.slice(0, 8)]);
    expect(r3.code).toBe(0);
    const orig = new Database(file);
    expect(orig.pragma('integrity_check', { simple: true })).toBe('ok');
    expect((orig.prepare('SELECT count(*) AS n FROM a').get() as { n: number }).n).toBe(a.n);
    orig.close();
  });
});

describe('command', () => {
  it('backs up a command\'s stdout and restores it through restore_command (only with --force)', async () => {
    const out = path.join(dir, 'restored.txt');
    fs.writeFileSync(
      path.join(dir, 'lifeboat.yaml'),
      `databases:
  ldap:
    type: command
    command: [sh, -c, 'for i in 1 2 3; do echo "dn: uid=user$i"; done; echo "a warning" >&2']
    filename: ldap.ldif
    restore_command: [sh, -c, 'cat > "$OUT"']
    env: {OUT: ${out}}
`,
    );
    const dump = await cli(['db', 'dump', 'ldap']);
    expect(dump.code).toBe(0);
    expect(dump.stderr).toBe('a warning\n');
    expect(dump.stdout).toMatch(/ldap\/ldap\.ldif: snapshot [0-9a-f]{8} saved/);
    const file = await cli(['dump', 'latest', '/db/ldap/ldap.ldif']);
    expect(file.stdout).toBe('dn: uid=user1\ndn: uid=user2\ndn: uid=user3\n');
    const snaps = JSON.parse((await cli(['snapshots', '--json', '--tag', 'db:ldap'])).stdout) as Array<{ source: Record<string, unknown> }>;
    expect(snaps[0]!.source).toMatchObject({ type: 'command', name: 'ldap', database: 'ldap.ldif' });

    const noForce = await cli(['db', 'restore', 'ldap']);
    expect(noForce.code).toBe(1);
    expect(noForce.stderr).toContain('add --force');
    const r = await cli(['db', 'restore', 'ldap', '--force']);
    expect(r.code).toBe(0);
    expect(fs.readFileSync(out, 'utf8')).toBe(file.stdout);
  });

  it('a command that fails, is killed mid-way or times out fails the job with its stderr tail and saves no snapshot', async () => {
    fs.writeFileSync(
      path.join(dir, 'lifeboat.yaml'),
      `databases:
  exits:
    type: command
    command: [sh, -c, 'echo partial; echo "boom: disk full" >&2; exit 3']
    filename: x.sql
  killed:
    type: command
    command: [sh, -c, 'head -c 3000000 /dev/urandom; echo dying >&2; kill -KILL $$']
    filename: x.sql
  slow:
    type: command
    command: [sleep, '30']
    filename: x.sql
    timeout: 1s
`,
    );
    const before = await snapshotCount();
    const e = await cli(['db', 'dump', 'exits']);
    expect(e.code).toBe(1);
    expect(e.stderr).toContain('error: exits/x.sql: command sh exited with status 3: boom: disk full');
    const k = await cli(['db', 'dump', 'killed']);
    expect(k.code).toBe(1);
    expect(k.stderr).toContain('error: killed/x.sql: command sh was killed by SIGKILL: dying');
    const started = Date.now();
    const s = await cli(['db', 'dump', 'slow']);
    expect(s.code).toBe(1);
    expect(s.stderr).toContain('error: slow/x.sql: command sleep timed out after 1 s');
    expect(Date.now() - started).toBeLessThan(15_000);
    // all three at once: each fails, the summary names them
    const all = await cli(['db', 'dump']);
    expect(all.code).toBe(1);
    expect(all.stderr).toContain('3 of 3 database dumps failed (exits/x.sql, killed/x.sql, slow/x.sql)');
    expect(await snapshotCount()).toBe(before);
  });
});

describe('config file', () => {
  it('errors name the file, the line and the field', async () => {
    const file = path.join(dir, 'bad.yaml');
    fs.writeFileSync(file, 'databases:\n  app:\n    type: postgres\n    host: 127.0.0.1\n    port: "5432x"\n    databases: [app]\n');
    const r = await runCli(['--config', file, 'db', 'list']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`lifeboat: ${file}:5: databases.app.port: expected a number\n`);

    fs.writeFileSync(file, 'repository: /x\nretension: {}\n');
    expect((await runCli(['--config', file, 'snapshots'])).stderr).toBe(`lifeboat: ${file}:2: retension: unknown key (did you mean retention?)\n`);

    fs.writeFileSync(file, 'databases:\n  app:\n    type: mysql\n    password: hunter2\n');
    const pw = await runCli(['db', 'list'], { LIFEBOAT_CONFIG: file });
    expect(pw.stderr).toBe(`lifeboat: ${file}:4: databases.app.password: passwords are not written in the config file: use password_file or password_env\n`);

    fs.writeFileSync(file, 'databases:\n  app: [1, 2\n');
    expect((await runCli(['--config', file, 'db', 'list'])).stderr).toMatch(new RegExp(`^lifeboat: ${file}:\\d+: `));

    const missing = await runCli(['--config', path.join(dir, 'nope.yaml'), 'db', 'list']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe(`lifeboat: cannot read config file ${path.join(dir, 'nope.yaml')}: ENOENT\n`);
  });

  it('repository, password_file and cache_dir come from the config unless the environment or flags say otherwise', async () => {
    const cdir = path.join(dir, 'cfg');
    fs.mkdirSync(cdir);
    fs.writeFileSync(path.join(cdir, 'pw'), 'config-password\n', { mode: 0o600 });
    const file = path.join(cdir, 'lifeboat.yaml');
    fs.writeFileSync(file, 'repository: repo\npassword_file: pw\ncache_dir: cache\n');
    const init = await runCli(['--config', file, 'init', ...FAST_KDF]);
    expect(init.code).toBe(0);
    expect(fs.existsSync(path.join(cdir, 'repo', 'config'))).toBe(true);
    expect(fs.existsSync(path.join(cdir, 'cache'))).toBe(true);
    expect((await runCli(['snapshots'], { LIFEBOAT_CONFIG: file })).code).toBe(0);
    // env beats config; flags beat env
    const viaEnv = await runCli(['--config', file, 'snapshots'], { LIFEBOAT_REPOSITORY: path.join(dir, 'nothing-here') });
    expect(viaEnv.code).toBe(10);
    const viaFlag = await runCli(['--config', file, '--repo', path.join(cdir, 'repo'), 'snapshots'], { LIFEBOAT_REPOSITORY: path.join(dir, 'nothing-here') });
    expect(viaFlag.code).toBe(0);
    const wrongPw = await runCli(['--config', file, 'snapshots'], { LIFEBOAT_PASSWORD: 'other' });
    expect(wrongPw.code).toBe(12);
  });

  it('db list shows the entries, never their secrets', async () => {
    fs.writeFileSync(path.join(dir, 'lifeboat.yaml'), 'databases:\n  app:\n    type: postgres\n    host: db.internal\n    password_env: APP_PW\n    databases: [app, billing]\n  lite:\n    type: sqlite\n    path: /var/lib/app/app.db\n    timeout: 10m\n');
    const r = await cli(['db', 'list', '--json'], { APP_PW: 'sekrit' });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([
      { name: 'app', type: 'postgres', target: 'postgres@db.internal:5432', databases: ['app', 'billing'], timeout_seconds: 7200, tags: [], password: 'env' },
      { name: 'lite', type: 'sqlite', target: '/var/lib/app/app.db', databases: ['app.db'], timeout_seconds: 600, tags: [], password: 'none' },
    ]);
    const text = await cli(['db', 'list']);
    expect(text.stdout).toContain('app   postgres');
    expect(text.stdout).not.toContain('sekrit');
  });
});
