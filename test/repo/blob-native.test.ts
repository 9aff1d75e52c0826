/**
 * The native blob path (native/blob.c) against the TypeScript one (aead.ts, compress.ts,
 * blob.ts's openBlob): blobs sealed by either open with the other, byte for byte, and every kind
 * of damage is reported the same way.
 */
import { createCipheriv, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { open as aeadOpen, OVERHEAD, sealInto } from '../../src/repo/aead.js';
import { blobPayload, blobsAreNative, openBlob, openBlobInto, sealBlob, sealBlobInto } from '../../src/repo/blob.js';
import { decodePayload, ENCODING_RAW, ENCODING_ZSTD } from '../../src/repo/compress.js';
import { IntegrityError } from '../../src/repo/errors.js';
import { blobId } from '../../src/repo/keys-derive.js';
import { nativeBlob, OPEN_RESULT } from '../../src/native/index.js';

const keys = { encryption: randomBytes(32), blobId: randomBytes(32) };

function prng(seed: number, length: number): Buffer {
  const key = Buffer.alloc(16);
  key.writeUInt32LE(seed >>> 0, 0);
  return createCipheriv('aes-128-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(length));
}

/** Random, text-like or mixed bytes: every payload encoding and the incompressibility pre-check. */
function data(kind: number, seed: number, length: number): Buffer {
  if (kind === 0) return prng(seed, length);
  const text = Buffer.from('lifeboat keeps your data safe; '.repeat(Math.ceil(length / 31) + 1)).subarray(0, length);
  if (kind === 1) return text;
  const out = Buffer.from(text);
  prng(seed, length >> 1).copy(out, length >> 2);
  return out;
}

/** The TypeScript path's seal, whichever path sealBlob takes. */
function sealTs(d: Buffer, level = 3): { id: Buffer; sealed: Buffer } {
  const blob = blobPayload(keys, d, undefined, level);
  const out = Buffer.alloc(blob.sealedLength);
  sealInto(keys.encryption, blob.payload, blob.id, out, 0);
  return { id: blob.id, sealed: out };
}

/** A sealed blob with the given payload (flag byte and body) and AD = id. */
function sealPayload(payload: Buffer, id: Buffer): Buffer {
  const out = Buffer.alloc(payload.length + OVERHEAD);
  sealInto(keys.encryption, payload, id, out, 0);
  return out;
}

function openedInto(id: Buffer, sealed: Buffer, rawLength: number): Buffer {
  const out = Buffer.alloc(rawLength);
  openBlobInto(keys, id, sealed, out, 'pack p');
  return out;
}

describe('native blobs (native/blob.c)', () => {
  it('are in use when the native helper is built (libzstd and OpenSSL are there)', () => {
    expect(blobsAreNative).toBe(true);
    expect(nativeBlob()).not.toBeNull();
  });

  it('a blob sealed natively opens with the TypeScript path, and the other way round', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 }), fc.integer(), fc.integer({ min: 0, max: 400_000 }), fc.boolean(), (kind, seed, len, giveId) => {
        const d = data(kind, seed, len);
        const id = blobId(keys.blobId, d);
        const mine = sealBlobInto(keys, d, giveId ? id : undefined, 3, (n) => new ArrayBuffer(n + (seed & 7)));
        expect(mine.id.equals(id)).toBe(true);
        expect(mine.id.buffer.byteLength).toBe(32);
        const sealed = Buffer.from(mine.sealed, 0, mine.sealedLength);
        expect(openBlob(keys, id, sealed, 'x').equals(d)).toBe(true);
        // the payload: raw only when zstd would not make it smaller
        const payload = aeadOpen(keys.encryption, sealed, id);
        expect([ENCODING_RAW, ENCODING_ZSTD]).toContain(payload[0]);
        if (payload[0] === ENCODING_RAW) expect(payload.length).toBe(len + 1);
        else expect(payload.length).toBeLessThan(len + 1);
        if (kind === 1 && len >= 1000) expect(payload[0]).toBe(ENCODING_ZSTD);
        if (kind === 0 && len >= 128 * 1024) expect(payload[0]).toBe(ENCODING_RAW);
        expect(decodePayload(payload).equals(d)).toBe(true);

        const theirs = sealTs(d);
        expect(openedInto(theirs.id, theirs.sealed, len).equals(d)).toBe(true);
        expect(openedInto(id, sealed, len).equals(d)).toBe(true);
      }),
      { numRuns: 60 },
    );
  });

  it('sealBlob (inline) gives the same blob as the pool path; an empty blob seals and opens', () => {
    for (const d of [Buffer.alloc(0), Buffer.from('x'), data(1, 1, 70_000)]) {
      const b = sealBlob(keys, 'tree', d);
      expect(b.rawLength).toBe(d.length);
      expect(b.sealed.length).toBeLessThanOrEqual(d.length + 1 + OVERHEAD);
      expect(openBlob(keys, b.id, b.sealed, 'x').equals(d)).toBe(true);
      expect(openedInto(b.id, b.sealed, d.length).equals(d)).toBe(true);
    }
  });

  it('nonces are fresh: the same data seals to different bytes with the same id', () => {
    const d = data(1, 2, 5000);
    const a = sealBlob(keys, 'data', d);
    const b = sealBlob(keys, 'data', d);
    expect(a.id.equals(b.id)).toBe(true);
    expect(a.sealed.subarray(0, 24).equals(b.sealed.subarray(0, 24))).toBe(false);
  });

  it('damage is reported as the TypeScript path reports it', () => {
    const d = data(2, 3, 300_000);
    const { id, sealed } = sealBlob(keys, 'data', d);
    const expectError = (f: () => unknown, reason: string | RegExp) => {
      let err: unknown;
      try {
        f();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(IntegrityError);
      const e = err as IntegrityError;
      expect(e.object).toBe(`blob ${id.toString('hex')} in pack p`);
      if (typeof reason === 'string') expect(e.reason).toBe(reason);
      else expect(e.reason).toMatch(reason);
    };
    for (const at of [0, 24, 100, sealed.length - 1]) {
      const bad = Buffer.from(sealed);
      bad[at]! ^= 0x40;
      expectError(() => openedInto(id, bad, d.length), 'authentication failed');
    }
    expectError(() => openedInto(id, sealed.subarray(0, 30), d.length), 'authentication failed');
    const otherId = Buffer.from(id);
    otherId[0]! ^= 1;
    expect(() => openedInto(otherId, sealed, d.length)).toThrow(/authentication failed/);
    // authentic, but the plaintext does not hash to the id
    const forged = sealPayload(Buffer.concat([Buffer.from([ENCODING_RAW]), Buffer.from('not the data')]), id);
    expectError(() => openedInto(id, forged, 12), 'content does not match its id');
    // authentic payloads the native decoder hands to the TypeScript one, which names the fault
    const wrongLength = sealPayload(Buffer.concat([Buffer.from([ENCODING_RAW]), d.subarray(0, 10)]), id);
    expectError(() => openedInto(id, wrongLength, d.length), `cannot decode payload: raw payload holds 10 bytes, expected ${d.length}`);
    const corrupt = sealPayload(Buffer.concat([Buffer.from([ENCODING_ZSTD]), Buffer.from('garbage, not a frame')]), id);
    expectError(() => openedInto(id, corrupt, d.length), /^cannot decode payload: corrupt zstd payload/);
    const unknown = sealPayload(Buffer.from([7, 1, 2, 3]), id);
    expectError(() => openedInto(id, unknown, 3), 'cannot decode payload: unknown payload encoding 0x07');
  });

  it('the native calls check their arguments', () => {
    const n = nativeBlob()!;
    const d = Buffer.alloc(100, 1);
    const out = new Uint8Array(200);
    const idOut = new Uint8Array(32);
    expect(() => n.seal(keys.encryption.subarray(0, 31), keys.blobId, d, null, 3, out, idOut)).toThrow(RangeError);
    expect(() => n.seal(keys.encryption, keys.blobId, d, null, 3, new Uint8Array(140), idOut)).toThrow(RangeError);
    expect(() => n.seal(keys.encryption, keys.blobId, d, Buffer.alloc(31), 3, out, idOut)).toThrow(RangeError);
    const shared = Buffer.alloc(400);
    expect(() => n.seal(keys.encryption, keys.blobId, shared.subarray(0, 100), null, 3, shared.subarray(50), idOut)).toThrow(RangeError);
    const len = n.seal(keys.encryption, keys.blobId, d, null, 3, out, idOut);
    const back = new Uint8Array(100);
    expect(n.open(keys.encryption, keys.blobId, out.subarray(0, len), idOut, back)).toBe(OPEN_RESULT.opened);
    expect(Buffer.from(back).equals(d)).toBe(true);
    expect(() => n.open(keys.encryption, keys.blobId, out.subarray(0, len), idOut.subarray(0, 16), back)).toThrow(RangeError);
  });
});
