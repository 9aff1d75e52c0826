/**
 * Issue 5's safety claims through the CLI, on the local backend and the real S3 server:
 * - kill -9 at chosen points of backup and prune (LIFEBOAT_CRASH_AT makes the process SIGKILL
 *   itself exactly there) leaves a repository that checks clean with --read-data, and every
 *   snapshot that completed restores bit-exact;
 * - two backups run into one repository at once, then a prune starts while a third backup runs:
 *   the prune waits for its exclusive lock, every snapshot completes and restores;
 * - a machine with an empty cache restores a file (the cache rebuilds itself).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI, initCliRepo, runCli, cliOk } from '../helpers/cli.js';
import { deleteBucket, makeTempDir, s3Endpoint } from '../helpers/storage-backends.js';
import { expectRestoresTo, snapshotIds, treeState, type TreeState } from '../helpers/tree-state.js';
import { sqlText } from '../helpers/repo.js';

const buckets: string[] = [];
afterAll(async () => {
  await Promise.allSettled(buckets.map((b) => deleteBucket(s3Endpoint(), b)));
});

const ok = cliOk;

async function checkClean(env: Record<string, string>, context: string): Promise<void> {
  const r = await runCli(['check', '--read-data', '--json'], env);
  const json = JSON.parse(r.stdout) as { ok: boolean; errors: unknown[] };
  expect(json.errors, `check after ${context}`).toEqual([]);
  expect(r.code, `check after ${context}: ${r.stderr}`).toBe(0);
}

/** Writes a new directory of ~10 MiB (random files and SQL text) under src. */
function grow(src: string, tag: string): void {
  fs.mkdirSync(path.join(src, tag), { recursive: true });
  for (let i = 0; i < 3; i++) fs.writeFileSync(path.join(src, tag, `r${i}.bin`), randomBytes(3 * 1024 * 1024));
  fs.writeFileSync(path.join(src, tag, 'dump.sql'), sqlText(1024 * 1024, tag.length));
}

describe.each(['local', 's3'] as const)('kill -9 during backup and prune (%s)', (kind) => {
  it('every crash point leaves a repository that checks clean; completed snapshots restore bit-exact', async () => {
    const dir = await makeTempDir();
    const src = path.join(dir, 'src');
    const env = await initCliRepo(kind, dir, buckets);
    const states = new Map<string, TreeState>();
    const scratch = path.join(dir, 'restore');

    grow(src, 'base');
    await ok(['backup', src], env);
    states.set((await snapshotIds(env)).at(-1)!, treeState(src));

    // backup, killed: after its 2nd pack upload, after its index write, just before the snapshot
    for (const point of ['pack-uploaded#2', 'index-written#1', 'before-snapshot']) {
      grow(src, `b-${point.replace(/[#]/g, '')}`);
      const r = await runCli(['backup', src], { ...env, LIFEBOAT_CRASH_AT: point });
      expect(r.code, `backup killed at ${point}`).toBe(-1); // killed by a signal
      expect(await snapshotIds(env), `no snapshot from the backup killed at ${point}`).toEqual([...states.keys()]);
      await checkClean(env, `backup killed at ${point}`);
      // the next backup completes (its dead lock is stale) and is restorable
      await ok(['backup', src], env);
      states.set((await snapshotIds(env)).at(-1)!, treeState(src));
    }
    for (const [id, state] of states) await expectRestoresTo(env, id, src, state, scratch);

    // prune, killed at each step: repacking, new index written, old index deleted, packs deleted.
    // Each round: a directory goes and a new one comes (a backup), and the oldest snapshot is
    // forgotten, so the prune has data to delete and packs to repack.
    let last = 'base';
    for (const [n, point] of ['pack-uploaded#1', 'index-written#1', 'index-written#2', 'index-deleted#1', 'pack-deleted#1'].entries()) {
      fs.rmSync(path.join(src, last), { recursive: true });
      last = `p${n}`;
      grow(src, last);
      await ok(['backup', src], env);
      states.set((await snapshotIds(env)).at(-1)!, treeState(src));
      const victim = [...states.keys()][0]!;
      await ok(['forget', victim], env);
      states.delete(victim);
      const r = await runCli(['prune', '--grace', '0s', '--max-unused', '0%'], { ...env, LIFEBOAT_CRASH_AT: point });
      expect(r.code, `prune killed at ${point}: ${r.stderr}`).toBe(-1);
      await checkClean(env, `prune killed at ${point}`);
      for (const [id, state] of states) await expectRestoresTo(env, id, src, state, scratch);
    }
    // a prune that runs to the end after all that leaves no unreferenced data behind
    await ok(['prune', '--grace', '0s', '--max-unused', '0%'], env);
    await checkClean(env, 'the final prune');
    const warnings = JSON.parse((await runCli(['check', '--json'], env)).stdout) as { warnings: unknown[] };
    expect(warnings.warnings).toEqual([]);
    for (const [id, state] of states) await expectRestoresTo(env, id, src, state, scratch);
    fs.rmSync(dir, { recursive: true, force: true });
  }, 900000);
});

function spawnCli(args: string[], env: Record<string, string>): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stderr }));
  });
}

describe.each(['local', 's3'] as const)('concurrent clients (%s)', (kind) => {
  it('two backups at once, then a prune while a third backup runs: prune waits, nothing referenced is lost', async () => {
    const dir = await makeTempDir();
    const env = await initCliRepo(kind, dir, buckets);
    const srcs = ['vm1', 'vm2', 'vm3'].map((v) => path.join(dir, v));
    for (const s of srcs) grow(s, 'data');
    // shared content between the clients: the same dump in two of them
    fs.copyFileSync(path.join(srcs[0]!, 'data', 'dump.sql'), path.join(srcs[1]!, 'data', 'same.sql'));
    const states = srcs.map((s) => treeState(s));

    const [a, b] = await Promise.all([spawnCli(['backup', srcs[0]!], env), spawnCli(['backup', srcs[1]!], env)]);
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    expect(await snapshotIds(env)).toHaveLength(2);
    // a snapshot to forget, so the prune has real work
    const extra = path.join(dir, 'gone');
    grow(extra, 'x');
    await ok(['backup', extra], env);
    const gone = (await snapshotIds(env)).at(-1)!;
    await ok(['forget', gone], env);

    // the third backup is slowed by a large source, so the prune starts while it holds its lock
    for (let i = 0; i < 8; i++) fs.writeFileSync(path.join(srcs[2]!, 'data', `big${i}.bin`), randomBytes(8 * 1024 * 1024));
    states[2] = treeState(srcs[2]!);
    const third = spawnCli(['backup', srcs[2]!], env);
    const deadline = Date.now() + 30_000;
    while (JSON.parse((await runCli(['list', 'locks', '--json'], env)).stdout).length === 0) {
      expect(Date.now()).toBeLessThan(deadline);
      await new Promise((r) => setTimeout(r, 100));
    }
    const prune = await runCli(['prune', '--grace', '0s', '--retry-lock', '5m', '--json'], env);
    const t = await third;
    expect(t.code, t.stderr).toBe(0);
    expect(prune.code, prune.stderr).toBe(0);
    const pruned = JSON.parse(prune.stdout) as { snapshots: number; bytes_freed: number };
    // the prune ran after the backup: it saw its snapshot, and it freed the forgotten data
    expect(pruned.snapshots).toBe(3);
    expect(pruned.bytes_freed).toBeGreaterThan(8 * 1024 * 1024);

    await checkClean(env, 'concurrent backups and prune');
    const snaps = JSON.parse(await ok(['snapshots', '--json'], env)) as Array<{ id: string; paths: string[] }>;
    expect(snaps).toHaveLength(3);
    for (const [i, s] of srcs.entries()) {
      const snap = snaps.find((x) => x.paths.includes(s))!;
      await expectRestoresTo(env, snap.id, s, states[i]!, path.join(dir, 'restore'));
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }, 900000);
});

describe('a fresh machine (s3)', () => {
  it('restores a file with an empty cache directory: nothing needed lives only locally', async () => {
    const dir = await makeTempDir();
    const src = path.join(dir, 'src');
    grow(src, 'etc');
    const env = await initCliRepo('s3', dir, buckets);
    await ok(['backup', src], env);
    const fresh = { ...env, LIFEBOAT_CACHE_DIR: path.join(dir, 'new-machine-cache') };
    expect(fs.existsSync(fresh.LIFEBOAT_CACHE_DIR)).toBe(false);
    const target = path.join(dir, 'target');
    const file = path.join(src, 'etc', 'dump.sql');
    await ok(['restore', `latest:${file}`, '--target', target], fresh);
    expect(fs.readFileSync(path.join(target, 'dump.sql'))).toEqual(fs.readFileSync(file));
    // the cache rebuilt itself on the way
    const info = JSON.parse(await ok(['cache', 'info', '--json'], fresh)) as { snapshots: number; blobs: number };
    expect(info.snapshots).toBe(1);
    expect(info.blobs).toBeGreaterThan(0);
    fs.rmSync(dir, { recursive: true, force: true });
  }, 900000);
});

describe('a stop signal while the lock is being taken (local)', () => {
  it('SIGTERM the moment the lock file appears: the command exits 143 and leaves no lock behind', async () => {
    const dir = await makeTempDir();
    const src = path.join(dir, 'src');
    grow(src, 'etc');
    const env = await initCliRepo('local', dir, buckets);
    const locks = path.join(env.LIFEBOAT_REPOSITORY!, 'locks');
    fs.mkdirSync(locks, { recursive: true });
    for (const cmd of [['backup', src], ['check'], ['prune']]) {
      const child = spawn(process.execPath, [CLI, ...cmd], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      // the instant a lock file shows up (the command is still checking for conflicting locks)
      // (once: a second signal means "exit now" and is allowed to leave the lock)
      let sent = false;
      const watcher = fs.watch(locks, () => {
        if (!sent && fs.readdirSync(locks).length > 0) sent = child.kill('SIGTERM');
      });
      const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
      watcher.close();
      expect(code, `${cmd[0]}: ${stderr}`).toBe(143);
      expect(stderr).toContain('SIGTERM: stopping');
      expect(fs.readdirSync(locks), `${cmd[0]} left its lock`).toEqual([]);
    }
    await checkClean(env, 'the interrupted commands');
    fs.rmSync(dir, { recursive: true, force: true });
  }, 300000);
});
