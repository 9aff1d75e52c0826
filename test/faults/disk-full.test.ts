/**
 * Issue 9, full disks (root only: tmpfs mounts with a size limit): a restore onto a filesystem
 * too small for it fails naming the files and the reason, leaves no partial file under a final
 * name, and completes when run again after space is freed; a backup whose cache disk is full
 * fails with one clear line and leaves a repository that checks clean.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { initCliRepo, runCli } from '../helpers/cli.js';
import { makeTempDir } from '../helpers/storage-backends.js';
import { treeState } from '../helpers/tree-state.js';

const mounts: string[] = [];
afterAll(() => {
  for (const m of mounts) {
    try {
      execFileSync('umount', [m]);
    } catch {
      /* already gone */
    }
  }
});

function tmpfs(dir: string, size: string): void {
  fs.mkdirSync(dir, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]);
  mounts.push(dir);
}

/** A source tree `<dir>/src` holding `files` (name → content); returns its path. */
function sourceTree(dir: string, files: Record<string, Buffer | string>): string {
  const src = path.join(dir, 'src');
  fs.mkdirSync(src);
  for (const [name, data] of Object.entries(files)) fs.writeFileSync(path.join(src, name), data);
  return src;
}

/** With room again, the same backup goes through and the repository checks clean. */
async function backupThenCheck(src: string, env: Record<string, string>): Promise<void> {
  const ok = await runCli(['backup', src], env);
  expect(ok.code, ok.stderr).toBe(0);
  const c = await runCli(['check', '--read-data'], env);
  expect(c.code, c.stderr).toBe(0);
}

describe('full disks', () => {
  it('is run as root (mounting tmpfs needs it; CI runs as root)', () => {
    expect(process.getuid?.()).toBe(0);
  });

  it('a restore onto a full filesystem fails clearly, leaves no partial file, and completes after space is freed', async () => {
    const dir = await makeTempDir();
    const src = path.join(dir, 'src');
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'a.bin'), randomBytes(6 * 1024 * 1024));
    fs.writeFileSync(path.join(src, 'b.bin'), randomBytes(6 * 1024 * 1024));
    fs.writeFileSync(path.join(src, 'c.txt'), 'small\n');
    const env = await initCliRepo('local', dir, []);
    const b = await runCli(['backup', src], env);
    expect(b.code, b.stderr).toBe(0);

    const target = path.join(dir, 'small-fs');
    tmpfs(target, '8m');
    const r = await runCli(['restore', `latest:${src}`, '--target', target], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/ENOSPC \(write\): no space left on device/);
    expect(r.stderr).toMatch(/a\.bin|b\.bin/);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    // whatever is there under a final name is complete; no temporary file is left behind
    const want = treeState(src);
    for (const [name, hash] of treeState(target)) expect(hash, `${name} is complete`).toBe(want.get(name));
    expect(fs.readdirSync(target).filter((n) => n.startsWith('.lifeboat-'))).toEqual([]);

    // space freed (the filesystem grows): the same restore completes
    execFileSync('mount', ['-o', 'remount,size=32m', target]);
    const again = await runCli(['restore', `latest:${src}`, '--target', target], env);
    expect(again.code, again.stderr).toBe(0);
    expect(treeState(target)).toEqual(want);
  });

  it('a backup to a full local repository fails with one line, leaves no temporary pack, and completes once there is room', async () => {
    const dir = await makeTempDir();
    const src = sourceTree(dir, { 'big.bin': randomBytes(12 * 1024 * 1024), 'small.txt': 'small\n' });
    const repo = path.join(dir, 'repo');
    tmpfs(repo, '6m');
    const env = await initCliRepo('local', dir, []);
    const r = await runCli(['backup', src], env);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^lifeboat: .*no space left on device/)]);
    const leftovers = fs.readdirSync(repo, { recursive: true, encoding: 'utf8' }).filter((n) => /\.tmp-/.test(n));
    expect(leftovers).toEqual([]);
    expect((await runCli(['snapshots', '--json'], env)).stdout.trim()).toBe('[]');

    execFileSync('mount', ['-o', 'remount,size=64m', repo]);
    await backupThenCheck(src, env);
  });

  it('a backup to S3 whose cache disk cannot hold a pack fails with one line and stores no snapshot', async () => {
    const dir = await makeTempDir();
    const src = sourceTree(dir, { 'big.bin': randomBytes(24 * 1024 * 1024) });
    const buckets: string[] = [];
    const env = await initCliRepo('s3', dir, buckets);
    const cache = path.join(dir, 'small-cache');
    tmpfs(cache, '8m');
    const r = await runCli(['backup', src], { ...env, LIFEBOAT_CACHE_DIR: cache });
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(/^lifeboat: cannot write a pack to the local spool .*no space left on device.*use --cache-dir elsewhere; the repository is unharmed$/),
    ]);
    expect(fs.readdirSync(cache, { recursive: true, encoding: 'utf8' }).filter((n) => n.includes('pack.tmp-'))).toEqual([]);
    expect((await runCli(['snapshots', '--json'], env)).stdout.trim()).toBe('[]');
    await backupThenCheck(src, env);
  });

  it('a backup with a full cache disk fails with one line and the repository checks clean', async () => {
    const dir = await makeTempDir();
    const src = sourceTree(dir, Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`f${i}.txt`, `file ${i} ${randomBytes(8).toString('hex')}\n`])));
    const env = await initCliRepo('local', dir, []);
    const cache = path.join(dir, 'tiny-cache');
    tmpfs(cache, '200k');
    const r = await runCli(['backup', src], { ...env, LIFEBOAT_CACHE_DIR: cache });
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^lifeboat: the local cache is full .*the repository is unharmed$/)]);
    const c = await runCli(['check', '--read-data'], env);
    expect(c.code, c.stderr).toBe(0);
    // with room in the cache, the backup goes through
    const ok = await runCli(['backup', src], env);
    expect(ok.code, ok.stderr).toBe(0);
  });
});
