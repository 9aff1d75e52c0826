import { createCipheriv } from 'node:crypto';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { AuthError, OVERHEAD, open, seal, sealParts } from '../../src/repo/aead.js';
import { getSodium, type Sodium } from '../../src/repo/sodium.js';

/** Deterministic pseudo-random bytes (AES-128-CTR keystream of a seed). */
function prng(seed: number, length: number): Buffer {
  const key = Buffer.alloc(16);
  key.writeUInt32LE(seed >>> 0, 0);
  const c = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  return c.update(Buffer.alloc(length));
}

let sodium: Sodium;
beforeAll(async () => {
  sodium = await getSodium();
});

function libsodiumSeal(key: Uint8Array, pt: Uint8Array, ad: Uint8Array, nonce: Uint8Array): Buffer {
  return Buffer.concat([nonce, sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(pt, ad, null, nonce, key)]);
}

const bytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n });
// Lengths 0..100k, with 0 and the 64-byte ChaCha block edges drawn often.
const lengthArb = fc.oneof(
  fc.constant(0),
  fc.integer({ min: 1, max: 200 }),
  fc.constantFrom(63, 64, 65, 127, 128, 129, 4095, 4096, 4097, 65536, 100_000),
  fc.integer({ min: 0, max: 100_000 }),
);

describe('aead: XChaCha20-Poly1305 via HChaCha20 + node:crypto', () => {
  it('produces exactly libsodium crypto_aead_xchacha20poly1305_ietf_encrypt bytes, and opens them', () => {
    fc.assert(
      fc.property(bytes(32), bytes(24), fc.uint8Array({ maxLength: 80 }), lengthArb, fc.integer(), (key, nonce, ad, len, seed) => {
        const pt = prng(seed, len);
        const ours = seal(key, pt, ad, nonce);
        const theirs = libsodiumSeal(key, pt, ad, nonce);
        expect(ours.length).toBe(len + OVERHEAD);
        expect(ours.equals(theirs)).toBe(true);
        expect(open(key, theirs, ad).equals(pt)).toBe(true);
        // and libsodium opens ours
        const back = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(null, ours.subarray(24), ad, nonce, key);
        expect(Buffer.from(back).equals(pt)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('round-trips with a random nonce, and nonces differ', () => {
    const key = prng(1, 32);
    const ad = Buffer.from('lifeboat/v1/test');
    const a = seal(key, Buffer.from('hello'), ad);
    const b = seal(key, Buffer.from('hello'), ad);
    expect(a.subarray(0, 24).equals(b.subarray(0, 24))).toBe(false);
    expect(open(key, a, ad).toString()).toBe('hello');
    expect(open(key, b, ad).toString()).toBe('hello');
  });

  it('empty plaintext and empty associated data', () => {
    const key = prng(2, 32);
    const nonce = prng(3, 24);
    const s = seal(key, new Uint8Array(0), new Uint8Array(0), nonce);
    expect(s.length).toBe(OVERHEAD);
    expect(s.equals(libsodiumSeal(key, new Uint8Array(0), new Uint8Array(0), nonce))).toBe(true);
    expect(open(key, s, new Uint8Array(0)).length).toBe(0);
  });

  it('plaintext given as parts equals the concatenation; sealParts joins to seal', () => {
    fc.assert(
      fc.property(bytes(32), bytes(24), fc.array(fc.integer({ min: 0, max: 3000 }), { maxLength: 6 }), fc.integer(), (key, nonce, lens, seed) => {
        const parts = lens.map((l, i) => prng(seed + i, l));
        const whole = Buffer.concat(parts);
        const ad = prng(seed ^ 0x5555, 32);
        const expected = seal(key, whole, ad, nonce);
        expect(seal(key, parts, ad, nonce).equals(expected)).toBe(true);
        const p = sealParts(key, whole, ad, nonce);
        expect(Buffer.concat([p.nonce, p.ciphertext, p.tag]).equals(expected)).toBe(true);
      }),
      { numRuns: 100 },
    );
  });

  it('any flipped bit in nonce, ciphertext or tag → AuthError', () => {
    fc.assert(
      fc.property(bytes(32), fc.integer({ min: 0, max: 2000 }), fc.integer(), fc.nat(), fc.integer({ min: 0, max: 7 }), (key, len, seed, where, bit) => {
        const ad = prng(seed, 32);
        const sealed = seal(key, prng(seed + 1, len), ad);
        const i = where % sealed.length;
        const bad = Buffer.from(sealed);
        bad[i]! ^= 1 << bit;
        expect(() => open(key, bad, ad)).toThrow(AuthError);
      }),
      { numRuns: 500 },
    );
  });

  it('each region tampered explicitly: nonce, ciphertext, tag', () => {
    const key = prng(4, 32);
    const ad = prng(5, 32);
    const sealed = seal(key, prng(6, 1000), ad);
    for (const i of [0, 15, 16, 23, 24, 500, 24 + 999, sealed.length - 16, sealed.length - 1]) {
      const bad = Buffer.from(sealed);
      bad[i]! ^= 0x80;
      expect(() => open(key, bad, ad), `byte ${i}`).toThrow(AuthError);
    }
  });

  it('different associated data, or a different key → AuthError', () => {
    fc.assert(
      fc.property(bytes(32), fc.uint8Array({ maxLength: 40 }), fc.uint8Array({ maxLength: 40 }), (key, ad1, ad2) => {
        fc.pre(!Buffer.from(ad1).equals(Buffer.from(ad2)));
        const sealed = seal(key, Buffer.from('payload'), ad1);
        expect(() => open(key, sealed, ad2)).toThrow(AuthError);
      }),
      { numRuns: 200 },
    );
    const sealed = seal(prng(7, 32), Buffer.from('payload'), Buffer.alloc(0));
    expect(() => open(prng(8, 32), sealed, Buffer.alloc(0))).toThrow(AuthError);
  });

  it('truncated or extended input → AuthError', () => {
    const key = prng(9, 32);
    const ad = Buffer.from('ad');
    const sealed = seal(key, prng(10, 100), ad);
    for (let n = 0; n < OVERHEAD; n++) {
      expect(() => open(key, sealed.subarray(0, n), ad)).toThrow(AuthError);
      expect(() => open(key, new Uint8Array(n), ad)).toThrow(AuthError);
    }
    expect(() => open(key, sealed.subarray(0, sealed.length - 1), ad)).toThrow(AuthError);
    expect(() => open(key, Buffer.concat([sealed, Buffer.from([0])]), ad)).toThrow(AuthError);
  });

  it('rejects keys and nonces of the wrong size', () => {
    expect(() => seal(new Uint8Array(31), Buffer.alloc(1), Buffer.alloc(0))).toThrow(RangeError);
    expect(() => open(new Uint8Array(33), Buffer.alloc(64), Buffer.alloc(0))).toThrow(RangeError);
    expect(() => seal(new Uint8Array(32), Buffer.alloc(1), Buffer.alloc(0), new Uint8Array(12))).toThrow(RangeError);
  });

  it('works on views into larger buffers (byteOffset != 0)', () => {
    const backing = prng(11, 5000);
    const key = backing.subarray(7, 39);
    const pt = backing.subarray(100, 3100);
    const ad = backing.subarray(3, 35);
    const nonce = backing.subarray(50, 74);
    const sealed = seal(key, pt, ad, nonce);
    expect(sealed.equals(libsodiumSeal(Uint8Array.from(key), Uint8Array.from(pt), Uint8Array.from(ad), Uint8Array.from(nonce)))).toBe(true);
    const inBig = Buffer.concat([Buffer.alloc(13), sealed]).subarray(13);
    expect(open(key, inBig, ad).equals(pt)).toBe(true);
  });
});
