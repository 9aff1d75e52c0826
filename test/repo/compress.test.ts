import { createCipheriv } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import binding from 'zstd-napi/binding.js';
import {
  decodePayload,
  DEFAULT_MAX_SIZE,
  encodePayload,
  encodePayloadParts,
  ENCODING_RAW,
  ENCODING_ZSTD,
  looksIncompressible,
  PayloadError,
} from '../../src/repo/compress.js';
import { sqlText } from '../helpers/repo.js';

function prng(seed: number, length: number): Buffer {
  const key = Buffer.alloc(16);
  key.writeUInt32LE(seed >>> 0, 0);
  return createCipheriv('aes-128-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(length));
}


function roundTrip(data: Buffer): Buffer {
  const enc = encodePayload(data);
  const dec = decodePayload(enc);
  expect(dec.equals(data)).toBe(true);
  const [head, body] = encodePayloadParts(data);
  expect(Buffer.concat([head, body]).equals(enc)).toBe(true);
  return enc;
}

describe('compress: payload encoding', () => {
  it('round-trips empty, zeros, text and random data, choosing the encoding', () => {
    const empty = roundTrip(Buffer.alloc(0));
    expect([...empty]).toEqual([ENCODING_RAW]);

    for (const n of [1, 100, 4096, 1 << 20, 3 << 20]) {
      const zeros = roundTrip(Buffer.alloc(n));
      if (n >= 100) {
        expect(zeros[0]).toBe(ENCODING_ZSTD);
        expect(zeros.length).toBeLessThan(n / 4 + 20);
      }
    }
    const text = roundTrip(sqlText(2 << 20));
    expect(text[0]).toBe(ENCODING_ZSTD);
    expect(text.length).toBeLessThan((2 << 20) / 3);

    for (const n of [1, 10, 1000, 100_000, 200_000, 1 << 20]) {
      const enc = roundTrip(prng(n, n));
      expect(enc[0]).toBe(ENCODING_RAW);
      expect(enc.length).toBe(n + 1);
    }
  });

  it('a one-byte input is stored raw (zstd can only make it bigger)', () => {
    expect([...encodePayload(Buffer.from([42]))]).toEqual([ENCODING_RAW, 42]);
  });

  it('raw payloads decode to a view without copying', () => {
    const enc = Buffer.concat([Buffer.from([ENCODING_RAW]), Buffer.from('abc')]);
    const dec = decodePayload(enc);
    expect(dec.toString()).toBe('abc');
    expect(dec.buffer).toBe(enc.buffer);
  });

  it('the incompressible pre-check does not lose compressible parts of mixed blobs', () => {
    const random = prng(99, 1 << 20);
    const text = sqlText(1 << 20);
    expect(looksIncompressible(random)).toBe(true);
    expect(looksIncompressible(text)).toBe(false);
    // mostly random with compressible text at the end (the last sample covers it)
    const tail = Buffer.concat([random.subarray(0, 900 * 1024), text.subarray(0, 124 * 1024)]);
    const tailEnc = roundTrip(tail);
    expect(tailEnc[0]).toBe(ENCODING_ZSTD);
    expect(tailEnc.length).toBeLessThan(tail.length * 0.95);
    // 64 KiB stripes of text and random
    const stripes = Buffer.alloc(1 << 20);
    for (let o = 0; o < stripes.length; o += 65536) ((o >> 16) & 1 ? random : text).copy(stripes, o, o, o + 65536);
    expect(roundTrip(stripes)[0]).toBe(ENCODING_ZSTD);
    // small inputs skip the pre-check
    expect(looksIncompressible(random.subarray(0, 100_000))).toBe(false);
  });

  it('property: any mix of random, repeated and text segments round-trips', () => {
    const segment = fc.oneof(
      fc.record({ kind: fc.constant('random' as const), n: fc.integer({ min: 0, max: 200_000 }), seed: fc.integer() }),
      fc.record({ kind: fc.constant('fill' as const), n: fc.integer({ min: 0, max: 200_000 }), seed: fc.integer({ min: 0, max: 255 }) }),
      fc.record({ kind: fc.constant('text' as const), n: fc.integer({ min: 0, max: 200_000 }), seed: fc.integer({ min: 1 }) }),
    );
    fc.assert(
      fc.property(fc.array(segment, { maxLength: 6 }), fc.integer({ min: 1, max: 9 }), (segs, level) => {
        const data = Buffer.concat(
          segs.map((s) => (s.kind === 'random' ? prng(s.seed, s.n) : s.kind === 'fill' ? Buffer.alloc(s.n, s.seed) : sqlText(s.n, s.seed))),
        );
        const enc = encodePayload(data, level);
        expect(enc.length).toBeLessThanOrEqual(data.length + 1);
        expect(decodePayload(enc).equals(data)).toBe(true);
      }),
      { numRuns: 60 },
    );
  });

  it('refuses an empty payload and unknown encodings', () => {
    expect(() => decodePayload(Buffer.alloc(0))).toThrow(PayloadError);
    for (const flag of [0x02, 0x10, 0x80, 0xff]) {
      expect(() => decodePayload(Buffer.from([flag, 1, 2, 3]))).toThrow(/unknown payload encoding/);
    }
  });

  it('refuses corrupt, truncated or trailing zstd data with a clear error', () => {
    const enc = encodePayload(sqlText(300_000));
    expect(enc[0]).toBe(ENCODING_ZSTD);
    expect(() => decodePayload(Buffer.from([ENCODING_ZSTD]))).toThrow(/corrupt zstd payload/);
    expect(() => decodePayload(Buffer.from([ENCODING_ZSTD, 1, 2, 3, 4, 5, 6, 7, 8]))).toThrow(/corrupt zstd payload/);
    expect(() => decodePayload(enc.subarray(0, enc.length - 1))).toThrow(/corrupt zstd payload/);
    expect(() => decodePayload(enc.subarray(0, 20))).toThrow(/corrupt zstd payload/);
    expect(() => decodePayload(Buffer.concat([enc, Buffer.from([0])]))).toThrow(/after the frame/);
    // two frames back to back are not "one zstd frame"
    expect(() => decodePayload(Buffer.concat([enc, enc.subarray(1)]))).toThrow(PayloadError);
    // flipped bytes in the middle: either an error or (rarely, zstd has no checksum here) other
    // bytes, never a crash; the AEAD layer above catches tampering anyway
    for (let i = 10; i < enc.length; i += 97) {
      const bad = Buffer.from(enc);
      bad[i]! ^= 0xff;
      try {
        decodePayload(bad);
      } catch (err) {
        expect(err).toBeInstanceOf(PayloadError);
      }
    }
  });

  it('guards against decompression bombs (declared content size)', () => {
    const bomb = encodePayload(Buffer.alloc(DEFAULT_MAX_SIZE + 1));
    expect(bomb.length).toBeLessThan(10_000);
    expect(() => decodePayload(bomb)).toThrow(/more than the limit/);
    const ok = encodePayload(Buffer.alloc(2 << 20, 7));
    expect(() => decodePayload(ok, 1 << 20)).toThrow(/more than the limit/);
    expect(decodePayload(ok, 2 << 20).length).toBe(2 << 20);
  });

  it('decodes frames without a content size, still bounded', () => {
    const data = sqlText(3 << 20);
    const cctx = new binding.CCtx();
    cctx.setParameter(binding.CParameter.compressionLevel, 3);
    cctx.setParameter(binding.CParameter.contentSizeFlag, 0);
    const dst = Buffer.allocUnsafe(binding.compressBound(data.length));
    const n = cctx.compress2(dst, data);
    const frame = dst.subarray(0, n);
    expect(binding.getFrameContentSize(frame)).toBeNull();
    const payload = Buffer.concat([Buffer.from([ENCODING_ZSTD]), frame]);
    expect(decodePayload(payload).equals(data)).toBe(true);
    expect(() => decodePayload(payload, 1 << 20)).toThrow(/more than the limit/);
    expect(decodePayload(payload, 3 << 20).equals(data)).toBe(true);
    expect(() => decodePayload(payload.subarray(0, payload.length - 3))).toThrow(/corrupt zstd payload/);
  });
});
