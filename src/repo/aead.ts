/**
 * XChaCha20-Poly1305 (IETF variant, as libsodium's crypto_aead_xchacha20poly1305_ietf_*),
 * built from HChaCha20 (one 64-byte block per call, hchacha20.ts) and node:crypto's
 * native ChaCha20-Poly1305 for the bulk work:
 *
 *   subkey = HChaCha20(key, nonce[0..16])
 *   (ct, tag) = ChaCha20-Poly1305(subkey, 00 00 00 00 ‖ nonce[16..24], ad, plaintext)
 *
 * Wire format of a sealed message: nonce(24) ‖ ciphertext ‖ tag(16), byte-identical to
 * libsodium's `nonce ‖ crypto_aead_xchacha20poly1305_ietf_encrypt(...)`.
 *
 * HChaCha20 is plain TypeScript (hchacha20.ts), so this module loads no WASM.
 */
import { createCipheriv, createDecipheriv, randomFillSync } from 'node:crypto';
import { hchacha20 } from './hchacha20.js';

export const KEY_BYTES = 32;
export const NONCE_BYTES = 24;
export const TAG_BYTES = 16;
/** Bytes a sealed message adds to its plaintext. */
export const OVERHEAD = NONCE_BYTES + TAG_BYTES;

/** Authentication failed: wrong key, wrong associated data, truncated or tampered input. */
export class AuthError extends Error {
  constructor(message = 'authentication failed: data is corrupt, tampered with, or the key is wrong') {
    super(message);
    this.name = 'AuthError';
  }
}

const ALGO = 'chacha20-poly1305';
const CIPHER_OPTS = { authTagLength: TAG_BYTES } as const;

function checkKey(key: Uint8Array): void {
  if (key.length !== KEY_BYTES) throw new RangeError(`AEAD key must be ${KEY_BYTES} bytes, got ${key.length}`);
}

/** The 12-byte IETF nonce for the inner ChaCha20-Poly1305: 4 zero bytes ‖ nonce[16..24]. */
function innerNonce(nonce: Uint8Array): Buffer {
  const iv = Buffer.alloc(12);
  iv.set(nonce.subarray(16, 24), 4);
  return iv;
}

function subkey(key: Uint8Array, nonce: Uint8Array): Uint8Array {
  return hchacha20(key, nonce.subarray(0, 16));
}

/** The three parts of a sealed message, for callers that write them out without joining them. */
export interface SealedParts {
  nonce: Buffer;
  ciphertext: Buffer;
  tag: Buffer;
}

/** Like {@link seal} but returns the parts separately (saves one copy of the ciphertext). */
export function sealParts(key: Uint8Array, plaintext: Uint8Array, ad: Uint8Array, nonce?: Uint8Array): SealedParts {
  checkKey(key);
  const n = Buffer.allocUnsafe(NONCE_BYTES);
  if (nonce === undefined) randomFillSync(n);
  else if (nonce.length !== NONCE_BYTES) throw new RangeError(`nonce must be ${NONCE_BYTES} bytes, got ${nonce.length}`);
  else n.set(nonce);
  const cipher = createCipheriv(ALGO, subkey(key, n), innerNonce(n), CIPHER_OPTS);
  if (ad.length > 0) cipher.setAAD(ad, { plaintextLength: plaintext.length });
  const ciphertext = cipher.update(plaintext);
  cipher.final();
  return { nonce: n, ciphertext, tag: cipher.getAuthTag() };
}

/** Plaintext given as one buffer, or as parts encrypted as if concatenated (no join copy). */
export type Plaintext = Uint8Array | readonly Uint8Array[];

function plaintextLength(plaintext: Plaintext): number {
  if (plaintext instanceof Uint8Array) return plaintext.length;
  let len = 0;
  for (const part of plaintext) len += part.length;
  return len;
}

/**
 * Plaintext is fed to the cipher in slices of this size. node:crypto's `update()` can't write
 * into a caller's buffer: it allocates its result and, for ChaCha20-Poly1305, allocates it
 * twice (room for input + 1 block byte, then a copy into an exact-size buffer). For a 1 MiB
 * update that is two fresh 1 MiB allocations (page faults, GC of external memory) per blob;
 * 64 KiB slices stay in malloc's reused small chunks and in cache, and cost 16 calls per MiB.
 * The ciphertext does not depend on how the plaintext is split.
 */
const SLICE = 64 * 1024;

/**
 * Like {@link seal}, but writes nonce(24) ‖ ciphertext ‖ tag(16) into `out` at `offset` (which
 * must have room for plaintext length + {@link OVERHEAD} bytes) instead of allocating; returns
 * the number of bytes written. `out` must not overlap the plaintext.
 */
export function sealInto(key: Uint8Array, plaintext: Plaintext, ad: Uint8Array, out: Uint8Array, offset = 0,
                         nonce?: Uint8Array): number {
  checkKey(key);
  const len = plaintextLength(plaintext);
  const total = NONCE_BYTES + len + TAG_BYTES;
  if (!Number.isInteger(offset) || offset < 0 || offset + total > out.length) {
    throw new RangeError(`sealInto: need ${total} bytes at offset ${offset}, the output has ${out.length}`);
  }
  const n = out.subarray(offset, offset + NONCE_BYTES);
  if (nonce === undefined) randomFillSync(n);
  else if (nonce.length !== NONCE_BYTES) throw new RangeError(`nonce must be ${NONCE_BYTES} bytes, got ${nonce.length}`);
  else n.set(nonce);
  const cipher = createCipheriv(ALGO, subkey(key, n), innerNonce(n), CIPHER_OPTS);
  if (ad.length > 0) cipher.setAAD(ad, { plaintextLength: len });
  let pos = offset + NONCE_BYTES;
  const put = (part: Uint8Array): void => {
    for (let at = 0; at < part.length; at += SLICE) {
      const ct = cipher.update(part.subarray(at, at + SLICE));
      out.set(ct, pos);
      pos += ct.length;
    }
  };
  if (plaintext instanceof Uint8Array) put(plaintext);
  else for (const part of plaintext) put(part);
  cipher.final();
  out.set(cipher.getAuthTag(), pos);
  return total;
}

/**
 * Encrypts and authenticates `plaintext` with associated data `ad`.
 * Returns nonce(24) ‖ ciphertext ‖ tag(16). A random nonce is drawn when none is given.
 */
export function seal(key: Uint8Array, plaintext: Plaintext, ad: Uint8Array, nonce?: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(NONCE_BYTES + plaintextLength(plaintext) + TAG_BYTES);
  sealInto(key, plaintext, ad, out, 0, nonce);
  return out;
}

/**
 * Verifies and decrypts a message produced by {@link seal} (or by libsodium's
 * xchacha20poly1305_ietf with the nonce prepended). Throws {@link AuthError} on any failure.
 */
export function open(key: Uint8Array, sealed: Uint8Array, ad: Uint8Array): Buffer {
  checkKey(key);
  const len = sealed.length - OVERHEAD;
  if (len < 0) throw new AuthError(`sealed message too short: ${sealed.length} bytes, need at least ${OVERHEAD}`);
  const nonce = sealed.subarray(0, NONCE_BYTES);
  const decipher = createDecipheriv(ALGO, subkey(key, nonce), innerNonce(nonce), CIPHER_OPTS);
  decipher.setAuthTag(sealed.subarray(NONCE_BYTES + len));
  if (ad.length > 0) decipher.setAAD(ad, { plaintextLength: len });
  const plaintext = decipher.update(sealed.subarray(NONCE_BYTES, NONCE_BYTES + len));
  try {
    decipher.final();
  } catch {
    plaintext.fill(0);
    throw new AuthError();
  }
  return plaintext;
}

/**
 * Like {@link open}, but decrypts into `out` (at `offset`; room for sealed length − OVERHEAD
 * bytes) in {@link SLICE}-sized steps instead of allocating the plaintext; returns its length.
 * On failure the bytes written to `out` are zeroed and {@link AuthError} is thrown: nothing in
 * `out` may be used unless this returns.
 */
export function openInto(key: Uint8Array, sealed: Uint8Array, ad: Uint8Array, out: Uint8Array, offset = 0): number {
  checkKey(key);
  const len = sealed.length - OVERHEAD;
  if (len < 0) throw new AuthError(`sealed message too short: ${sealed.length} bytes, need at least ${OVERHEAD}`);
  if (!Number.isInteger(offset) || offset < 0 || offset + len > out.length) {
    throw new RangeError(`openInto: need ${len} bytes at offset ${offset}, the output has ${out.length}`);
  }
  const nonce = sealed.subarray(0, NONCE_BYTES);
  const decipher = createDecipheriv(ALGO, subkey(key, nonce), innerNonce(nonce), CIPHER_OPTS);
  decipher.setAuthTag(sealed.subarray(NONCE_BYTES + len));
  if (ad.length > 0) decipher.setAAD(ad, { plaintextLength: len });
  let pos = offset;
  const ct = sealed.subarray(NONCE_BYTES, NONCE_BYTES + len);
  for (let at = 0; at < len; at += SLICE) {
    const pt = decipher.update(ct.subarray(at, at + SLICE));
    out.set(pt, pos);
    pos += pt.length;
  }
  try {
    decipher.final();
  } catch {
    out.fill(0, offset, offset + len);
    throw new AuthError();
  }
  return len;
}
