import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ReadAhead, READ_AHEAD_FILES, readAheadWorthy } from '../../src/engine/read-ahead.js';
import { willNeedMany } from '../../src/native/index.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-readahead-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('read-ahead of the small files a backup is about to read', () => {
  it('keeps between half a window and a window of files advised beyond the walk, in batches', () => {
    const calls: string[][] = [];
    const files = Array.from({ length: 100 }, (_, i) => ({ at: i, p: Buffer.from(`f${i}`) }));
    const ra = new ReadAhead(files, async (paths) => {
      calls.push(paths.map((p) => p.toString()));
      return paths.length;
    });
    const half = READ_AHEAD_FILES / 2;
    ra.advance(0);
    expect(calls).toHaveLength(1);
    expect(calls[0]).toEqual(Array.from({ length: half }, (_, i) => `f${i}`));
    ra.advance(1); // 31 advised beyond it, fewer than half a window: the next batch
    expect(calls).toHaveLength(2);
    expect(calls[1]![0]).toBe(`f${half}`);
    ra.advance(2);
    expect(calls).toHaveLength(2); // 62 advised beyond it
    ra.advance(half + 1);
    expect(calls).toHaveLength(3);
    expect(calls[2]![0]).toBe(`f${2 * half}`);
    ra.advance(99);
    ra.advance(99);
    expect(calls).toHaveLength(4);
    const all = calls.flat();
    expect(all).toEqual(files.map((f) => f.p.toString())); // each once, in order
  });

  it('is worth it only for small, non-empty, new or changed regular files', () => {
    const f = path.join(dir, 'small');
    fs.writeFileSync(f, 'x'.repeat(100));
    const empty = path.join(dir, 'empty');
    fs.writeFileSync(empty, '');
    const st = (p: string) => fs.lstatSync(p, { bigint: true });
    expect(readAheadWorthy(st(f), false, 1000)).toBe(true);
    expect(readAheadWorthy(st(f), true, 1000)).toBe(false);
    expect(readAheadWorthy(st(f), false, 99)).toBe(false);
    expect(readAheadWorthy(st(empty), false, 1000)).toBe(false);
    expect(readAheadWorthy(st(dir), false, 1000)).toBe(false);
  });

  it('the native call advises regular files and skips what it cannot or must not open, without blocking', async () => {
    const a = path.join(dir, 'a');
    const b = path.join(dir, 'b\xff');
    fs.writeFileSync(a, 'aaaa');
    fs.writeFileSync(Buffer.from(path.join(dir, 'b\xff'), 'latin1'), 'bbbb');
    const link = path.join(dir, 'link');
    fs.symlinkSync(a, link);
    const fifo = path.join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const n = await willNeedMany([
      Buffer.from(a),
      Buffer.from(b, 'latin1'), // a name that is not UTF-8
      path.join(dir, 'missing'),
      link, // O_NOFOLLOW
      fifo, // O_NONBLOCK: opening it must not wait for a writer; fadvise refuses it
    ]);
    expect(n).toBe(2);
    expect(await willNeedMany([])).toBe(0);
  });
});
