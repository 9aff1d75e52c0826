/**
 * Issue 9, fault injection: backup, restore, forget + prune and check, through the built CLI,
 * against the real S3 server behind a proxy that breaks 5 % of the requests (500s, 503 SlowDown,
 * resets before and after the server acted, stalls past the client timeout, truncated bodies).
 * Everything completes and is correct; a permanent failure stops with one clear line and leaves
 * a repository that checks clean.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FAST_KDF, runCli, cliOk } from '../helpers/cli.js';
import { deleteBucket, makeTempDir, randomBucketName, s3Endpoint } from '../helpers/storage-backends.js';
import { expectRestoresTo, treeState } from '../helpers/tree-state.js';
import { sqlText } from '../helpers/repo.js';
import { startFaultProxy, type FaultProxy } from './proxy.js';

const buckets: string[] = [];
const proxies: FaultProxy[] = [];
afterAll(async () => {
  await Promise.allSettled(proxies.map((p) => p.close()));
  await Promise.allSettled(buckets.map((b) => deleteBucket(s3Endpoint(), b)));
});

const SEED = Number(process.env.LIFEBOAT_FAULT_SEED ?? 20261122);

async function setup(): Promise<{ dir: string; src: string; direct: Record<string, string>; faulty: Record<string, string>; proxy: FaultProxy }> {
  const dir = await makeTempDir();
  const src = path.join(dir, 'src');
  fs.mkdirSync(path.join(src, 'sub'), { recursive: true });
  for (let i = 0; i < 6; i++) fs.writeFileSync(path.join(src, `r${i}.bin`), randomBytes(3 * 1024 * 1024));
  for (let i = 0; i < 40; i++) fs.writeFileSync(path.join(src, 'sub', `t${i}.txt`), `file ${i}\n`.repeat(200 + i));
  fs.writeFileSync(path.join(src, 'dump.sql'), sqlText(4 * 1024 * 1024, 3));
  const bucket = randomBucketName();
  buckets.push(bucket);
  const proxy = await startFaultProxy(s3Endpoint(), SEED, 0, 20_000);
  proxies.push(proxy);
  fs.writeFileSync(path.join(dir, 'pw'), 'secret\n', { mode: 0o600 });
  const common = { LIFEBOAT_PASSWORD_FILE: path.join(dir, 'pw'), LIFEBOAT_CACHE_DIR: path.join(dir, 'cache'), LIFEBOAT_S3_TIMEOUT: '3s' };
  const direct = { ...common, LIFEBOAT_REPOSITORY: `s3:${s3Endpoint()}/${bucket}` };
  const faulty = { ...common, LIFEBOAT_REPOSITORY: `s3:${proxy.url}/${bucket}` };
  const init = await runCli(['init', ...FAST_KDF], direct);
  expect(init.code, init.stderr).toBe(0);
  return { dir, src, direct, faulty, proxy };
}

const ok = cliOk;

describe('S3 faults (proxy in front of the real server)', () => {
  it('backup, restore, forget + prune and check complete correctly under 5 % injected faults', async () => {
    const { dir, src, direct, faulty, proxy } = await setup();
    proxy.rate = 0.05;
    const first = treeState(src);
    await ok(['backup', src], faulty);
    fs.rmSync(path.join(src, 'r0.bin'));
    fs.writeFileSync(path.join(src, 'new.bin'), randomBytes(2 * 1024 * 1024));
    const second = treeState(src);
    await ok(['backup', src], faulty);
    const snaps = (JSON.parse(await ok(['snapshots', '--json'], faulty)) as Array<{ id: string }>).map((s) => s.id);
    expect(snaps).toHaveLength(2);
    await expectRestoresTo(faulty, snaps[0]!, src, first, path.join(dir, 'restore'));
    await expectRestoresTo(faulty, snaps[1]!, src, second, path.join(dir, 'restore'));
    await ok(['forget', snaps[0]!, '--prune', '--grace', '0s', '--max-unused', '0%'], faulty);
    await ok(['check', '--read-data'], faulty);
    const injected = Object.values(proxy.injected).reduce((a, b) => a + b, 0);
    // the test means something only if faults of several kinds really happened
    expect(injected, JSON.stringify(proxy.injected)).toBeGreaterThanOrEqual(5);
    expect(Object.values(proxy.injected).filter((n) => n > 0).length).toBeGreaterThanOrEqual(3);

    // the truth, without faults: no half-written or duplicate objects, everything restores
    proxy.rate = 0;
    const c = JSON.parse((await runCli(['check', '--read-data', '--json'], direct)).stdout) as { ok: boolean; errors: unknown[]; warnings: unknown[] };
    expect(c.errors).toEqual([]);
    expect(c.warnings).toEqual([]);
    await expectRestoresTo(direct, snaps[1]!, src, second, path.join(dir, 'restore'));
    expect((await ok(['list', 'locks'], direct)).trim()).toBe('');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a permanent failure stops with one clear line, exit 1, and leaves a repository that checks clean', async () => {
    const { dir, src, direct, faulty, proxy } = await setup();
    await ok(['backup', src], direct);
    fs.writeFileSync(path.join(src, 'more.bin'), randomBytes(4 * 1024 * 1024));
    proxy.faults = ['slowdown'];
    proxy.rate = 1;
    const r = await runCli(['backup', src], faulty);
    expect(r.code).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^lifeboat: S3 http:\/\/127\.0\.0\.1:\d+\/[a-z0-9-]+: .* failed \(SlowDown, HTTP 503\)/);
    expect(r.stderr).not.toMatch(/secret|AWS_SECRET|Signature=/);
    proxy.rate = 0;
    const c = await runCli(['check', '--read-data', '--json'], direct);
    expect((JSON.parse(c.stdout) as { errors: unknown[] }).errors).toEqual([]);
    expect(c.code).toBe(0);
    expect(JSON.parse(await ok(['snapshots', '--json'], direct))).toHaveLength(1);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
