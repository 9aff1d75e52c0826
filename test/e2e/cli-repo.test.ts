import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli, FAST_KDF } from '../helpers/cli.js';
import { makeTempDir, randomBucketName, s3Endpoint, deleteBucket } from '../helpers/storage-backends.js';
import { Repository } from '../../src/repo/repository.js';
import { LocalStorage } from '../../src/storage/local.js';
import { toHex } from '../../src/util/hex.js';
import { afterAll } from 'vitest';


describe('lifeboat CLI on a local repository', () => {
  let dir: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    dir = await makeTempDir();
    fs.writeFileSync(path.join(dir, 'pw1'), 'first password\n', { mode: 0o600 });
    fs.writeFileSync(path.join(dir, 'pw2'), 'second password\n', { mode: 0o600 });
    fs.writeFileSync(path.join(dir, 'pw3'), 'third password\n', { mode: 0o600 });
    env = { LIFEBOAT_REPOSITORY: path.join(dir, 'repo'), LIFEBOAT_PASSWORD_FILE: path.join(dir, 'pw1'), LIFEBOAT_CACHE_DIR: path.join(dir, 'cache') };
  });

  it('init creates a repository, prints its id with --json, and refuses a second init', async () => {
    const r = await runCli(['init', '--json', ...FAST_KDF], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { id: string; location: string };
    expect(out.id).toMatch(/^[0-9a-f]{64}$/);
    expect(fs.existsSync(path.join(dir, 'repo', 'config'))).toBe(true);
    const before = fs.readFileSync(path.join(dir, 'repo', 'config'));

    const again = await runCli(['init', ...FAST_KDF], env);
    expect(again.code).toBe(1);
    expect(again.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^lifeboat: a repository already exists at .*repo/)]);
    expect(fs.readFileSync(path.join(dir, 'repo', 'config')).equals(before)).toBe(true);
    expect(fs.readdirSync(path.join(dir, 'repo', 'keys'))).toHaveLength(1);
  });

  it('key add / list --json / passwd / remove', async () => {
    const add = await runCli(['key', 'add', '--new-password-file', path.join(dir, 'pw2'), ...FAST_KDF], env);
    expect(add.code).toBe(0);
    const list = await runCli(['key', 'list', '--json'], env);
    expect(list.code).toBe(0);
    const keys = JSON.parse(list.stdout) as Array<{ id: string; current: boolean; kdf: string }>;
    expect(Array.isArray(keys)).toBe(true);
    expect(keys).toHaveLength(2);
    expect(keys.filter((k) => k.current)).toHaveLength(1);
    expect(keys.every((k) => k.kdf === 'argon2id13')).toBe(true);
    const first = keys.find((k) => k.current)!.id;

    const env2 = { ...env, LIFEBOAT_PASSWORD_FILE: path.join(dir, 'pw2') };
    const passwd = await runCli(['key', 'passwd', '--new-password-file', path.join(dir, 'pw3'), ...FAST_KDF], env2);
    expect(passwd.code).toBe(0);
    expect((await runCli(['key', 'list'], env2)).code).toBe(12);
    const env3 = { ...env, LIFEBOAT_PASSWORD_FILE: path.join(dir, 'pw3') };
    const human = await runCli(['key', 'list'], env3);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain(first.slice(0, 8));

    const rmCurrent = await runCli(['key', 'remove', first.slice(0, 12)], env);
    expect(rmCurrent.code).toBe(1);
    expect(rmCurrent.stderr).toMatch(/refusing to remove the key in use/);
    const rm = await runCli(['key', 'remove', first.slice(0, 12)], env3);
    expect(rm.code).toBe(0);
    expect((await runCli(['key', 'list'], env)).code).toBe(12);
    const left = JSON.parse((await runCli(['key', 'list', '--json'], env3)).stdout) as unknown[];
    expect(left).toHaveLength(1);
    env.LIFEBOAT_PASSWORD_FILE = path.join(dir, 'pw3');
  });

  it('cat config, keys, index, snapshot and pack-header print decrypted JSON', async () => {
    // no backup command yet: write a blob and a snapshot through the library
    const repo = await Repository.open(new LocalStorage(env.LIFEBOAT_REPOSITORY!), 'third password', { cacheDir: await makeTempDir() });
    const tree = (await repo.saveBlob('tree', Buffer.from('{"nodes":[]}'))).id;
    await repo.saveBlob('data', Buffer.from('hello'));
    await repo.flush();
    const snap = await repo.saveSnapshot({ version: 1, time: new Date().toISOString(), tree: toHex(tree), paths: ['/x'], hostname: 'h', tags: [], source: { type: 'files' } });
    await repo.close();

    const cfg = JSON.parse((await runCli(['cat', 'config'], env)).stdout) as { version: number; chunker: { avg: number } };
    expect(cfg.version).toBe(1);
    expect(cfg.chunker.avg).toBe(1048576);
    const keys = JSON.parse((await runCli(['cat', 'keys'], env)).stdout) as Array<{ kdf: { memlimit: number } }>;
    expect(keys[0]!.kdf.memlimit).toBe(8 * 1024 * 1024);

    const idx = fs.readdirSync(path.join(dir, 'repo', 'index'))[0]!;
    const index = JSON.parse((await runCli(['cat', 'index', idx.slice(0, 8)], env)).stdout) as { packs: Array<{ id: string; type: string }> };
    expect(index.packs.map((p) => p.type).sort()).toEqual(['data', 'tree']);
    const s = JSON.parse((await runCli(['cat', 'snapshot', snap.slice(0, 6)], env)).stdout) as { id: string; tree: string };
    expect(s).toMatchObject({ id: snap, tree: toHex(tree) });
    const packId = index.packs.find((p) => p.type === 'data')!.id;
    const ph = JSON.parse((await runCli(['cat', 'pack-header', packId], env)).stdout) as { blobs: Array<{ type: string; raw_length: number }> };
    expect(ph.blobs).toEqual([expect.objectContaining({ type: 'data', raw_length: 5 })]);

    const bad = await runCli(['cat', 'nonsense'], env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/unknown object kind/);
    const missing = await runCli(['cat', 'snapshot', 'ffff'], env);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/no snapshots object matches ffff/);
  });

  it('cache info / rebuild / clear', async () => {
    const info = JSON.parse((await runCli(['cache', 'info', '--json'], env)).stdout) as { packs: number; snapshots: number; directory: string };
    expect(info).toMatchObject({ packs: 2, snapshots: 1 });
    expect(info.directory.startsWith(env.LIFEBOAT_CACHE_DIR!)).toBe(true);
    const rebuilt = JSON.parse((await runCli(['cache', 'rebuild', '--json'], env)).stdout) as { index_files_read: number; blobs: number };
    expect(rebuilt).toMatchObject({ index_files_read: 1, blobs: 2 });
    const cleared = await runCli(['cache', 'clear'], env);
    expect(cleared.code).toBe(0);
    expect(fs.existsSync(info.directory)).toBe(false);
    const after = JSON.parse((await runCli(['cache', 'info', '--json'], env)).stdout) as { blobs: number };
    expect(after.blobs).toBe(2);
  });

  it('exit codes: 12 wrong password, 10 no repository, 11 locked, 1 empty password', async () => {
    const wrong = await runCli(['key', 'list'], { ...env, LIFEBOAT_PASSWORD_FILE: undefined, LIFEBOAT_PASSWORD: 'nope' });
    expect(wrong.code).toBe(12);
    expect(wrong.stderr).toBe('lifeboat: wrong password or no key matches\n');

    const none = await runCli(['key', 'list'], { ...env, LIFEBOAT_REPOSITORY: path.join(dir, 'absent') });
    expect(none.code).toBe(10);
    expect(none.stderr.trim().split('\n')).toHaveLength(1);
    expect(none.stderr).toMatch(/no repository at .*absent/);

    const repo = await Repository.open(new LocalStorage(env.LIFEBOAT_REPOSITORY!), 'third password', { cacheDir: await makeTempDir() });
    const lock = await repo.lock({ exclusive: true });
    try {
      const locked = await runCli(['key', 'add', '--new-password-file', path.join(dir, 'pw1'), ...FAST_KDF], env);
      expect(locked.code).toBe(11);
      expect(locked.stderr).toMatch(/^lifeboat: repository is already locked: exclusive lock held by .* pid \d+/);
      const waited = await runCli(['--retry-lock', '1s', 'key', 'remove', 'abcd'], env);
      expect(waited.code).toBe(11);
    } finally {
      await lock.release();
      await repo.close();
    }

    const empty = await runCli(['init', ...FAST_KDF], { ...env, LIFEBOAT_REPOSITORY: path.join(dir, 'other'), LIFEBOAT_PASSWORD_FILE: undefined, LIFEBOAT_PASSWORD: '' });
    expect(empty.code).toBe(1);
    expect(empty.stderr).toMatch(/empty password/);
    expect(fs.existsSync(path.join(dir, 'other', 'config'))).toBe(false);

    const noRepo = await runCli(['key', 'list'], { LIFEBOAT_PASSWORD: 'x' });
    expect(noRepo.code).toBe(1);
    expect(noRepo.stderr).toMatch(/no repository given/);
  });
});

describe('lifeboat CLI on S3 (OpenStack Swift)', () => {
  const buckets: string[] = [];
  afterAll(async () => {
    for (const b of buckets) await deleteBucket(s3Endpoint(), b);
  });

  it('init creates the bucket and repository; key list works; a missing bucket is exit 10', async () => {
    const bucket = randomBucketName();
    buckets.push(bucket);
    const env = { LIFEBOAT_REPOSITORY: `s3:${s3Endpoint()}/${bucket}/prefix/repo`, LIFEBOAT_PASSWORD: 'pw', LIFEBOAT_CACHE_DIR: await makeTempDir() };
    const init = await runCli(['init', ...FAST_KDF], env);
    expect(init.stderr).toBe('');
    expect(init.code).toBe(0);
    const list = JSON.parse((await runCli(['key', 'list', '--json'], env)).stdout) as unknown[];
    expect(list).toHaveLength(1);
    // the open left the key file's KDF parameters for the next command's early derivation
    const hints = fs.readdirSync(path.join(env.LIFEBOAT_CACHE_DIR, 'kdf-hints'));
    expect(hints).toHaveLength(1);
    const hint = JSON.parse(fs.readFileSync(path.join(env.LIFEBOAT_CACHE_DIR, 'kdf-hints', hints[0]!), 'utf8')) as Record<string, unknown>;
    expect(Object.keys(hint).sort()).toEqual(['algorithm', 'memlimit', 'opslimit', 'salt']);
    expect((await runCli(['key', 'list', '--json'], env)).code).toBe(0);

    const missing = await runCli(['key', 'list'], { ...env, LIFEBOAT_REPOSITORY: `s3:${s3Endpoint()}/${randomBucketName()}` });
    expect(missing.code).toBe(10);
    expect(missing.stderr.trim().split('\n')).toHaveLength(1);
    expect(missing.stderr).toContain(s3Endpoint());
    expect(missing.stderr).toMatch(/NoSuchBucket|does not exist/);
  });

  it('bad credentials and an unreachable endpoint give one line naming the endpoint', async () => {
    const bucket = randomBucketName();
    const badCreds = await runCli(['init', ...FAST_KDF], {
      LIFEBOAT_REPOSITORY: `s3:${s3Endpoint()}/${bucket}`,
      LIFEBOAT_PASSWORD: 'pw',
      AWS_ACCESS_KEY_ID: 'test:tester',
      AWS_SECRET_ACCESS_KEY: 'not-the-secret',
    });
    expect(badCreds.code).toBe(1);
    expect(badCreds.stderr.trim().split('\n')).toHaveLength(1);
    expect(badCreds.stderr).toContain(s3Endpoint());
    expect(badCreds.stderr).toMatch(/SignatureDoesNotMatch|AccessDenied|InvalidAccessKeyId|denied/i);
    expect(badCreds.stderr).not.toContain('not-the-secret');

    const unreachable = await runCli(['key', 'list'], { LIFEBOAT_REPOSITORY: 's3:http://127.0.0.1:9/bucket', LIFEBOAT_PASSWORD: 'pw' });
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr.trim().split('\n')).toHaveLength(1);
    expect(unreachable.stderr).toMatch(/127\.0\.0\.1:9/);
    expect(unreachable.stderr).toMatch(/ECONNREFUSED|reach/);
  });
});
