/**
 * `lifeboat forget` through the built CLI, on a local repository and on the S3 server: snapshots
 * with chosen times (backup --time), a policy, --dry-run, explicit ids, a held lock, and the kept
 * snapshots still restore.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initCliRepo, runCli } from '../helpers/cli.js';
import { deleteBucket, makeTempDir, s3Endpoint } from '../helpers/storage-backends.js';
import { Repository } from '../../src/repo/repository.js';
import { openStorage } from '../../src/storage/open.js';

interface SnapshotJson {
  id: string;
  short_id: string;
  time: string;
  hostname: string;
  tags: string[];
  paths: string[];
}

interface ForgetGroupJson {
  group_key: { hostname: string; paths: string[] | null; tags: string[] | null };
  host: string;
  paths: string[] | null;
  tags: string[] | null;
  keep: SnapshotJson[];
  remove: SnapshotJson[];
  reasons: Array<{ snapshot: SnapshotJson; matches: string[] }>;
}

const buckets: string[] = [];
afterAll(async () => {
  await Promise.allSettled(buckets.map((b) => deleteBucket(s3Endpoint(), b)));
});

describe.each(['local', 's3'] as const)('forget (%s)', (kind) => {
  let dir: string;
  let src: string;
  let env: Record<string, string>;
  /** time → snapshot id, and the content of src/file.txt at that snapshot */
  const made = new Map<string, { id: string; content: string }>();
  let other = '';

  const snapshots = async () => {
    const r = await runCli(['snapshots', '--json'], env);
    expect(r.code).toBe(0);
    return (JSON.parse(r.stdout) as SnapshotJson[]).map((s) => `${s.hostname} ${s.time.slice(0, 16)}`);
  };
  const backup = async (time: string, extra: string[] = []) => {
    const content = `content at ${time}\n`;
    fs.writeFileSync(path.join(src, 'file.txt'), content);
    const r = await runCli(['backup', src, '--time', time, '--json', ...extra], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const id = (JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { snapshot_id: string }).snapshot_id;
    return { id, content };
  };

  beforeAll(async () => {
    dir = await makeTempDir();
    src = path.join(dir, 'data');
    fs.mkdirSync(path.join(src, 'sub'), { recursive: true });
    fs.writeFileSync(path.join(src, 'sub/static.txt'), 'unchanged\n');
    // TZ fixes the zone of --time and of the daily/monthly buckets
    env = { ...(await initCliRepo(kind, dir, buckets)), TZ: 'UTC' };
    for (const t of ['2024-01-01 10:00:00', '2024-01-01 12:00:00', '2024-01-02 10:00:00', '2024-01-08 10:00:00', '2024-02-01 10:00:00']) {
      made.set(t, await backup(t, ['--host', 'vm-1']));
    }
    other = (await backup('2024-01-03 10:00:00', ['--host', 'vm-2', '--tag', 'db'])).id;
  });

  it('backup --time sets the snapshot time (local time, TZ)', async () => {
    expect(await snapshots()).toEqual([
      'vm-1 2024-01-01T10:00', 'vm-1 2024-01-01T12:00', 'vm-1 2024-01-02T10:00', 'vm-2 2024-01-03T10:00', 'vm-1 2024-01-08T10:00', 'vm-1 2024-02-01T10:00',
    ]);
    const bad = await runCli(['backup', src, '--time', 'yesterday'], env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/--time: invalid time "yesterday"/);
  });

  it('an empty policy is refused (exit 1) and removes nothing; --unsafe-allow-remove-all needs a filter', async () => {
    const r = await runCli(['forget'], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^lifeboat: no policy was specified, no snapshots will be removed/);
    const u = await runCli(['forget', '--unsafe-allow-remove-all'], env);
    expect(u.code).toBe(1);
    expect(u.stderr).toMatch(/--unsafe-allow-remove-all is not allowed unless a snapshot filter/);
    const both = await runCli(['forget', made.get('2024-01-01 10:00:00')!.id.slice(0, 8), '--keep-last', '1'], env);
    expect(both.code).toBe(1);
    expect(await snapshots()).toHaveLength(6);
  });

  it('--dry-run --json prints the plan per group and removes nothing', async () => {
    const r = await runCli(['forget', '--keep-daily', '2', '--keep-monthly', '2', '--dry-run', '--json'], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const groups = JSON.parse(r.stdout) as ForgetGroupJson[];
    expect(groups.map((g) => g.group_key)).toEqual([
      { hostname: 'vm-1', paths: [src], tags: null },
      { hostname: 'vm-2', paths: [src], tags: null },
    ]);
    const [g1, g2] = groups as [ForgetGroupJson, ForgetGroupJson];
    expect(g1.host).toBe('vm-1');
    expect(g1.keep.map((s) => s.time.slice(0, 10))).toEqual(['2024-02-01', '2024-01-08']);
    expect(g1.remove.map((s) => s.time.slice(0, 16))).toEqual(['2024-01-02T10:00', '2024-01-01T12:00', '2024-01-01T10:00']);
    expect(g1.reasons.map((x) => [x.snapshot.short_id, x.matches])).toEqual([
      [made.get('2024-02-01 10:00:00')!.id.slice(0, 8), ['daily snapshot', 'monthly snapshot']],
      [made.get('2024-01-08 10:00:00')!.id.slice(0, 8), ['daily snapshot', 'monthly snapshot']],
    ]);
    expect(g1.keep[0]!.id).toBe(made.get('2024-02-01 10:00:00')!.id);
    expect(g2.keep.map((s) => s.id)).toEqual([other]);
    expect(g2.reasons[0]!.matches).toEqual(['daily snapshot', 'monthly snapshot']);
    expect(await snapshots()).toHaveLength(6);

    const within = JSON.parse((await runCli(['forget', '--keep-within', '7d', '--keep-last', 'unlimited', '--group-by', 'host', '--dry-run', '--json'], env)).stdout) as ForgetGroupJson[];
    expect(within.map((g) => [g.group_key.hostname, g.reasons.map((x) => x.matches.join('+'))])).toEqual([
      ['vm-1', ['within 7d+last snapshot', 'last snapshot', 'last snapshot', 'last snapshot', 'last snapshot']],
      ['vm-2', ['within 7d+last snapshot']],
    ]);
    const bad = await runCli(['forget', '--keep-within', '1w'], env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/--keep-within: invalid duration "1w": unknown unit "w"/);

    const human = await runCli(['forget', '--keep-daily', '2', '--keep-monthly', '2', '--dry-run'], env);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain('Applying Policy: keep 2 daily, 2 monthly snapshots');
    expect(human.stdout).toContain(`snapshots for (host vm-1, path [${src}]):`);
    expect(human.stdout).toMatch(/keep 2 snapshots:\nID +Time +Host +Tags +Reasons +Paths/);
    expect(human.stdout).toMatch(/2024-01-08 10:00:00 +vm-1 +daily snapshot +\S+\n +monthly snapshot/);
    expect(human.stdout).toContain('remove 3 snapshots:');
    expect(human.stdout).toContain('Would have removed the following snapshots:');
    expect(await snapshots()).toHaveLength(6);
  });

  it('a held exclusive lock: exit 11 at once, or after retrying for --retry-lock; nothing removed', async () => {
    const repo = await Repository.open(await openStorage(env.LIFEBOAT_REPOSITORY!), 'secret', { cacheDir: await makeTempDir() });
    const lock = await repo.lock({ exclusive: true });
    try {
      const now = await runCli(['forget', '--keep-last', '1'], env);
      expect(now.code).toBe(11);
      expect(now.stderr).toMatch(/^lifeboat: repository is already locked: exclusive lock held by/);
      // with --retry-lock 5s the lock is retried after ≥ 0.5 s and ≥ 1 s (backoff), then given up
      const started = Date.now();
      const r = await runCli(['--retry-lock', '5s', 'forget', '--keep-last', '1'], env);
      expect(r.code).toBe(11);
      expect(r.stderr).toMatch(/already locked/);
      expect(Date.now() - started).toBeGreaterThanOrEqual(1500);
    } finally {
      await lock.release();
      await repo.close();
      await repo.storage.close();
    }
    expect(await snapshots()).toHaveLength(6);
  });

  it('explicit ids (a unique prefix) remove exactly those snapshots', async () => {
    const victim = made.get('2024-01-01 12:00:00')!.id;
    const r = await runCli(['forget', victim.slice(0, 10), '--json'], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const groups = JSON.parse(r.stdout) as ForgetGroupJson[];
    expect(groups.flatMap((g) => g.remove.map((s) => s.id))).toEqual([victim]);
    expect(groups.flatMap((g) => g.keep)).toEqual([]);
    expect(await snapshots()).toEqual([
      'vm-1 2024-01-01T10:00', 'vm-1 2024-01-02T10:00', 'vm-2 2024-01-03T10:00', 'vm-1 2024-01-08T10:00', 'vm-1 2024-02-01T10:00',
    ]);
    const again = await runCli(['forget', victim.slice(0, 10)], env);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/no snapshot matches/);
  });

  it('a policy removes what it does not keep, per group; the kept snapshots still restore', async () => {
    const r = await runCli(['forget', '--keep-daily', '2', '--keep-monthly', '2'], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/removed snapshot [0-9a-f]{8}/);
    expect(await snapshots()).toEqual(['vm-2 2024-01-03T10:00', 'vm-1 2024-01-08T10:00', 'vm-1 2024-02-01T10:00']);
    for (const t of ['2024-01-08 10:00:00', '2024-02-01 10:00:00']) {
      const { id, content } = made.get(t)!;
      const target = path.join(dir, `restore-${id.slice(0, 8)}`);
      const res = await runCli(['restore', id, '--target', target], env);
      expect(res.stderr).toBe('');
      expect(res.code).toBe(0);
      expect(fs.readFileSync(path.join(target, src, 'file.txt'), 'utf8')).toBe(content);
      expect(fs.readFileSync(path.join(target, src, 'sub/static.txt'), 'utf8')).toBe('unchanged\n');
    }
  });

  it('--host narrows the snapshots considered; --group-by \'\' applies the policy to all at once', async () => {
    const host = await runCli(['forget', '--host', 'vm-1', '--keep-last', '1', '--dry-run', '--json'], env);
    const hg = JSON.parse(host.stdout) as ForgetGroupJson[];
    expect(hg).toHaveLength(1);
    expect(hg[0]!.remove.map((s) => s.time.slice(0, 10))).toEqual(['2024-01-08']);
    const one = await runCli(['forget', '--group-by', '', '--keep-last', '2', '--json'], env);
    expect(one.code).toBe(0);
    const og = JSON.parse(one.stdout) as ForgetGroupJson[];
    expect(og.map((g) => [g.group_key, g.keep.length, g.remove.length])).toEqual([[{ hostname: '', paths: null, tags: null }, 2, 1]]);
    expect(await snapshots()).toEqual(['vm-1 2024-01-08T10:00', 'vm-1 2024-02-01T10:00']);
  });
});
