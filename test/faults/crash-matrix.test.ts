/**
 * Issue 9, the crash matrix: kill -9 at seeded random moments during backup, forget, prune and a
 * PostgreSQL dump (LIFEBOAT_CRASH_POINTS per operation, default 10; `npm run test:crash --
 * --points 50` for the long run; LIFEBOAT_CRASH_SEED picks the schedule). After every kill:
 * `check --read-data` is clean and every completed snapshot restores bit-exact (dumps: the
 * dump's bytes equal a reference dump). The moment is a uniform draw over how long the same
 * operation took uninterrupted, so kills land in every phase (start, lock, upload, index,
 * snapshot, deletes).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI, cliStdoutBytes, initCliRepo, runCli } from '../helpers/cli.js';
import { makeTempDir } from '../helpers/storage-backends.js';
import { expectRestoresTo, snapshotIds, treeState, type TreeState } from '../helpers/tree-state.js';
import { mulberry32, sqlText } from '../helpers/repo.js';
import { pgCreate, pgDumpDigest, pgServer, uniqueName } from '../sources/db-fixtures.js';

const POINTS = Number(process.env.LIFEBOAT_CRASH_POINTS ?? 10);
const SEED = Number(process.env.LIFEBOAT_CRASH_SEED ?? 4242);


interface Run {
  code: number | null;
  killed: boolean;
  ms: number;
  stderr: string;
}

/** Runs the CLI; with killAfterMs, SIGKILLs it then (if it is still running). */
function run(args: string[], env: Record<string, string>, killAfterMs?: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    let killed = false;
    const t = killAfterMs === undefined ? null : setTimeout(() => {
      killed = child.kill('SIGKILL');
    }, killAfterMs);
    child.on('error', reject);
    child.on('close', (code) => {
      if (t) clearTimeout(t);
      resolve({ code, killed: killed && code === null, ms: Date.now() - started, stderr });
    });
  });
}

async function checkClean(env: Record<string, string>, context: string): Promise<void> {
  const r = await runCli(['check', '--read-data', '--json'], env);
  const json = JSON.parse(r.stdout) as { errors: unknown[] };
  expect(json.errors, context).toEqual([]);
  expect(r.code, `${context}: ${r.stderr}`).toBe(0);
}

function grow(src: string, tag: string): void {
  fs.mkdirSync(path.join(src, tag), { recursive: true });
  fs.writeFileSync(path.join(src, tag, 'r.bin'), randomBytes(2 * 1024 * 1024));
  fs.writeFileSync(path.join(src, tag, 'd.sql'), sqlText(512 * 1024, tag.length));
}

describe(`crash matrix: ${POINTS} seeded kill -9 points per operation (seed ${SEED})`, () => {
  it('backup, forget and prune: every kill leaves a clean repository; completed snapshots restore bit-exact', async () => {
    const random = mulberry32(SEED);
    const dir = await makeTempDir();
    const src = path.join(dir, 'src');
    const env = await initCliRepo('local', dir, []);
    const states = new Map<string, TreeState>();
    const scratch = path.join(dir, 'restore');
    const record = async () => states.set((await snapshotIds(env)).at(-1)!, treeState(src));

    grow(src, 'base');
    const base = await run(['backup', src], env);
    expect(base.code, base.stderr).toBe(0);
    await record();
    let killed = 0;
    for (let i = 0; i < POINTS; i++) {
      // backup, killed at a random moment of a run as long as the previous one
      grow(src, `b${i}`);
      const before = await snapshotIds(env);
      const probe = await run(['backup', src], env, Math.floor(random() * base.ms * 1.2));
      if (probe.killed) {
        killed++;
        await checkClean(env, `backup killed (point ${i})`);
        // killed before its snapshot was written (or, rarely, just after: then it is complete)
        const now = await snapshotIds(env);
        if (now.length === before.length) {
          const again = await run(['backup', src], env);
          expect(again.code, again.stderr).toBe(0);
        } else {
          expect(now.length).toBe(before.length + 1);
        }
      } else {
        expect(probe.code, probe.stderr).toBe(0);
      }
      await record();
    }
    for (const [id, state] of states) await expectRestoresTo(env, id, src, state, scratch);

    for (let i = 0; i < POINTS; i++) {
      // forget the oldest snapshot, killed at a random moment, then prune, killed likewise
      const victim = [...states.keys()][0]!;
      const f = await run(['forget', victim], env, Math.floor(random() * 1500));
      if (f.killed) killed++;
      else expect(f.code, f.stderr).toBe(0);
      const left = await snapshotIds(env);
      if (!left.includes(victim)) states.delete(victim);
      expect(left.sort()).toEqual([...states.keys()].sort());
      fs.rmSync(path.join(src, `b${i}`), { recursive: true, force: true });
      const p = await run(['prune', '--grace', '0s', '--max-unused', '0%'], env, Math.floor(random() * 4000));
      if (p.killed) killed++;
      else expect(p.code, p.stderr).toBe(0);
      await checkClean(env, `forget/prune killed (point ${i})`);
      for (const [id, state] of states) await expectRestoresTo(env, id, src, state, scratch);
    }
    // the schedule really killed things (not every draw lands after the end)
    expect(killed).toBeGreaterThanOrEqual(Math.ceil(POINTS / 2));
    fs.rmSync(dir, { recursive: true, force: true });
  }, 1_800_000);

  it('a PostgreSQL dump killed at random moments never leaves a snapshot that is not the whole dump', async () => {
    const random = mulberry32(SEED + 1);
    const pg = pgServer();
    const db = uniqueName('crash');
    pgCreate(pg, db, 20_000);
    const dir = await makeTempDir();
    const env = await initCliRepo('local', dir, []);
    fs.writeFileSync(path.join(dir, 'pg.pass'), `${pg.password}\n`, { mode: 0o600 });
    const config = path.join(dir, 'lifeboat.yaml');
    fs.writeFileSync(
      config,
      `databases:\n  app:\n    type: postgres\n    host: ${pg.host}\n    port: ${pg.port}\n    user: ${pg.user}\n    password_file: pg.pass\n    databases: [${db}]\n`,
    );
    const full = await run(['--config', config, 'db', 'dump', 'app'], env);
    expect(full.code, full.stderr).toBe(0);
    const dumpOf = async (id: string) => pgDumpDigest(await cliStdoutBytes(['dump', id, `/db/app/${db}.sql`], { ...process.env, ...env }));
    const reference = await dumpOf((await snapshotIds(env))[0]!);
    let killed = 0;
    for (let i = 0; i < POINTS; i++) {
      const before = await snapshotIds(env);
      const r = await run(['--config', config, 'db', 'dump', 'app'], env, Math.floor(random() * full.ms * 1.2));
      if (r.killed) killed++;
      else expect(r.code, r.stderr).toBe(0);
      const after = await snapshotIds(env);
      // a killed dump saved no snapshot (or, killed just after saving it, a complete one: checked below)
      if (!r.killed) expect(after.length - before.length).toBe(1);
      else expect(after.length - before.length).toBeLessThanOrEqual(1);
      await checkClean(env, `db dump killed (point ${i})`);
    }
    // the database did not change: every snapshot holds exactly the reference dump (a killed dump
    // never left a partial one)
    for (const id of await snapshotIds(env)) expect(await dumpOf(id), id).toBe(reference);
    expect(killed).toBeGreaterThanOrEqual(Math.ceil(POINTS / 3));
    fs.rmSync(dir, { recursive: true, force: true });
  }, 1_800_000);
});
