/**
 * Issue 9, the crash matrix for the agent: `lifeboat agent` runs a file backup and a PostgreSQL
 * dump at once, and at a seeded random moment the agent AND its job children (lifeboat backup,
 * lifeboat db dump, pg_dump) are killed with SIGKILL — the whole process group, as systemd's
 * KillMode=control-group (or the cgroup teardown after a crash under KillMode=mixed) does. Then the
 * agent is started again. Every time:
 *   - the runs cut short are recorded "interrupted" in the state database and redone at start;
 *   - locks left by the dead processes (same host, dead pid) do not block: an exclusive prune run
 *     between the crash and the restart succeeds, the redone runs succeed;
 *   - `check --read-data` is clean;
 * and at the end every completed snapshot restores bit-exact (files) or holds exactly the
 * reference dump (PostgreSQL).
 *
 * A second case kills only the agent (no service manager to clean up): its backup child goes on
 * as an orphan while the restarted agent redoes the run; whatever the orphan managed, the
 * repository checks clean and every snapshot restores.
 *
 * LIFEBOAT_CRASH_POINTS (default 10) scales the number of kills: ceil(points × 0.4), so 4 in CI and
 * 20 for `npm run test:crash -- --points 50`; LIFEBOAT_CRASH_SEED picks the moments.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CLI, cliStdoutBytes, runCli } from '../helpers/cli.js';
import { makeTempDir } from '../helpers/storage-backends.js';
import { expectRestoresTo, treeState, type TreeState } from '../helpers/tree-state.js';
import { localPacks, mulberry32, sqlText } from '../helpers/repo.js';
import { pgCreate, pgDumpDigest, pgServer, uniqueName } from '../sources/db-fixtures.js';
import { cleanEnv, setupRepo, status, waitFor } from '../agent/harness.js';
import { StateDb, type RunRecord } from '../../src/agent/state-db.js';

const POINTS = Math.max(2, Math.ceil(Number(process.env.LIFEBOAT_CRASH_POINTS ?? 10) * 0.4));
const SEED = Number(process.env.LIFEBOAT_CRASH_SEED ?? 4242);
const JOBS = ['files', 'db:pg'] as const;

interface Agent {
  pid: number;
  log: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const started: Agent[] = [];
afterEach(() => {
  for (const a of started.splice(0)) killGroup(a.pid);
});

/** The agent in a process group of its own (as systemd gives a service its own cgroup). */
function startAgent(config: string): Agent {
  const child = spawn(process.execPath, [CLI, '--config', config, 'agent'], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const a = { pid: child.pid!, log: () => out, exited };
  started.push(a);
  return a;
}

function procStat(pid: number): { ppid: number; state: string } | null {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { state: rest[0]!, ppid: Number(rest[1]) };
  } catch {
    return null;
  }
}

function cmdline(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return '';
  }
}

/** Every live descendant of pid (children, grandchildren, ...). */
function descendants(root: number): number[] {
  const parent = new Map<number, number>();
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const st = procStat(Number(e));
    if (st && st.state !== 'Z') parent.set(Number(e), st.ppid);
  }
  const out: number[] = [];
  const frontier = [root];
  while (frontier.length) {
    const p = frontier.pop()!;
    for (const [c, pp] of parent) if (pp === p) (out.push(c), frontier.push(c));
  }
  return out;
}

function alive(pid: number): boolean {
  const st = procStat(pid);
  return st !== null && st.state !== 'Z';
}

function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

function grow(src: string, tag: string): void {
  fs.mkdirSync(path.join(src, tag), { recursive: true });
  fs.writeFileSync(path.join(src, tag, 'r.bin'), randomBytes(6 * 1024 * 1024));
  fs.writeFileSync(path.join(src, tag, 'd.sql'), sqlText(2 * 1024 * 1024, tag.length));
}

function runsOf(stateDir: string, job: string): RunRecord[] {
  const db = StateDb.open(stateDir, { readonly: true });
  try {
    return db.runs(job, 500).reverse();
  } finally {
    db.close();
  }
}

async function snapshotsTagged(config: string, tag: string): Promise<string[]> {
  const r = await runCli(['--config', config, 'snapshots', '--json', '--tag', tag]);
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as Array<{ id: string }>).map((s) => s.id);
}

async function dumpHash(config: string, id: string, file: string): Promise<string> {
  return pgDumpDigest(await cliStdoutBytes(['--config', config, 'dump', id, file], cleanEnv()));
}

/** Starts the agent, waits until its control socket answers. */
async function up(config: string): Promise<Agent> {
  const a = startAgent(config);
  await waitFor('the agent', () => status(config).then((s) => (s.agent.running ? s : undefined)).catch(() => undefined), 60_000);
  return a;
}

async function runNow(config: string, job: string): Promise<void> {
  const r = await runCli(['--config', config, 'run', job]);
  expect(r.code, r.stderr).toBe(0);
}

describe(`agent crash matrix: ${POINTS} seeded kill -9 points of the agent and its jobs (seed ${SEED})`, () => {
  it('the agent and its job processes killed mid-job, then restarted: the cut runs are redone, stale locks do not block, the repository checks clean, every snapshot restores', async () => {
    const random = mulberry32(SEED + 7);
    const dir = await makeTempDir();
    const head = await setupRepo(dir);
    const src = path.join(dir, 'src');
    const state = path.join(dir, 'state');
    const pg = pgServer();
    const db = uniqueName('agentcrash');
    pgCreate(pg, db, 20_000);
    fs.writeFileSync(path.join(dir, 'pg.pass'), `${pg.password}\n`, { mode: 0o600 });
    const config = path.join(dir, 'lifeboat.yaml');
    fs.writeFileSync(config, `${head}
agent: {state_dir: state, nice: 0, max_concurrent: 2}
metrics: {enabled: false}
backups:
  files:
    paths: [${src}]
databases:
  pg:
    type: postgres
    host: ${pg.host}
    port: ${pg.port}
    user: ${pg.user}
    password_file: pg.pass
    databases: [${db}]
`);
    const dumpFile = `/db/pg/${db}.sql`;
    const fileStates = new Map<string, TreeState>();
    const recordFiles = async () => {
      const st = treeState(src);
      for (const id of await snapshotsTagged(config, 'job:files')) if (!fileStates.has(id)) fileStates.set(id, st);
    };
    const successes = (job: string) => runsOf(state, job).filter((r) => r.result === 'success').length;

    // an uninterrupted round: how long both jobs take, and the reference dump
    grow(src, 'base');
    let agent = await up(config);
    const t0 = Date.now();
    for (const j of JOBS) await runNow(config, j);
    await waitFor('both jobs done', () => (JOBS.every((j) => successes(j) === 1) ? true : undefined), 120_000);
    // each point aims at one job in turn: the kill lands uniformly within that job's uninterrupted run
    const took = Object.fromEntries(JOBS.map((j) => [j, runsOf(state, j)[0]!.durationMs ?? Date.now() - t0]));
    await recordFiles();
    const reference = await dumpHash(config, (await snapshotsTagged(config, 'db:pg'))[0]!, dumpFile);

    let interrupted = 0;
    let staleLocks = 0;
    const outcomes: string[] = [];
    for (let i = 0; i < POINTS; i++) {
      grow(src, `p${i}`);
      const before = Object.fromEntries(JOBS.map((j) => [j, runsOf(state, j).length]));
      for (const j of JOBS) await runNow(config, j);
      // the aimed-at job has started (its process exists, or its run is recorded: a small backup
      // can start and finish between two polls), then a random moment of its run
      const aim = JOBS[i % JOBS.length]!;
      const word = aim === 'files' ? /\bbackup\b/ : /\bdump\b/;
      const started = () => descendants(agent.pid).some((p) => word.test(cmdline(p))) || runsOf(state, aim).length > before[aim]!;
      // polled often, so that the kill's moment is measured from the job's start
      await waitFor(`the ${aim} run`, () => (started() ? true : undefined), 30_000, undefined, 20);
      await new Promise((r) => setTimeout(r, Math.floor(random() * took[aim]!)));
      const family = [agent.pid, ...descendants(agent.pid)];
      const names = family.map((p) => cmdline(p).split(' ').filter((w) => /^(backup|dump|pg_dump)$/.test(w) || w.endsWith('pg_dump')).join(' ')).filter(Boolean);
      killGroup(agent.pid);
      for (const p of family) {
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      expect((await agent.exited).signal).toBe('SIGKILL');
      await waitFor('every process of the agent gone', () => (family.every((p) => !alive(p)) ? true : undefined), 10_000);

      // what the state database says about the runs of this round
      const cut = JOBS.filter((j) => runsOf(state, j).slice(before[j]).some((r) => r.result === 'running'));
      for (const j of JOBS) {
        const mine = runsOf(state, j).slice(before[j]);
        expect(mine.length, `${j}: the run was recorded before the kill`).toBeGreaterThanOrEqual(1);
        for (const r of mine) expect(['running', 'success'], `${j} point ${i}`).toContain(r.result);
      }
      interrupted += cut.length;
      outcomes.push(`point ${i}: killed [${names.join(', ')}]; cut: ${cut.join(', ') || 'none'}`);

      // a lock left by a dead process on this host is stale: an exclusive prune is not blocked
      const locks = await runCli(['--config', config, 'list', 'locks']);
      expect(locks.code, locks.stderr).toBe(0);
      const left = locks.stdout.trim() ? locks.stdout.trim().split('\n').length : 0;
      staleLocks += left;
      if (left > 0) {
        const prune = await runCli(['--config', config, 'prune']);
        expect(prune.code, `prune after the crash: ${prune.stderr}`).toBe(0);
      }

      // restart: the cut runs are marked interrupted and redone
      const succeededBefore = Object.fromEntries(JOBS.map((j) => [j, successes(j)]));
      agent = await up(config);
      for (const j of cut) {
        await waitFor(`${j} redone`, () => (successes(j) > succeededBefore[j]! ? true : undefined), 120_000);
        const mine = runsOf(state, j).slice(before[j]);
        expect(mine[0]!.result, `${j}: the cut run is recorded`).toBe('interrupted');
        expect(mine[0]!.error).toBe('the agent stopped during the run');
        const redo = mine.find((r) => r.result === 'success')!;
        expect(redo.trigger).toBe('catch-up');
      }
      if (cut.length > 0) expect(agent.log()).toMatch(/run\(s\) were cut short when the agent last stopped; they run again now/);
      await recordFiles();
      const check = await runCli(['--config', config, 'check', '--read-data', '--json']);
      expect(check.code, `check after point ${i}: ${check.stdout}${check.stderr}`).toBe(0);
      expect((JSON.parse(check.stdout) as { errors: unknown[] }).errors).toEqual([]);
    }
    process.kill(agent.pid, 'SIGTERM');
    expect((await agent.exited).code).toBe(0);
    expect((await runCli(['--config', config, 'list', 'locks'])).stdout.trim()).toBe('');

    // every completed snapshot: files bit-exact, dumps equal to the reference
    const scratch = path.join(dir, 'restore');
    const env = { LIFEBOAT_CONFIG: config };
    for (const [id, st] of fileStates) await expectRestoresTo(env, id, src, st, scratch);
    const dumps = await snapshotsTagged(config, 'db:pg');
    for (const id of dumps) expect(await dumpHash(config, id, dumpFile), id).toBe(reference);
    // one successful run per job per round (the first plus each point): nothing lost
    for (const j of JOBS) expect(successes(j)).toBe(POINTS + 1);
    console.log(`agent crash matrix (seed ${SEED}, uninterrupted: files ${took.files} ms, db:pg ${took['db:pg']} ms): ${interrupted} runs cut, ${staleLocks} stale locks left; ${fileStates.size} file and ${dumps.length} dump snapshots verified\n${outcomes.join('\n')}`);
    // the schedule really cut runs (not every draw lands after the end)
    expect(interrupted).toBeGreaterThanOrEqual(Math.ceil(POINTS / 2));
  }, 600_000);

  it('only the agent killed (no service manager): its orphaned backup ends on its own, the restarted agent redoes the run beside it, the repository stays sound', async () => {
    const dir = await makeTempDir();
    const head = await setupRepo(dir);
    const src = path.join(dir, 'src');
    const state = path.join(dir, 'state');
    // incompressible data, enough for several packs
    fs.mkdirSync(src);
    for (let i = 0; i < 10; i++) fs.writeFileSync(path.join(src, `f${i}.bin`), randomBytes(16 << 20));
    const config = path.join(dir, 'lifeboat.yaml');
    fs.writeFileSync(config, `${head}\nagent: {state_dir: state, nice: 0}\nmetrics: {enabled: false}\nbackups:\n  files:\n    paths: [${src}]\n`);
    let agent = await up(config);
    await runNow(config, 'files');
    const isBackup = (p: number) => /\bbackup\b/.test(cmdline(p));
    const child = await waitFor('the backup process', () => descendants(agent.pid).find(isBackup), 30_000);
    // mid-backup: the first pack is written
    await waitFor('a pack', () => (localPacks(path.join(dir, 'repo')).length > 0 ? true : undefined), 60_000);
    process.kill(agent.pid, 'SIGKILL');
    expect((await agent.exited).signal).toBe('SIGKILL');
    const orphanAlive = alive(child);
    agent = await up(config);
    await waitFor('the redone run', () => (runsOf(state, 'files').some((r) => r.result === 'success') ? true : undefined), 120_000);
    await waitFor('the orphan gone', () => (!alive(child) ? true : undefined), 120_000);
    process.kill(agent.pid, 'SIGTERM');
    expect((await agent.exited).code).toBe(0);
    const runs = runsOf(state, 'files');
    expect(runs[0]!.result).toBe('interrupted');
    expect(runs.at(-1)!.result).toBe('success');
    const check = await runCli(['--config', config, 'check', '--read-data', '--json']);
    expect(check.code, check.stdout + check.stderr).toBe(0);
    expect((JSON.parse(check.stdout) as { errors: unknown[] }).errors).toEqual([]);
    // every snapshot there is (the redone run's, and the orphan's if it finished) restores bit-exact
    const ids = await snapshotsTagged(config, 'job:files');
    expect(ids.length).toBeGreaterThanOrEqual(1);
    const st = treeState(src);
    for (const id of ids) await expectRestoresTo({ LIFEBOAT_CONFIG: config }, id, src, st, path.join(dir, 'restore'));
    expect((await runCli(['--config', config, 'list', 'locks'])).stdout.trim()).toBe('');
    console.log(`orphan: alive right after the agent's death: ${orphanAlive}; snapshots afterwards: ${ids.length} (the orphan ${ids.length > 1 ? 'completed its snapshot' : 'ended without one'})`);
  }, 300_000);
});
