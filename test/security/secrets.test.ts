/**
 * Issue 9, secrets: passwords and keys never appear where other users or logs can see them.
 *
 * The agent backs up files and dumps PostgreSQL and MariaDB (each with a distinctive password of its
 * own) into an S3 repository with a distinctive repository password, and the CLI does the same by
 * hand. While they run, every process descending from them (lifeboat itself, the job children,
 * pg_dump, mariadb-dump) is sampled from /proc again and again:
 *   - no command line (what `ps` shows every user) holds any secret;
 *   - the dump tools' environments hold none either (no PGPASSWORD / MYSQL_PWD, nor lifeboat's own
 *     repository password or S3 secret key); the password reaches them in a 0600 file in a 0700
 *     directory (PGPASSFILE, --defaults-extra-file) that is gone afterwards;
 *   - lifeboat's own environment holds only what the user put there (AWS_SECRET_ACCESS_KEY).
 * Afterwards no secret is in the agent's log, any command's stderr or --json output, the snapshots
 * (`cat snapshot`), the state database or the cache; error messages for wrong database, repository
 * and S3 secrets do not echo them; and what lifeboat creates (cache, state, a local repository) is
 * 0700 directories and 0600 files.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { CLI, FAST_KDF, runCli, spawnCli, type RunResult } from '../helpers/cli.js';
import { deleteBucket, makeTempDir, randomBucketName, s3Endpoint } from '../helpers/storage-backends.js';
import { mariadb, mariadbServer, myCreate, pgCreate, pgServer, psql, uniqueName } from '../sources/db-fixtures.js';
import { cleanEnv, status, waitFor } from '../agent/harness.js';

const buckets: string[] = [];
afterAll(async () => {
  await Promise.allSettled(buckets.map((b) => deleteBucket(s3Endpoint(), b)));
});

interface Seen {
  pid: number;
  comm: string;
  argv: string[];
  environ: string[];
}

/** Samples /proc for every descendant of the given roots until stopped. */
class Sampler {
  readonly seen = new Map<string, Seen>(); // pid:starttime → last sample
  readonly optionFiles = new Map<string, { mode: number; dirMode: number }>();
  private running = true;
  private readonly done: Promise<void>;

  constructor(private readonly roots: () => number[]) {
    this.done = this.loop();
  }

  private async loop(): Promise<void> {
    while (this.running) {
      this.sample();
      await new Promise((r) => setTimeout(r, 15));
    }
  }

  private sample(): void {
    const parent = new Map<number, number>();
    const start = new Map<number, string>();
    for (const e of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(e)) continue;
      try {
        const s = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
        const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
        parent.set(Number(e), Number(f[1]));
        start.set(Number(e), f[19]!);
      } catch {
        // gone
      }
    }
    const mine = new Set(this.roots().filter((p) => parent.has(p)));
    let grew = true;
    while (grew) {
      grew = false;
      for (const [p, pp] of parent) if (!mine.has(p) && mine.has(pp)) (mine.add(p), (grew = true));
    }
    for (const pid of mine) {
      try {
        const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
        const environ = fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').filter(Boolean);
        const comm = fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
        if (argv.length === 0) continue; // a zombie
        this.seen.set(`${pid}:${start.get(pid)}`, { pid, comm, argv, environ });
        const files = [
          ...environ.filter((v) => v.startsWith('PGPASSFILE=')).map((v) => v.slice('PGPASSFILE='.length)),
          ...argv.filter((a) => a.startsWith('--defaults-extra-file=')).map((a) => a.slice('--defaults-extra-file='.length)),
        ];
        for (const f of files) {
          if (this.optionFiles.has(f)) continue;
          try {
            this.optionFiles.set(f, { mode: fs.statSync(f).mode & 0o777, dirMode: fs.statSync(path.dirname(f)).mode & 0o777 });
          } catch {
            // already removed
          }
        }
      } catch {
        // gone meanwhile
      }
    }
  }

  async stop(): Promise<Seen[]> {
    this.running = false;
    await this.done;
    return [...this.seen.values()];
  }
}

const spawned: number[] = [];
afterEach(() => {
  for (const p of spawned.splice(0)) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // gone
    }
  }
});

/** Runs the CLI, telling `onPid` its pid (so the sampler follows it). */
function cli(args: string[], env: Record<string, string>, onPid: (pid: number) => void): Promise<RunResult> {
  return spawnCli(args, { env: cleanEnv(env), onPid });
}

/** Every file under root: [path, mode, isDirectory]. */
function modes(root: string): Array<{ file: string; mode: number; dir: boolean }> {
  const out: Array<{ file: string; mode: number; dir: boolean }> = [];
  const walk = (p: string) => {
    const st = fs.lstatSync(p);
    if (st.isDirectory()) {
      out.push({ file: p, mode: st.mode & 0o777, dir: true });
      for (const e of fs.readdirSync(p)) walk(path.join(p, e));
    } else if (st.isFile()) out.push({ file: p, mode: st.mode & 0o777, dir: false });
  };
  walk(root);
  return out;
}

function allBytes(root: string): Array<{ file: string; bytes: Buffer }> {
  return modes(root).filter((m) => !m.dir).map((m) => ({ file: m.file, bytes: fs.readFileSync(m.file) }));
}

describe('secrets never leak', () => {
  it('not in ps, the dump tools\' environment, logs, JSON output, snapshots, state or cache; 0600/0700 files', async () => {
    const tag = randomBytes(6).toString('hex');
    const REPO_PW = `RepoPw-${tag}-x`;
    const PG_PW = `PgPw-${tag}-y`;
    const MY_PW = `MyPw-${tag}-z`;
    const S3_SECRET = process.env.AWS_SECRET_ACCESS_KEY!;
    expect(S3_SECRET.length).toBeGreaterThan(0);
    const secrets: Record<string, string> = { repository: REPO_PW, postgres: PG_PW, mariadb: MY_PW, s3: S3_SECRET };
    const leaks = (text: string | Buffer): string[] =>
      Object.entries(secrets).filter(([, v]) => (typeof text === 'string' ? text.includes(v) : text.includes(Buffer.from(v)))).map(([k]) => k);

    const dir = await makeTempDir();
    const src = path.join(dir, 'src');
    fs.mkdirSync(src);
    for (let i = 0; i < 4; i++) fs.writeFileSync(path.join(src, `r${i}.bin`), randomBytes(4 << 20));

    // a PostgreSQL role and a MariaDB user of our own, with the distinctive passwords
    const pg = pgServer();
    const pgRole = uniqueName('lbsecret');
    const pgDb = uniqueName('secrets');
    pgCreate(pg, pgDb, 20_000);
    psql(pg, 'postgres', `CREATE ROLE ${pgRole} LOGIN SUPERUSER PASSWORD '${PG_PW}'`);
    const my = mariadbServer();
    const myUser = uniqueName('lbsecret');
    const myDb = uniqueName('secrets');
    myCreate(my, myDb, 20_000);
    mariadb(my, `CREATE USER '${myUser}'@'%' IDENTIFIED BY '${MY_PW}'; GRANT ALL PRIVILEGES ON *.* TO '${myUser}'@'%'; FLUSH PRIVILEGES;`);

    fs.writeFileSync(path.join(dir, 'pw'), `${REPO_PW}\n`, { mode: 0o600 });
    fs.writeFileSync(path.join(dir, 'pg.pass'), `${PG_PW}\n`, { mode: 0o600 });
    fs.writeFileSync(path.join(dir, 'my.pass'), `${MY_PW}\n`, { mode: 0o600 });
    const bucket = randomBucketName();
    buckets.push(bucket);
    const repo = `s3:${s3Endpoint()}/${bucket}`;
    const config = path.join(dir, 'lifeboat.yaml');
    const dbs = `databases:
  pg:
    type: postgres
    host: ${pg.host}
    port: ${pg.port}
    user: ${pgRole}
    password_file: pg.pass
    databases: [${pgDb}]
  my:
    type: mysql
    host: ${my.host}
    port: ${my.port}
    user: ${myUser}
    password_file: my.pass
    databases: [${myDb}]
`;
    fs.writeFileSync(config, `repository: ${repo}
password_file: pw
cache_dir: cache
agent: {state_dir: state, max_concurrent: 3, nice: 0}
metrics: {enabled: false}
backups:
  files:
    paths: [${src}]
${dbs}`);
    const env = { LIFEBOAT_CONFIG: config };
    const noPid = () => undefined;
    const init = await cli(['init', ...FAST_KDF], env, noPid);
    expect(init.code, init.stderr).toBe(0);

    // --- the agent runs all three jobs at once, then the CLI runs them by hand; /proc is sampled
    const roots: number[] = [];
    const sampler = new Sampler(() => roots);
    const agent = spawn(process.execPath, [CLI, '--config', config, 'agent'], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    spawned.push(agent.pid!);
    roots.push(agent.pid!);
    let agentLog = '';
    agent.stdout.on('data', (d: Buffer) => (agentLog += d.toString()));
    agent.stderr.on('data', (d: Buffer) => (agentLog += d.toString()));
    const agentExit = new Promise<number | null>((resolve) => agent.on('exit', (code) => resolve(code)));
    await waitFor('the agent', () => status(config).then((s) => (s.agent.running ? s : undefined)).catch(() => undefined), 60_000);
    for (const j of ['files', 'db:pg', 'db:my']) expect((await runCli(['--config', config, 'run', j])).code).toBe(0);
    await waitFor('three successful jobs', async () => {
      const s = await status(config).catch(() => undefined);
      return s && ['files', 'db:pg', 'db:my'].every((j) => s.jobs.find((x) => x.name === j)?.last_run?.result === 'success') ? s : undefined;
    }, 120_000);
    agent.kill('SIGTERM');
    expect(await agentExit).toBe(0);

    const outputs: Array<[string, RunResult]> = [];
    const track = (p: number) => roots.push(p);
    for (const args of [['backup', '--json', src], ['db', 'dump', '--json'], ['db', 'dump', 'pg', '-v'], ['snapshots', '--json'], ['status', '--json'], ['check', '--json']]) {
      const r = await cli(args, env, track);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
      outputs.push([args.join(' '), r]);
    }
    const seen = await sampler.stop();
    const byComm = new Map<string, number>();
    for (const s of seen) byComm.set(s.comm, (byComm.get(s.comm) ?? 0) + 1);
    console.log(`secrets sweep: ${seen.length} processes sampled (${[...byComm].map(([c, n]) => `${c} ×${n}`).join(', ')}); ${sampler.optionFiles.size} password option files seen`);

    // the processes that matter were seen
    const comms = new Set(seen.map((s) => s.comm));
    expect(comms, [...comms].join(' ')).toContain('pg_dump');
    expect([...comms].some((c) => c === 'mariadb-dump' || c === 'mysqldump'), [...comms].join(' ')).toBe(true);
    expect(seen.some((s) => s.argv.includes('agent'))).toBe(true);
    expect(seen.some((s) => s.comm.startsWith('node') || s.argv[0] === process.execPath ? s.argv.includes('backup') : false)).toBe(true);

    for (const s of seen) {
      // command lines: what every user sees in ps
      expect(leaks(s.argv.join(' ')), `${s.comm} (pid ${s.pid}) command line: ${s.argv.join(' ')}`).toEqual([]);
      const isLifeboat = s.argv[0] === process.execPath;
      const names = s.environ.map((v) => v.split('=')[0]);
      expect(names, `${s.comm}: environment`).not.toContain('PGPASSWORD');
      expect(names, `${s.comm}: environment`).not.toContain('MYSQL_PWD');
      expect(names, `${s.comm}: environment`).not.toContain('LIFEBOAT_PASSWORD');
      if (isLifeboat) {
        // lifeboat's own environment holds what the user gave it (the S3 key), nothing it read from files
        expect(leaks(s.environ.join('\n')).filter((k) => k !== 's3'), `lifeboat pid ${s.pid} environment`).toEqual([]);
      } else {
        // a dump tool (or a hook) gets no secret through its environment
        expect(leaks(s.environ.join('\n')), `${s.comm} (pid ${s.pid}) environment`).toEqual([]);
        expect(names, `${s.comm}: environment`).not.toContain('AWS_SECRET_ACCESS_KEY');
      }
    }
    // the option files handing the passwords to pg_dump and mariadb-dump: 0600 in a 0700 directory, gone now
    expect(sampler.optionFiles.size, 'option files seen').toBeGreaterThanOrEqual(2);
    for (const [f, m] of sampler.optionFiles) {
      expect(m.mode, f).toBe(0o600);
      expect(m.dirMode, path.dirname(f)).toBe(0o700);
      expect(fs.existsSync(f), `${f} removed`).toBe(false);
    }

    // --- logs, output, snapshots, state and cache
    expect(leaks(agentLog), 'the agent log').toEqual([]);
    expect(agentLog).toMatch(/job db:pg: /);
    for (const [what, r] of outputs) expect(leaks(r.stdout + r.stderr), what).toEqual([]);
    const ids = (JSON.parse(outputs.find(([w]) => w === 'snapshots --json')![1].stdout) as Array<{ id: string }>).map((s) => s.id);
    expect(ids.length).toBeGreaterThanOrEqual(6);
    for (const id of ids) {
      const r = await runCli(['cat', 'snapshot', id], env);
      expect(r.code, r.stderr).toBe(0);
      expect(leaks(r.stdout), `cat snapshot ${id}`).toEqual([]);
    }
    for (const { file, bytes } of [...allBytes(path.join(dir, 'state')), ...allBytes(path.join(dir, 'cache'))]) expect(leaks(bytes), file).toEqual([]);

    // --- wrong secrets: the errors name the problem, never the secret (the wrong one or the right one)
    const WRONG = `Wrong-${tag}-w`;
    secrets.wrong = WRONG;
    fs.writeFileSync(path.join(dir, 'pg.pass'), `${WRONG}\n`, { mode: 0o600 });
    fs.writeFileSync(path.join(dir, 'my.pass'), `${WRONG}\n`, { mode: 0o600 });
    for (const db of ['pg', 'my']) {
      const r = await runCli(['--config', config, 'db', 'dump', db, '-v'], {});
      expect(r.code, `db dump ${db} with a wrong password`).not.toBe(0);
      expect(r.stderr).toMatch(/password|Access denied/i);
      expect(leaks(r.stdout + r.stderr), `db dump ${db} with a wrong password: ${r.stderr}`).toEqual([]);
    }
    fs.writeFileSync(path.join(dir, 'wrong.pw'), `${WRONG}\n`, { mode: 0o600 });
    const badRepo = await runCli(['--config', config, '--password-file', path.join(dir, 'wrong.pw'), 'snapshots', '-v'], {});
    expect(badRepo.code).toBe(12);
    expect(leaks(badRepo.stdout + badRepo.stderr), badRepo.stderr).toEqual([]);
    const badS3 = await runCli(['--config', config, 'snapshots', '-v'], { AWS_SECRET_ACCESS_KEY: WRONG });
    expect(badS3.code).not.toBe(0);
    expect(badS3.stderr).toMatch(/access denied|SignatureDoesNotMatch/i);
    expect(leaks(badS3.stdout + badS3.stderr), badS3.stderr).toEqual([]);

    // --- modes: the cache, the agent's state and a local repository are 0700 directories of 0600 files
    const localDir = path.join(dir, 'local');
    const local = { LIFEBOAT_REPOSITORY: path.join(localDir, 'repo'), LIFEBOAT_PASSWORD_FILE: path.join(dir, 'pw'), LIFEBOAT_CACHE_DIR: path.join(localDir, 'cache') };
    expect((await runCli(['init', ...FAST_KDF], local)).code).toBe(0);
    expect((await runCli(['backup', src], local)).code).toBe(0);
    for (const root of [path.join(dir, 'cache'), path.join(dir, 'state'), path.join(localDir, 'repo'), path.join(localDir, 'cache')]) {
      for (const m of modes(root)) expect(m.mode & 0o077, `${m.file} has mode ${m.mode.toString(8)}`).toBe(0);
    }
    expect(modes(path.join(localDir, 'repo')).some((m) => m.file.includes(`${path.sep}keys${path.sep}`) && !m.dir)).toBe(true);
  }, 300_000);
});
