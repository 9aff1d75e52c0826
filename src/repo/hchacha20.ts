/**
 * HChaCha20 (draft-irtf-cfrg-xchacha §2.2) in plain TypeScript: the XChaCha20 subkey from a
 * 32-byte key and the first 16 bytes of the 24-byte nonce. One 64-byte ChaCha20 block
 * without the final addition, words 0..3 and 12..15 out. ≈ 1 µs per call, once per sealed
 * message, so the bulk cipher (node:crypto's ChaCha20-Poly1305) stays native and libsodium's
 * WASM (≈ 16 MiB of linear memory per thread once instantiated) is loaded only where Argon2id
 * runs (kdf.ts). Byte-identical to libsodium's crypto_core_hchacha20 (test/repo/hchacha20.test.ts).
 */
const s = new Uint32Array(16);

function rotl(v: number, n: number): number {
  return (v << n) | (v >>> (32 - n));
}

function readLE(b: Uint8Array, i: number): number {
  return (b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24)) >>> 0;
}

export function hchacha20(key: Uint8Array, nonce16: Uint8Array): Buffer {
  if (key.length !== 32) throw new RangeError(`HChaCha20 key must be 32 bytes, got ${key.length}`);
  if (nonce16.length < 16) throw new RangeError(`HChaCha20 input must be 16 bytes, got ${nonce16.length}`);
  let x0 = 0x61707865, x1 = 0x3320646e, x2 = 0x79622d32, x3 = 0x6b206574;
  let x4 = readLE(key, 0), x5 = readLE(key, 4), x6 = readLE(key, 8), x7 = readLE(key, 12);
  let x8 = readLE(key, 16), x9 = readLE(key, 20), x10 = readLE(key, 24), x11 = readLE(key, 28);
  let x12 = readLE(nonce16, 0), x13 = readLE(nonce16, 4), x14 = readLE(nonce16, 8), x15 = readLE(nonce16, 12);
  for (let i = 0; i < 10; i++) {
    // column round
    x0 = (x0 + x4) | 0; x12 = rotl(x12 ^ x0, 16); x8 = (x8 + x12) | 0; x4 = rotl(x4 ^ x8, 12);
    x0 = (x0 + x4) | 0; x12 = rotl(x12 ^ x0, 8); x8 = (x8 + x12) | 0; x4 = rotl(x4 ^ x8, 7);
    x1 = (x1 + x5) | 0; x13 = rotl(x13 ^ x1, 16); x9 = (x9 + x13) | 0; x5 = rotl(x5 ^ x9, 12);
    x1 = (x1 + x5) | 0; x13 = rotl(x13 ^ x1, 8); x9 = (x9 + x13) | 0; x5 = rotl(x5 ^ x9, 7);
    x2 = (x2 + x6) | 0; x14 = rotl(x14 ^ x2, 16); x10 = (x10 + x14) | 0; x6 = rotl(x6 ^ x10, 12);
    x2 = (x2 + x6) | 0; x14 = rotl(x14 ^ x2, 8); x10 = (x10 + x14) | 0; x6 = rotl(x6 ^ x10, 7);
    x3 = (x3 + x7) | 0; x15 = rotl(x15 ^ x3, 16); x11 = (x11 + x15) | 0; x7 = rotl(x7 ^ x11, 12);
    x3 = (x3 + x7) | 0; x15 = rotl(x15 ^ x3, 8); x11 = (x11 + x15) | 0; x7 = rotl(x7 ^ x11, 7);
    // diagonal round
    x0 = (x0 + x5) | 0; x15 = rotl(x15 ^ x0, 16); x10 = (x10 + x15) | 0; x5 = rotl(x5 ^ x10, 12);
    x0 = (x0 + x5) | 0; x15 = rotl(x15 ^ x0, 8); x10 = (x10 + x15) | 0; x5 = rotl(x5 ^ x10, 7);
    x1 = (x1 + x6) | 0; x12 = rotl(x12 ^ x1, 16); x11 = (x11 + x12) | 0; x6 = rotl(x6 ^ x11, 12);
    x1 = (x1 + x6) | 0; x12 = rotl(x12 ^ x1, 8); x11 = (x11 + x12) | 0; x6 = rotl(x6 ^ x11, 7);
    x2 = (x2 + x7) | 0; x13 = rotl(x13 ^ x2, 16); x8 = (x8 + x13) | 0; x7 = rotl(x7 ^ x8, 12);
    x2 = (x2 + x7) | 0; x13 = rotl(x13 ^ x2, 8); x8 = (x8 + x13) | 0; x7 = rotl(x7 ^ x8, 7);
    x3 = (x3 + x4) | 0; x14 = rotl(x14 ^ x3, 16); x9 = (x9 + x14) | 0; x4 = rotl(x4 ^ x9, 12);
    x3 = (x3 + x4) | 0; x14 = rotl(x14 ^ x3, 8); x9 = (x9 + x14) | 0; x4 = rotl(x4 ^ x9, 7);
  }
  s[0] = x0; s[1] = x1; s[2] = x2; s[3] = x3; s[4] = x12; s[5] = x13; s[6] = x14; s[7] = x15;
  const out = Buffer.allocUnsafe(32);
  for (let i = 0; i < 8; i++) out.writeUInt32LE(s[i]!, i * 4);
  return out;
}
