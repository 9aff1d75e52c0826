/**
 * Issue 5 through the CLI, on the local backend and the real S3 server: check on a healthy
 * repository, forget + prune freeing space while every remaining snapshot restores bit-exact,
 * and check naming each kind of damage (a flipped byte in a data pack, a tree pack, an index
 * file and a snapshot; a deleted pack) with the snapshots it affects, then repair mending it.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { CLI, initCliRepo, runCli, cliOk } from '../helpers/cli.js';
import { deleteBucket, makeTempDir, s3Endpoint } from '../helpers/storage-backends.js';
import { expectRestoresTo, snapshotIds, treeState, type TreeState } from '../helpers/tree-state.js';
import { openStorage } from '../../src/storage/open.js';
import { Repository } from '../../src/repo/repository.js';
import { sqlText } from '../helpers/repo.js';

const buckets: string[] = [];
afterAll(async () => {
  await Promise.allSettled(buckets.map((b) => deleteBucket(s3Endpoint(), b)));
});

/** A small source tree: incompressible files, SQL text, a nested directory. */
function makeSource(src: string): void {
  fs.mkdirSync(path.join(src, 'etc', 'app'), { recursive: true });
  fs.writeFileSync(path.join(src, 'big.bin'), randomBytes(3 * 1024 * 1024));
  fs.writeFileSync(path.join(src, 'dump.sql'), sqlText(2 * 1024 * 1024, 7));
  fs.writeFileSync(path.join(src, 'etc', 'app', 'app.conf'), 'listen 8080\n');
  fs.writeFileSync(path.join(src, 'etc', 'motd'), 'hello\n');
}

const ok = cliOk;

async function backup(env: Record<string, string>, src: string): Promise<string> {
  const out = await ok(['backup', src, '--json'], env);
  return (JSON.parse(out.trim().split('\n').at(-1)!) as { snapshot_id: string }).snapshot_id;
}

/** Bytes under data/ (packs) as the store lists them. */
async function packBytes(loc: string): Promise<number> {
  const storage = await openStorage(loc);
  try {
    let n = 0;
    for await (const o of storage.list('data/')) n += o.size;
    return n;
  } finally {
    await storage.close();
  }
}

interface CheckJson {
  ok: boolean;
  errors: Array<{ kind: string; object: string; message: string }>;
  warnings: Array<{ kind: string; object: string }>;
  snapshots_affected: string[];
}

async function check(env: Record<string, string>, ...extra: string[]): Promise<{ code: number; json: CheckJson; stderr: string }> {
  const r = await runCli(['check', '--json', ...extra], env);
  return { code: r.code, json: JSON.parse(r.stdout) as CheckJson, stderr: r.stderr };
}

describe.each(['local', 's3'] as const)('check, forget and prune (%s)', (kind) => {
  it('a healthy repository checks clean; forget + prune frees space and what is left restores bit-exact', async () => {
    const dir = await makeTempDir();
    const src = path.join(dir, 'src');
    makeSource(src);
    const env = await initCliRepo(kind, dir, buckets);
    const states = new Map<string, TreeState>();
    const s1 = await backup(env, src);
    states.set(s1, treeState(src));
    // day 2: the big file goes, a new one comes, the dump changes
    fs.rmSync(path.join(src, 'big.bin'));
    fs.writeFileSync(path.join(src, 'new.bin'), randomBytes(1024 * 1024));
    fs.appendFileSync(path.join(src, 'dump.sql'), sqlText(200 * 1024, 8));
    const s2 = await backup(env, src);
    states.set(s2, treeState(src));
    fs.writeFileSync(path.join(src, 'etc', 'motd'), 'changed\n');
    const s3 = await backup(env, src);
    states.set(s3, treeState(src));

    const healthy = await check(env, '--read-data');
    expect(healthy.code, healthy.stderr).toBe(0);
    expect(healthy.json.ok).toBe(true);
    expect(healthy.json.errors).toEqual([]);

    // a dry run changes nothing
    const before = await packBytes(env.LIFEBOAT_REPOSITORY!);
    await ok(['forget', s1], env);
    const dry = JSON.parse(await ok(['prune', '--dry-run', '--grace', '0s', '--json'], env)) as Record<string, number>;
    expect(dry.bytes_to_delete + dry.bytes_to_repack).toBeGreaterThan(2 * 1024 * 1024);
    expect(await packBytes(env.LIFEBOAT_REPOSITORY!)).toBe(before);

    // with the default grace period young packs are left alone: nothing is deleted yet
    const young = JSON.parse(await ok(['prune', '--json'], env)) as Record<string, number>;
    expect(young.packs_to_delete + young.packs_to_repack).toBe(0);
    expect(young.young_packs_kept).toBeGreaterThan(0);

    const pruned = JSON.parse(await ok(['prune', '--grace', '0s', '--max-unused', '0%', '--json'], env)) as Record<string, number>;
    expect(pruned.bytes_freed).toBeGreaterThan(2.5 * 1024 * 1024); // the 3 MiB random file's data
    const after = await packBytes(env.LIFEBOAT_REPOSITORY!);
    expect(before - after).toBe(pruned.bytes_freed);
    expect(pruned.unused_bytes_after).toBe(0);

    const clean = await check(env, '--read-data');
    expect(clean.code, clean.stderr).toBe(0);
    expect(clean.json.warnings).toEqual([]);
    expect(await snapshotIds(env)).toEqual([s2, s3]);
    for (const id of [s2, s3]) await expectRestoresTo(env, id, src, states.get(id)!, path.join(dir, 'restore'));

    // a second prune finds nothing to do
    const again = JSON.parse(await ok(['prune', '--grace', '0s', '--json'], env)) as Record<string, number>;
    expect(again.packs_to_delete + again.packs_to_repack + again.unreferenced_packs_deleted).toBe(0);
    fs.rmSync(dir, { recursive: true, force: true });
  }, 600000);
});

type Damage = 'data-pack' | 'tree-pack' | 'index' | 'snapshot' | 'missing-pack';

/** Flips one byte of an object (or deletes it) through the storage interface. */
async function damage(loc: string, what: Damage): Promise<string> {
  const storage = await openStorage(loc);
  const repo = await Repository.open(storage, 'secret', { cacheDir: fs.mkdtempSync('/tmp/lifeboat-dmg-') });
  try {
    let name: string;
    let offset = 40;
    if (what === 'index' || what === 'snapshot') {
      const folder = what === 'index' ? 'index/' : 'snapshots/';
      const all: string[] = [];
      for await (const o of storage.list(folder)) all.push(o.name);
      name = all.sort()[0]!;
    } else {
      const type = what === 'tree-pack' ? 1 : 0;
      const pack = repo.cache.packs().filter((p) => p.type === type).sort((a, b) => b.size - a.size)[0]!;
      name = `data/${pack.id.slice(0, 2)}/${pack.id}`;
      offset = what === 'tree-pack' ? 30 : 1000;
    }
    if (what === 'missing-pack') {
      await storage.delete(name);
      return name;
    }
    const bytes = await storage.get(name);
    bytes[offset] ^= 0x01;
    await storage.put(name, bytes);
    return name;
  } finally {
    await repo.close();
    await storage.close();
  }
}

describe.each(['local', 's3'] as const)('check names damage and repair mends it (%s)', (kind) => {
  const cases: Array<{ what: Damage; readData: boolean; kinds: string[] }> = [
    { what: 'data-pack', readData: true, kinds: ['pack-data'] },
    { what: 'tree-pack', readData: false, kinds: ['tree'] },
    { what: 'index', readData: false, kinds: ['index'] },
    { what: 'snapshot', readData: false, kinds: ['snapshot'] },
    { what: 'missing-pack', readData: false, kinds: ['pack-missing'] },
  ];
  it.each(cases)('$what', async ({ what, readData, kinds }) => {
    const dir = await makeTempDir();
    const src = path.join(dir, 'src');
    makeSource(src);
    const env = await initCliRepo(kind, dir, buckets);
    const s1 = await backup(env, src);
    const state1 = treeState(src);
    const name = await damage(env.LIFEBOAT_REPOSITORY!, what);

    const r = await check(env, ...(readData ? ['--read-data'] : []));
    expect(r.code).toBe(1);
    expect(r.json.ok).toBe(false);
    expect(r.stderr).toMatch(/check found \d+ errors? in the repository/);
    expect(r.json.errors.map((e) => e.kind)).toEqual(expect.arrayContaining(kinds));
    const named = r.json.errors.map((e) => `${e.object} ${e.message}`).join('\n');
    if (what !== 'tree-pack') expect(named).toContain(name.split('/').at(-1)!);
    if (what !== 'snapshot') expect(r.json.snapshots_affected).toEqual([s1]);

    // repair, then the repository checks clean again
    if (what === 'index') {
      await ok(['repair', 'index'], env);
      const c = await check(env, '--read-data');
      expect(c.code, JSON.stringify(c.json.errors)).toBe(0);
      await expectRestoresTo(env, s1, src, state1, path.join(dir, 'restore'));
    } else if (what === 'missing-pack' || what === 'tree-pack' || what === 'data-pack') {
      // the damaged pack's blobs are gone for good: index repair drops them, snapshot repair
      // rewrites the snapshot without them, prune removes the broken pack
      if (what !== 'missing-pack') {
        const storage = await openStorage(env.LIFEBOAT_REPOSITORY!);
        await storage.delete(name);
        await storage.close();
      }
      await ok(['repair', 'index'], env);
      const fixed = JSON.parse(await ok(['repair', 'snapshots', '--forget', '--json'], env)) as Array<{ original: string; repaired: string }>;
      expect(fixed.map((f) => f.original)).toEqual([s1]);
      const c = await check(env, '--read-data');
      expect(c.code, JSON.stringify(c.json.errors)).toBe(0);
      expect(await snapshotIds(env)).toEqual([fixed[0]!.repaired]);
      await ok(['prune', '--grace', '0s'], env);
      expect((await check(env, '--read-data')).code).toBe(0);
    } else {
      // a damaged snapshot: prune on a machine that never read it refuses (what it references
      // is unknown); forget it, then prune may run again
      const refused = await runCli(['prune', '--grace', '0s'], { ...env, LIFEBOAT_CACHE_DIR: path.join(dir, 'fresh-cache') });
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/cannot be read/);
      const fresh = { ...env, LIFEBOAT_CACHE_DIR: path.join(dir, 'fresh-cache') };
      const forgot = await runCli(['forget', name.split('/').at(-1)!.slice(0, 12), '--prune', '--grace', '0s'], fresh);
      expect(forgot.code, forgot.stderr).toBe(0);
      expect(forgot.stdout).toMatch(/removed unreadable snapshot/);
      expect(await snapshotIds(env)).toEqual([]);
      expect((await check(env, '--read-data')).code).toBe(0);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }, 600000);
});

describe.each(['local', 's3'] as const)('locks (%s)', (kind) => {
  it('list locks; a live lock makes prune wait then exit 11; a dead process\'s lock is removed with a message; unlock --remove-all', async () => {
    const dir = await makeTempDir();
    const env = await initCliRepo(kind, dir, buckets);
    expect((await ok(['list', 'locks'], env)).trim()).toBe('');

    // a live shared lock (this test process holds it) blocks prune: it waits, then exits 11
    const storage = await openStorage(env.LIFEBOAT_REPOSITORY!);
    const repo = await Repository.open(storage, 'secret', { cacheDir: path.join(dir, 'lib-cache') });
    const lock = await repo.lock({ exclusive: false });
    try {
      const listed = JSON.parse(await ok(['list', 'locks', '--json'], env)) as Array<{ id: string; pid: number; stale: boolean; exclusive: boolean }>;
      expect(listed).toHaveLength(1);
      expect(listed[0]).toMatchObject({ pid: process.pid, stale: false, exclusive: false });
      const started = Date.now();
      const blocked = await runCli(['prune', '--retry-lock', '3s'], env);
      expect(blocked.code).toBe(11);
      expect(blocked.stderr).toMatch(/locked: shared lock held by .*pid \d+/);
      expect(Date.now() - started).toBeGreaterThanOrEqual(1500); // it did wait
    } finally {
      await lock.release();
      await repo.close();
      await storage.close();
    }

    // a backup killed with -9 leaves its lock; the next locking command removes it, saying so
    const child = spawn(process.execPath, [CLI, 'backup', '--stdin', '--stdin-filename', 'x'], {
      env: { ...process.env, ...env },
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    child.stdin.write('some data');
    const deadline = Date.now() + 30_000;
    while (JSON.parse((await runCli(['list', 'locks', '--json'], env)).stdout).length === 0) {
      expect(Date.now()).toBeLessThan(deadline);
      await new Promise((r) => setTimeout(r, 200));
    }
    child.kill('SIGKILL');
    await new Promise((r) => child.on('exit', r));
    const stale = JSON.parse(await ok(['list', 'locks', '--json'], env)) as Array<{ stale: boolean; pid: number }>;
    expect(stale).toEqual([expect.objectContaining({ stale: true, pid: child.pid })]);
    const pruned = await runCli(['prune'], env);
    expect(pruned.code, pruned.stderr).toBe(0);
    expect(pruned.stderr).toMatch(new RegExp(`warning: removed stale shared lock held by .*pid ${child.pid}`));
    expect((await ok(['list', 'locks'], env)).trim()).toBe('');

    // unlock --remove-all removes even a live lock
    const s2 = await openStorage(env.LIFEBOAT_REPOSITORY!);
    const r2 = await Repository.open(s2, 'secret', { cacheDir: path.join(dir, 'lib-cache') });
    const held = await r2.lock({ exclusive: true });
    expect(JSON.parse(await ok(['unlock', '--json'], env))).toEqual([]); // live: stays
    const removed = JSON.parse(await ok(['unlock', '--remove-all', '--json'], env)) as unknown[];
    expect(removed.length).toBeGreaterThanOrEqual(1);
    expect((await ok(['list', 'locks'], env)).trim()).toBe('');
    await held.release();
    await r2.close();
    await s2.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }, 600000);
});
