/**
 * Issue 9, S3 Object Lock retention (`object_lock: {mode, days}` / LIFEBOAT_OBJECT_LOCK_DAYS):
 *   - against the real S3 server (OpenStack Swift's s3api, which has no Object Lock) lifeboat
 *     refuses with one line before writing anything;
 *   - through the recording proxy, which answers GetObjectLockConfiguration with "Enabled" (the
 *     feature the server lacks), every object written — config, keys, packs, index files,
 *     snapshots — carries the retention headers and a Content-MD5, and no lock object does
 *     (locks must stay deletable); a multipart upload asks for the retention when it starts and
 *     sends a CRC32 checksum with every part (Swift accepts those).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FAST_KDF, runCli, cliOk } from '../helpers/cli.js';
import { deleteBucket, makeTempDir, randomBucketName, s3Endpoint } from '../helpers/storage-backends.js';
import { S3Storage } from '../../src/storage/s3.js';
import { startFaultProxy, type FaultProxy } from './proxy.js';

const buckets: string[] = [];
const proxies: FaultProxy[] = [];
afterAll(async () => {
  await Promise.allSettled(proxies.map((p) => p.close()));
  await Promise.allSettled(buckets.map((b) => deleteBucket(s3Endpoint(), b)));
});

/** The store feature Swift lacks, answered by the proxy: GetObjectLockConfiguration says Enabled. */
const lockEnabled: FaultProxy['answer'] = (req) =>
  req.method === 'GET' && /[?&]object-lock(=|&|$)/.test(req.url ?? '')
    ? { status: 200, headers: { 'content-type': 'application/xml' }, body: '<?xml version="1.0" encoding="UTF-8"?>\n<ObjectLockConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><ObjectLockEnabled>Enabled</ObjectLockEnabled></ObjectLockConfiguration>' }
    : null;

async function setup(): Promise<{ dir: string; src: string; common: Record<string, string>; bucket: string }> {
  const dir = await makeTempDir();
  const src = path.join(dir, 'src');
  fs.mkdirSync(src);
  for (let i = 0; i < 3; i++) fs.writeFileSync(path.join(src, `r${i}.bin`), randomBytes(3 << 20));
  fs.writeFileSync(path.join(dir, 'pw'), 'secret\n', { mode: 0o600 });
  const bucket = randomBucketName();
  buckets.push(bucket);
  return { dir, src, bucket, common: { LIFEBOAT_PASSWORD_FILE: path.join(dir, 'pw'), LIFEBOAT_CACHE_DIR: path.join(dir, 'cache') } };
}

describe('S3 Object Lock retention', () => {
  it('a store or bucket without Object Lock is refused with one line, before anything is written', async () => {
    const { src, common, bucket } = await setup();
    const repo = { ...common, LIFEBOAT_REPOSITORY: `s3:${s3Endpoint()}/${bucket}` };
    // a new repository asked to be locked
    const init = await runCli(['init', ...FAST_KDF], { ...repo, LIFEBOAT_OBJECT_LOCK_DAYS: '30' });
    console.log(`init with object lock against the real server: exit ${init.code}: ${init.stderr.trim()}`);
    expect(init.code).toBe(1);
    expect(init.stderr.trim().split('\n')).toHaveLength(1);
    expect(init.stderr).toMatch(/^lifeboat: S3 http:\/\/[^ ]+: object_lock is set but this bucket has no S3 Object Lock \(or the store does not implement it\)/);
    // an existing repository, then asked to lock what it writes
    await cliOk(['init', ...FAST_KDF], repo);
    const before = await runCli(['snapshots', '--json'], repo);
    expect(JSON.parse(before.stdout)).toEqual([]);
    const backup = await runCli(['backup', src], { ...repo, LIFEBOAT_OBJECT_LOCK_DAYS: '7', LIFEBOAT_OBJECT_LOCK_MODE: 'compliance' });
    expect(backup.code).toBe(1);
    expect(backup.stderr.trim().split('\n')).toHaveLength(1);
    expect(backup.stderr).toMatch(/object_lock is set but this bucket has no S3 Object Lock/);
    // nothing was written: no pack, no lock left
    expect(JSON.parse(await cliOk(['snapshots', '--json'], repo))).toEqual([]);
    expect((await cliOk(['list', 'packs'], repo)).trim()).toBe('');
    expect((await cliOk(['list', 'locks'], repo)).trim()).toBe('');
    // bad settings: one line
    const bad = await runCli(['snapshots'], { ...repo, LIFEBOAT_OBJECT_LOCK_DAYS: 'forever' });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe('lifeboat: LIFEBOAT_OBJECT_LOCK_DAYS: expected a whole number of days from 1 to 36500, not "forever"\n');
  });

  it('sets retention (mode, retain-until, Content-MD5) on every object but locks', async () => {
    const { dir, src, common, bucket } = await setup();
    const proxy = await startFaultProxy(s3Endpoint(), 1, 0);
    proxies.push(proxy);
    proxy.answer = lockEnabled;
    const config = path.join(dir, 'lifeboat.yaml');
    fs.writeFileSync(config, `repository: s3:${proxy.url}/${bucket}\nobject_lock: {mode: compliance, days: 3}\n`);
    const env = { ...common, LIFEBOAT_CONFIG: config };
    const t0 = Date.now();
    await cliOk(['init', ...FAST_KDF], env);
    await cliOk(['backup', src], env);
    fs.writeFileSync(path.join(src, 'more.bin'), randomBytes(1 << 20));
    await cliOk(['backup', src], env);
    const t1 = Date.now();
    expect((await cliOk(['list', 'locks'], env)).trim()).toBe(''); // the locks were deleted

    // object PUTs (not the bucket's creation, which asked for Object Lock on the new bucket)
    const create = proxy.log.find((r) => r.method === 'PUT' && /^\/[^/]+\/?(\?.*)?$/.test(r.url));
    expect(create?.headers['x-amz-bucket-object-lock-enabled']).toBe('true');
    const puts = proxy.log.filter((r) => r.method === 'PUT' && r.url.startsWith(`/${bucket}/`) && r.url.length > bucket.length + 2 && r.url[bucket.length + 2] !== '?');
    const kind = (url: string) => url.slice(bucket.length + 2).split(/[/?]/)[0]!;
    const kinds = new Set(puts.map((p) => kind(p.url)));
    for (const k of ['config', 'keys', 'data', 'index', 'snapshots', 'locks']) expect(kinds, [...kinds].join(' ')).toContain(k);
    const day = 86_400_000;
    for (const p of puts) {
      if (kind(p.url) === 'locks') {
        expect(p.headers['x-amz-object-lock-mode'], p.url).toBeUndefined();
        expect(p.headers['x-amz-object-lock-retain-until-date'], p.url).toBeUndefined();
        continue;
      }
      expect(p.headers['x-amz-object-lock-mode'], p.url).toBe('COMPLIANCE');
      const until = Date.parse(String(p.headers['x-amz-object-lock-retain-until-date']));
      expect(until, p.url).toBeGreaterThanOrEqual(t0 + 3 * day - 1000);
      expect(until, p.url).toBeLessThanOrEqual(t1 + 3 * day + 1000);
      expect(p.headers['content-md5'], p.url).toBeTruthy();
    }
    // what was written is a sound repository (the server stored it; the headers were only asked for)
    const check = await runCli(['check', '--read-data'], env);
    expect(check.code, check.stderr).toBe(0);
  });

  it('a multipart upload asks for the retention at its start and sends a checksum with every part', async () => {
    const { bucket } = await setup();
    const proxy = await startFaultProxy(s3Endpoint(), 1, 0);
    proxies.push(proxy);
    proxy.answer = lockEnabled;
    const s3 = new S3Storage({ endpoint: proxy.url, bucket, multipartThreshold: 6 << 20, partSize: 5 << 20, objectLock: { mode: 'GOVERNANCE', days: 1 } });
    try {
      await s3.create();
      const big = randomBytes(13 << 20);
      await s3.put('data/ab/big', big);
      expect((await s3.get('data/ab/big')).equals(big)).toBe(true);
    } finally {
      await s3.close();
    }
    const start = proxy.log.find((r) => r.method === 'POST' && /\/data\/ab\/big\?uploads/.test(r.url));
    expect(start?.headers['x-amz-object-lock-mode']).toBe('GOVERNANCE');
    expect(start?.headers['x-amz-object-lock-retain-until-date']).toBeTruthy();
    const parts = proxy.log.filter((r) => r.method === 'PUT' && /\/data\/ab\/big\?.*partNumber=/.test(r.url));
    expect(parts.length).toBe(3);
    for (const p of parts) expect(p.headers['x-amz-checksum-crc32'], p.url).toMatch(/^[A-Za-z0-9+\/]+={0,2}$/);
  });
});
