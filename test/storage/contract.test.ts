/** The Storage contract, run on every backend (local directory, plain Swift S3). */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Storage } from '../../src/storage/types.js';
import { backends } from '../helpers/storage-backends.js';
import { names, storageError } from '../helpers/storage-asserts.js';

const MiB = 1024 * 1024;

describe.each(backends)('Storage contract: $name', (backend) => {
  it('round-trips 0 bytes, 1 byte and 5 MiB, and overwrites with a plain put', async () => {
    const s = await backend.make();
    for (const size of [0, 1, 5 * MiB]) {
      const data = randomBytes(size);
      await s.put(`data/00/obj-${size}`, data);
      expect((await s.get(`data/00/obj-${size}`)).equals(data)).toBe(true);
    }
    await s.put('config', Buffer.from('one'));
    await s.put('config', Buffer.from('two'));
    expect((await s.get('config')).toString()).toBe('two');
  });

  it('reads ranges: offset, offset+length, suffix, clamped past the end', async () => {
    const s = await backend.make();
    const data = Buffer.from('0123456789');
    await s.put('o', data);
    const get = async (r: Parameters<Storage['get']>[1]): Promise<string> => (await s.get('o', r)).toString();
    expect(await get({ offset: 3 })).toBe('3456789');
    expect(await get({ offset: 2, length: 3 })).toBe('234');
    expect(await get({ offset: 0, length: 10 })).toBe('0123456789');
    expect(await get({ suffix: 3 })).toBe('789');
    expect(await get({ suffix: 30 })).toBe('0123456789');
    expect(await get({ offset: 8, length: 100 })).toBe('89');
    expect(await get({ offset: 10 })).toBe('');
    expect(await get({ offset: 50, length: 2 })).toBe('');
    expect(await get({ offset: 4, length: 0 })).toBe('');
    expect(await get({ suffix: 0 })).toBe('');
    expect((await storageError(s.get('o', { offset: -1 }))).code).toBe('invalid');
    // a range within a larger object, as a pack reader does
    const big = randomBytes(3 * MiB + 17);
    await s.put('data/ab/pack', big);
    expect((await s.get('data/ab/pack', { offset: MiB + 5, length: 4096 })).equals(big.subarray(MiB + 5, MiB + 5 + 4096))).toBe(true);
    expect((await s.get('data/ab/pack', { suffix: 1000 })).equals(big.subarray(big.length - 1000))).toBe(true);
    // ranges of an empty object
    await s.put('empty', Buffer.alloc(0));
    expect((await s.get('empty', { suffix: 4 })).length).toBe(0);
    expect((await s.get('empty', { offset: 0, length: 4 })).length).toBe(0);
    expect((await storageError(s.get('missing', { offset: 0, length: 0 }))).code).toBe('not-found');
  });

  it('reads ranges into a caller\'s buffer (getInto), as a restore does', async () => {
    const s = await backend.make();
    if (!s.getInto) return; // optional; both backends here have it
    const big = randomBytes(3 * MiB + 17);
    await s.put('data/ab/pack', big);
    const buf = Buffer.alloc(2 * MiB);
    expect(await s.getInto('data/ab/pack', MiB + 5, MiB, buf)).toBe(MiB);
    expect(buf.subarray(0, MiB).equals(big.subarray(MiB + 5, 2 * MiB + 5))).toBe(true);
    // past the end: what there is
    expect(await s.getInto('data/ab/pack', 3 * MiB, 1000, buf)).toBe(17);
    expect(buf.subarray(0, 17).equals(big.subarray(3 * MiB))).toBe(true);
    expect(await s.getInto('data/ab/pack', 4 * MiB, 10, buf)).toBe(0);
    expect(await s.getInto('data/ab/pack', 0, 0, buf)).toBe(0);
    expect((await storageError(s.getInto('data/ab/pack', 0, 3 * MiB, buf))).code).toBe('invalid');
    expect((await storageError(s.getInto('data/ab/nope', 0, 10, buf))).code).toBe('not-found');
  });

  it('lists by prefix across pages', async () => {
    const s = await backend.make({ pageSize: 7 });
    const want: string[] = [];
    for (let i = 0; i < 23; i++) want.push(`data/${i % 2 ? 'aa' : 'ab'}/${i.toString(16).padStart(4, '0')}`);
    want.push('index/0001', 'index/0002', 'config', 'keys/k1');
    await Promise.all(want.map((n) => s.put(n, Buffer.from(n))));
    expect(await names(s, 'data/')).toEqual(want.filter((n) => n.startsWith('data/')).sort());
    expect(await names(s, 'data/aa/')).toEqual(want.filter((n) => n.startsWith('data/aa/')).sort());
    expect(await names(s, 'data/a')).toEqual(want.filter((n) => n.startsWith('data/a')).sort());
    expect(await names(s, 'index/')).toEqual(['index/0001', 'index/0002']);
    expect(await names(s, 'snapshots/')).toEqual([]);
    expect(await names(s, '')).toEqual([...want].sort());
    expect(await names(s, 'conf')).toEqual(['config']);
    for await (const o of s.list('keys/')) {
      expect(o).toMatchObject({ name: 'keys/k1', size: 'keys/k1'.length });
      expect(Math.abs(o.mtimeMs - Date.now())).toBeLessThan(10 * 60_000);
    }
  });

  it('stats objects and deletes idempotently', async () => {
    const s = await backend.make();
    await s.put('snapshots/x', Buffer.from('hello'));
    const info = await s.stat('snapshots/x');
    expect(info).toMatchObject({ name: 'snapshots/x', size: 5 });
    expect(Math.abs((info?.mtimeMs ?? 0) - Date.now())).toBeLessThan(10 * 60_000);
    expect(await s.stat('snapshots/y')).toBeNull();
    await s.delete('snapshots/x');
    await s.delete('snapshots/x');
    await s.delete('never/there');
    expect(await s.stat('snapshots/x')).toBeNull();
    expect(await names(s, 'snapshots/')).toEqual([]);
  });

  it("reports a missing object as 'not-found' with a one-line message", async () => {
    const s = await backend.make();
    const err = await storageError(s.get('index/nope'));
    expect(err.code).toBe('not-found');
    expect(err.retryable).toBe(false);
    expect(err.message).toContain('index/nope');
    expect(err.message).not.toContain('\n');
  });

  it('creates conditionally when supported, and refuses honestly when not', async () => {
    const s = await backend.make();
    if (s.supportsConditionalPut) {
      await s.put('locks/a', Buffer.from('first'), { ifNoneMatch: true });
      const err = await storageError(s.put('locks/a', Buffer.from('second'), { ifNoneMatch: true }));
      expect(err.code).toBe('already-exists');
      expect((await s.get('locks/a')).toString()).toBe('first');
    } else {
      const err = await storageError(s.put('locks/a', Buffer.from('first'), { ifNoneMatch: true }));
      expect(err.code).toBe('unsupported');
    }
  });

  it("reports a missing bucket/directory as 'no-bucket'; create() makes it", async () => {
    const missing = await backend.makeMissing();
    expect(await missing.exists()).toBe(false);
    for (const op of [
      () => missing.get('config'),
      () => missing.put('config', Buffer.from('x')),
      () => missing.stat('config'),
      () => missing.delete('config'),
      () => names(missing, 'keys/'),
    ]) {
      const err = await storageError(op());
      expect(err.code).toBe('no-bucket');
      expect(err.message).not.toContain('\n');
    }
    await missing.create();
    expect(await missing.exists()).toBe(true);
    await missing.create(); // idempotent
    await missing.put('config', Buffer.from('x'));
    expect((await missing.get('config')).toString()).toBe('x');
  });
});

