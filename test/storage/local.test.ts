/** LocalStorage specifics: atomic writes, temp files, modes, names, a full disk. */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { StorageError } from '../../src/storage/errors.js';
import { LocalStorage } from '../../src/storage/local.js';
import { makeLocal, makeTempDir } from '../helpers/storage-backends.js';
import { names, storageError } from '../helpers/storage-asserts.js';

describe('LocalStorage', () => {
  it('writes objects 0600 in 0700 directories made on demand, leaving no temp files', async () => {
    const s = await makeLocal();
    await s.put('data/ab/abcdef', Buffer.from('x'));
    await s.put('locks/1', Buffer.from('y'), { ifNoneMatch: true });
    expect((await fs.stat(path.join(s.root, 'data/ab/abcdef'))).mode & 0o777).toBe(0o600);
    expect((await fs.stat(path.join(s.root, 'locks/1'))).mode & 0o777).toBe(0o600);
    expect((await fs.stat(path.join(s.root, 'data'))).mode & 0o777).toBe(0o700);
    expect((await fs.stat(path.join(s.root, 'data/ab'))).mode & 0o777).toBe(0o700);
    expect((await fs.readdir(path.join(s.root, 'data/ab'))).sort()).toEqual(['abcdef']);
    expect(await fs.readdir(path.join(s.root, 'locks'))).toEqual(['1']);
  });

  it('does not list temp files left by a crash', async () => {
    const s = await makeLocal();
    await s.put('index/aa', Buffer.from('x'));
    await fs.writeFile(path.join(s.root, 'index/bb.tmp-0123456789abcdef'), 'partial');
    expect(await names(s, 'index/')).toEqual(['index/aa']);
    expect(await names(s, '')).toEqual(['index/aa']);
  });

  // transient (locks): no fsyncs, the same atomic create
  it.each([false, true])('lets exactly one of 8 concurrent conditional creators win (transient %s)', async (transient) => {
    const s = await makeLocal();
    const bodies = Array.from({ length: 8 }, (_, i) => Buffer.from(`creator ${i}`));
    const results = await Promise.allSettled(bodies.map((b) => s.put('locks/exclusive', b, { ifNoneMatch: true, transient })));
    const winners = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
    expect(winners).toHaveLength(1);
    for (const r of results) {
      if (r.status === 'rejected') expect((r.reason as StorageError).code).toBe('already-exists');
    }
    expect((await s.get('locks/exclusive')).equals(bodies[winners[0] ?? -1] ?? Buffer.alloc(0))).toBe(true);
    expect(await fs.readdir(path.join(s.root, 'locks'))).toEqual(['exclusive']);
  });

  it('refuses names that would escape the repository', async () => {
    const s = await makeLocal();
    for (const name of ['../x', 'a/../../x', '/etc/passwd', '', 'a//b', 'a/./b']) {
      expect((await storageError(s.put(name, Buffer.from('x')))).code).toBe('invalid');
      expect((await storageError(s.get(name))).code).toBe('invalid');
    }
  });

  it('does not create the repository directory on put', async () => {
    const dir = await makeTempDir();
    const s = new LocalStorage(path.join(dir, 'nope'));
    const err = await storageError(s.put('data/ab/x', Buffer.from('x')));
    expect(err.code).toBe('no-bucket');
    expect(err.message).toContain(path.join(dir, 'nope'));
    await expect(fs.stat(path.join(dir, 'nope'))).rejects.toThrow();
  });

  it("reports a full disk as 'no-space' and keeps the old object", async () => {
    const dir = await makeTempDir();
    const mnt = path.join(dir, 'small');
    await fs.mkdir(mnt);
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt], { stdio: 'pipe' });
    } catch (e) {
      throw new Error(`cannot mount a tmpfs here (the test needs root): ${String(e).split('\n')[0]}`);
    }
    try {
      const s = new LocalStorage(path.join(mnt, 'repo'));
      await s.create();
      await s.put('config', Buffer.from('old'));
      const err = await storageError(s.put('config', randomBytes(2 * 1024 * 1024)));
      expect(err.code).toBe('no-space');
      expect(err.retryable).toBe(false);
      expect(err.message).toContain('config');
      expect(err.message).not.toContain('\n');
      expect((await s.get('config')).toString()).toBe('old');
      expect(await fs.readdir(s.root)).toEqual(['config']); // the temp file is gone
    } finally {
      execFileSync('umount', [mnt]);
    }
  });
});
