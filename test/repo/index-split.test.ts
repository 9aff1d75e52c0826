import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { splitIndexPacks } from '../../src/repo/index-split.js';
import type { IndexPack } from '../../src/repo/formats.js';

function pack(n: number, blobs: number): IndexPack {
  const id = n.toString(16).padStart(64, '0');
  return {
    id,
    type: 'data',
    size: blobs * 100 + 50,
    blobs: Array.from({ length: blobs }, (_, i) => ({ id: `${n}-${i}`.padEnd(64, '0'), offset: i * 100, length: 100, raw_length: 60 })),
  };
}

describe('splitting index files', () => {
  it('keeps small packs whole, several to a file, and splits a pack larger than the limit', () => {
    const files = splitIndexPacks([pack(1, 3), pack(2, 4), pack(3, 12), pack(4, 2)], 5);
    expect(files.map((f) => f.map((p) => [p.id.slice(-1), p.blobs.length]))).toEqual([
      [['1', 3]],
      [['2', 4]],
      [['3', 5]],
      [['3', 5]],
      [['3', 2], ['4', 2]],
    ]);
  });

  it('every blob of every pack appears exactly once, no file exceeds the limit (unless empty input)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 40 }), { maxLength: 12 }), fc.integer({ min: 1, max: 17 }), (sizes, max) => {
        const packs = sizes.map((n, i) => pack(i + 1, n));
        const files = splitIndexPacks(packs, max);
        for (const f of files) expect(f.reduce((a, p) => a + p.blobs.length, 0)).toBeLessThanOrEqual(max);
        const seen = files.flat().flatMap((p) => p.blobs.map((b) => `${p.id}/${b.id}/${b.offset}`));
        const want = packs.flatMap((p) => p.blobs.map((b) => `${p.id}/${b.id}/${b.offset}`));
        expect(seen.sort()).toEqual(want.sort());
        for (const p of files.flat()) expect(p.size).toBe(packs.find((q) => q.id === p.id)!.size);
      }),
    );
  });
});
