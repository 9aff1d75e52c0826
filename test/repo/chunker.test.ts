import { createCipheriv, createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CHUNKER_AVG,
  CHUNKER_MAX,
  CHUNKER_MIN,
  Chunker,
  type ChunkerParams,
  chunkStream,
  DEFAULT_PARAMS,
  chunkerIsNative,
  findCut,
  resolveParams,
  scanReference,
} from '../../src/repo/chunker.js';
import { nativeAvailable, nativeCdcScan } from '../../src/native/index.js';
import { deriveSubkeys, gearTable } from '../../src/repo/keys-derive.js';

const KiB = 1024;
const MiB = 1024 * 1024;
const SMALL: ChunkerParams = { min: 2 * KiB, avg: 4 * KiB, max: 16 * KiB };

function prng(seed: number, length: number): Buffer {
  const key = Buffer.alloc(16);
  key.writeUInt32LE(seed >>> 0, 0);
  return createCipheriv('aes-128-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(length));
}

function gearFor(seed: number): Int32Array {
  return gearTable(deriveSubkeys(prng(seed + 1000, 32)).chunker);
}

const GEAR = gearTable(deriveSubkeys(Buffer.from(Array.from({ length: 32 }, (_, i) => i))).chunker);

/** Input with structure: random runs, constant runs, repeated text. */
function mixed(seed: number, length: number): Buffer {
  const out = Buffer.alloc(length);
  const r = prng(seed, length);
  let x = seed >>> 0;
  const next = (): number => (x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 8;
  for (let pos = 0; pos < length; ) {
    const n = Math.min(length - pos, 1 + (next() % 20_000));
    const kind = next() % 3;
    if (kind === 0) r.copy(out, pos, pos, pos + n);
    else if (kind === 1) out.fill(next() & 0xff, pos, pos + n);
    else out.write('the quick brown fox jumps over the lazy dog; '.repeat(Math.ceil(n / 45)).slice(0, n), pos, 'latin1');
    pos += n;
  }
  return out;
}

/** The format text (§5) implemented literally, slowly, with unsigned arithmetic. */
function referenceCuts(data: Uint8Array, gear: Int32Array, p: ChunkerParams): number[] {
  const bits = Math.log2(p.avg);
  const maskS = (0xffffffff << (32 - (bits + 2))) >>> 0;
  const maskL = (0xffffffff << (32 - (bits - 2))) >>> 0;
  const cuts: number[] = [];
  let s = 0;
  while (s < data.length) {
    const rem = data.length - s;
    let cut = Math.min(rem, p.max);
    let h = 0;
    for (let off = p.min; off < Math.min(rem, p.max); off++) {
      h = (h * 2 + (gear[data[s + off]!]! >>> 0)) % 4294967296;
      const mask = off < p.avg ? maskS : maskL;
      if ((h & mask) >>> 0 === 0) {
        cut = off + 1;
        break;
      }
    }
    cuts.push(cut);
    s += cut;
  }
  return cuts;
}

function cutsOf(data: Uint8Array, gear: Int32Array, p?: ChunkerParams): number[] {
  const cuts: number[] = [];
  for (let s = 0; s < data.length; ) {
    const n = findCut(data, s, data.length, gear, p);
    expect(n).toBeGreaterThan(0);
    cuts.push(n);
    s += n;
  }
  return cuts;
}

/** Feeds `data` to a Chunker in pieces of the given sizes (cycled). */
function chunkInPieces(data: Buffer, gear: Int32Array, sizes: number[], p?: ChunkerParams): Buffer[] {
  const c = new Chunker(gear, p);
  const out: Buffer[] = [];
  let k = 0;
  for (let pos = 0; pos < data.length; k++) {
    const n = Math.max(0, sizes[k % sizes.length]!);
    out.push(...c.push(data.subarray(pos, pos + n)));
    pos += n;
    if (n === 0 && sizes.every((s) => s <= 0)) break;
  }
  out.push(...c.finish());
  return out;
}

function checkBounds(lengths: number[], total: number, p: ChunkerParams): void {
  expect(lengths.reduce((a, b) => a + b, 0)).toBe(total);
  lengths.forEach((n, i) => {
    if (i < lengths.length - 1) {
      expect(n).toBeGreaterThan(p.min);
      expect(n).toBeLessThanOrEqual(p.max);
    } else {
      expect(n).toBeGreaterThan(0);
      expect(n).toBeLessThanOrEqual(p.max);
    }
  });
}

const ids = (chunks: Buffer[]): string[] => chunks.map((c) => createHash('sha256').update(c).digest('hex'));

describe('chunker: parameters', () => {
  it('defaults are 512 KiB / 1 MiB / 8 MiB with the format masks (top 22 / top 18 bits)', () => {
    expect([CHUNKER_MIN, CHUNKER_AVG, CHUNKER_MAX]).toEqual([524288, 1048576, 8388608]);
    const r = resolveParams(DEFAULT_PARAMS);
    expect(r.maskS).toBe(0xfffffc00 | 0);
    expect(r.maskL).toBe(0xffffc000 | 0);
  });

  it('rejects bad parameters and gear tables', () => {
    expect(() => resolveParams({ min: 4096, avg: 4096, max: 16384 })).toThrow(RangeError);
    expect(() => resolveParams({ min: 2048, avg: 5000, max: 16384 })).toThrow(RangeError);
    expect(() => resolveParams({ min: 2048, avg: 4096, max: 4096 })).toThrow(RangeError);
    expect(() => new Chunker(new Int32Array(255))).toThrow(RangeError);
    expect(() => findCut(new Uint8Array(10), 5, 11, GEAR)).toThrow(RangeError);
  });
});

describe('chunker: the native scan (native/cdc.c)', () => {
  it('is the one in use when the native helper is built', () => {
    expect(nativeAvailable()).toBe(true);
    expect(chunkerIsNative).toBe(true);
  });

  it('finds the same cut, or the same hash to resume with, as the TypeScript scan from any state', () => {
    const scan = nativeCdcScan();
    expect(scan).not.toBeNull();
    const state = new Int32Array(1);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 40_000 }), fc.integer(), fc.integer({ min: 0, max: 20 }), fc.integer(),
        fc.integer({ min: 0, max: 40_000 }), fc.integer({ min: -20_000, max: 20_000 }), fc.constantFrom(SMALL, { min: 64, avg: 256, max: 1024 }),
        (len, seed, gearSeed, h, from, baseDelta, params) => {
          const data = mixed(seed, len);
          const gear = gearFor(gearSeed);
          const p = resolveParams(params);
          const i = Math.min(from, len);
          const base = i + baseDelta;
          const want = scanReference(data, i, len, base, h | 0, gear, p);
          const cut = scan!(data, i, len, base, h | 0, gear, p.min, p.avg, p.max, p.maskS, p.maskL, state);
          expect(cut).toBe(want.cut);
          if (cut < 0) expect(state[0]).toBe(want.h);
        }),
      { numRuns: 400 },
    );
  });

  it('rejects a range outside the buffer or a bad gear table', () => {
    const scan = nativeCdcScan()!;
    const p = resolveParams(SMALL);
    const args = (buf: Uint8Array, i: number, end: number, gear: Int32Array) =>
      [buf, i, end, 0, 0, gear, p.min, p.avg, p.max, p.maskS, p.maskL, new Int32Array(1)] as const;
    expect(() => scan(...args(Buffer.alloc(10), 0, 11, GEAR))).toThrow(RangeError);
    expect(() => scan(...args(Buffer.alloc(10), 5, 4, GEAR))).toThrow(RangeError);
    expect(() => scan(...args(Buffer.alloc(10), 0, 10, new Int32Array(255)))).toThrow(RangeError);
  });
});

describe('chunker: FastCDC semantics (scaled-down params)', () => {
  it('findCut follows the format text exactly (literal reference implementation)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 150_000 }), fc.integer(), fc.boolean(), fc.integer({ min: 0, max: 20 }), (len, seed, structured, gearSeed) => {
        const data = structured ? mixed(seed, len) : prng(seed, len);
        const gear = gearFor(gearSeed);
        expect(cutsOf(data, gear, SMALL)).toEqual(referenceCuts(data, gear, SMALL));
      }),
      { numRuns: 150 },
    );
  });

  it('chunks concatenate to the input and respect min/max; boundaries do not depend on push sizes', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 200_000 }),
        fc.integer(),
        fc.boolean(),
        fc.array(fc.integer({ min: 1, max: 40_000 }), { minLength: 1, maxLength: 12 }),
        (len, seed, structured, sizes) => {
          const data = structured ? mixed(seed, len) : prng(seed, len);
          const expected = cutsOf(data, GEAR, SMALL);
          checkBounds(expected, len, SMALL);
          const chunks = chunkInPieces(data, GEAR, sizes, SMALL);
          expect(chunks.map((c) => c.length)).toEqual(expected);
          expect(Buffer.concat(chunks).equals(data)).toBe(true);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('detach() after each push: the caller may overwrite its one read buffer, and the chunks stay the same', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 120_000 }),
        fc.integer(),
        fc.array(fc.integer({ min: 1, max: 40_000 }), { minLength: 1, maxLength: 8 }),
        (len, seed, sizes) => {
          const data = mixed(seed, len);
          const c = new Chunker(GEAR, SMALL);
          const shared = Buffer.alloc(40_000);
          const out: Buffer[] = [];
          for (let pos = 0, k = 0; pos < len; k++) {
            const n = Math.min(sizes[k % sizes.length]!, len - pos);
            const piece = shared.subarray(0, n);
            data.copy(piece, 0, pos, pos + n);
            // the caller consumes (copies) the chunks before it reads again, as storeStream does
            for (const chunk of c.push(piece)) out.push(Buffer.from(chunk));
            c.detach();
            shared.fill(0xee); // the next read overwrites the buffer
            pos += n;
          }
          out.push(...c.finish().map((b) => Buffer.from(b)));
          expect(out.map((b) => b.length)).toEqual(cutsOf(data, GEAR, SMALL));
          expect(Buffer.concat(out).equals(data)).toBe(true);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('tiny pushes (1..3 bytes, empty pushes too) give the same chunks', () => {
    const data = mixed(7, 90_000);
    const expected = cutsOf(data, GEAR, SMALL);
    expect(chunkInPieces(data, GEAR, [1], SMALL).map((c) => c.length)).toEqual(expected);
    const withEmpty = chunkInPieces(data, GEAR, [3, 0, 1, 2, 0], SMALL);
    expect(withEmpty.map((c) => c.length)).toEqual(expected);
    expect(Buffer.concat(withEmpty).equals(data)).toBe(true);
  });

  it('findCut with eof=false reports 0 until the boundary is known, then the same cut', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 60_000 }), fc.integer(), fc.nat(), (len, seed, endSeed) => {
        const data = prng(seed, len);
        const full = findCut(data, 0, len, GEAR, SMALL, true);
        const end = len === 0 ? 0 : endSeed % (len + 1);
        const partial = findCut(data, 0, end, GEAR, SMALL, false);
        if (partial !== 0) expect(partial).toBe(full);
        else expect(end < full || (end === full && full === len && full < SMALL.max) || end === 0).toBe(true);
        if (end >= full && full < len) expect(partial).toBe(full);
      }),
      { numRuns: 300 },
    );
  });

  it('constant data gives max-size chunks', () => {
    const zeros = Buffer.alloc(100_000);
    const cuts = cutsOf(zeros, GEAR, SMALL);
    // a constant run drives h to a fixed point; with this gear table it never matches the masks
    expect(cuts).toEqual(referenceCuts(zeros, GEAR, SMALL));
    checkBounds(cuts, zeros.length, SMALL);
  });

  it('chunks inside one push are views of it; the chunker is reusable after finish()', () => {
    const data = prng(3, 200_000);
    const c = new Chunker(GEAR, SMALL);
    const first = c.push(data);
    expect(first.length).toBeGreaterThan(3);
    for (const ch of first) expect(ch.buffer).toBe(data.buffer);
    const rest = c.finish();
    expect(Buffer.concat([...first, ...rest]).equals(data)).toBe(true);
    expect(c.finish()).toEqual([]);
    const again = [...c.push(data), ...c.finish()];
    expect(again.map((x) => x.length)).toEqual([...first, ...rest].map((x) => x.length));
  });

  it('chunkStream over an async iterable gives the same chunks', async () => {
    const data = mixed(11, 300_000);
    const pieces: Buffer[] = [];
    for (let i = 0; i < data.length; i += 12_345) pieces.push(data.subarray(i, i + 12_345));
    const out: Buffer[] = [];
    for await (const ch of chunkStream(Readable.from(pieces), GEAR, SMALL)) out.push(ch);
    expect(out.map((c) => c.length)).toEqual(cutsOf(data, GEAR, SMALL));
    const none: Buffer[] = [];
    for await (const ch of chunkStream(Readable.from([] as Buffer[]), GEAR, SMALL)) none.push(ch);
    expect(none).toEqual([]);
  });

  it('different chunker keys give different boundaries', () => {
    const data = prng(5, 400_000);
    const a = cutsOf(data, gearFor(1), SMALL);
    const b = cutsOf(data, gearFor(2), SMALL);
    expect(a).not.toEqual(b);
    // and almost no boundary positions in common
    const pos = (cuts: number[]) => new Set(cuts.map((_, i) => cuts.slice(0, i + 1).reduce((x, y) => x + y, 0)));
    const pa = pos(a);
    const common = [...pos(b)].filter((x) => pa.has(x)).length;
    expect(common).toBeLessThan(a.length / 4);
  });
});

describe('chunker: real parameters (512 KiB / 1 MiB / 8 MiB)', () => {
  it('~32 MiB: bounds, push-size independence, plausible mean', () => {
    const data = prng(21, 32 * MiB + 12_345);
    const expected = cutsOf(data, GEAR);
    checkBounds(expected, data.length, DEFAULT_PARAMS);
    for (const sizes of [[64 * KiB], [1 * MiB], [8 * MiB + 1], [1, 100_000, 3 * MiB, 4097]]) {
      const chunks = chunkInPieces(data, GEAR, sizes);
      expect(chunks.map((c) => c.length)).toEqual(expected);
    }
    const mean = data.length / expected.length;
    expect(mean).toBeGreaterThan(0.7 * CHUNKER_AVG);
    expect(mean).toBeLessThan(2 * CHUNKER_AVG);
  });

  it('pinned boundaries for master key 00..1f on a fixed pseudo-random input', () => {
    const data = prng(42, 12 * MiB);
    expect(cutsOf(data, GEAR)).toEqual(PINNED_CUTS);
  });

  it('inserting or deleting a few bytes near the start leaves most chunks unchanged (~40 MiB)', () => {
    const data = prng(31, 40 * MiB);
    const base = ids(chunkInPieces(data, GEAR, [1 * MiB]));
    const inserted = Buffer.concat([data.subarray(0, 1000), Buffer.from('a few new bytes'), data.subarray(1000)]);
    const deleted = Buffer.concat([data.subarray(0, 300_000), data.subarray(300_010)]);
    for (const edited of [inserted, deleted]) {
      const after = new Set(ids(chunkInPieces(edited, GEAR, [1 * MiB])));
      const kept = base.filter((id) => after.has(id)).length;
      expect(kept / base.length).toBeGreaterThanOrEqual(0.8);
      expect(base.length - kept).toBeLessThanOrEqual(2);
    }
  });

  it('20 MiB of zeros → 8 MiB, 8 MiB, 4 MiB', () => {
    expect(cutsOf(Buffer.alloc(20 * MiB), GEAR)).toEqual([8 * MiB, 8 * MiB, 4 * MiB]);
  });
});

// From this implementation, which the literal reference above checks against the format text.
const PINNED_CUTS: number[] = [1432135, 1268771, 1350550, 1079557, 1401717, 1547985, 1110107, 1201316, 1417097, 773677];
