import { timingSafeEqual } from 'node:crypto';
import { OVERHEAD, open as aeadOpen, openInto as aeadOpenInto, seal, sealInto } from './aead.js';
import { DEFAULT_LEVEL, decodePayload, decodePayloadInto, encodePayloadParts } from './compress.js';
import { IntegrityError } from './errors.js';
import { blobId } from './keys-derive.js';
import { toHex } from '../util/hex.js';
import { nativeBlob, OPEN_RESULT } from '../native/index.js';

/**
 * Blobs are sealed and opened in one native call when the helper, libzstd and OpenSSL are there
 * (native/blob.c: the same bytes, without node:crypto's objects and buffers per blob); the
 * TypeScript path below is the reference and the fallback.
 */
const native = nativeBlob();

/** True when blobs are sealed and opened natively. */
export const blobsAreNative = native !== null;

export type BlobType = 'data' | 'tree';

/** A blob ready for a pack: its id, its sealed bytes and its plaintext length. */
export interface SealedBlob {
  id: Buffer;
  type: BlobType;
  sealed: Buffer;
  rawLength: number;
}

/** id = HMAC-SHA-256(K_id, data); sealed = seal(K_enc, payload(data), AD = id) — format §5. */
export function sealBlob(
  keys: { encryption: Uint8Array; blobId: Uint8Array },
  type: BlobType,
  data: Buffer,
  id?: Buffer,
  level?: number,
): SealedBlob {
  if (native !== null) {
    const r = sealBlobInto(keys, data, id, level, (n) => new ArrayBuffer(n));
    return { id: r.id, type, sealed: Buffer.from(r.sealed, 0, r.sealedLength), rawLength: data.length };
  }
  id ??= blobId(keys.blobId, data);
  // the payload's flag byte and body are sealed as parts: a raw body is never copied, and a
  // compressed one is encrypted straight out of the thread's compression scratch buffer
  return { id, type, sealed: seal(keys.encryption, encodePayloadParts(data, level, true), id), rawLength: data.length };
}

/**
 * The first half of {@link sealBlob}, for callers that pick the output buffer themselves once
 * they know the size (the seal pool's workers recycle them): id, payload parts and the sealed
 * length. Seal with `sealInto(keys.encryption, payload, id, out)` before the next call in this
 * thread — a compressed payload lives in a reused scratch buffer.
 */
export function blobPayload(
  keys: { encryption: Uint8Array; blobId: Uint8Array },
  data: Buffer,
  id: Buffer = blobId(keys.blobId, data),
  level?: number,
): { id: Buffer; payload: [Buffer, Buffer]; sealedLength: number } {
  const payload = encodePayloadParts(data, level, true);
  return { id, payload, sealedLength: OVERHEAD + payload[0].length + payload[1].length };
}

/** A blob sealed by {@link sealBlobInto}: its id, and its sealed bytes at the start of `sealed`. */
export interface SealedInto {
  id: Buffer;
  sealed: ArrayBuffer;
  sealedLength: number;
}

/**
 * {@link sealBlob} into a buffer the caller picks: `alloc(n)` must return an ArrayBuffer of at
 * least n bytes (the seal pool's workers recycle them). Natively n is the data's length plus 41
 * (the largest a sealed blob can be); in TypeScript it is the exact sealed length. The id is
 * a Buffer over its own 32-byte ArrayBuffer.
 */
export function sealBlobInto(
  keys: { encryption: Uint8Array; blobId: Uint8Array },
  data: Uint8Array,
  id: Uint8Array | undefined,
  level: number | undefined,
  alloc: (n: number) => ArrayBuffer,
): SealedInto {
  if (native !== null) {
    const sealed = alloc(data.length + 1 + OVERHEAD);
    const idOut = Buffer.from(new ArrayBuffer(32));
    const sealedLength = native.seal(keys.encryption, keys.blobId, data, id ?? null, level ?? DEFAULT_LEVEL, new Uint8Array(sealed), idOut);
    return { id: idOut, sealed, sealedLength };
  }
  const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const blob = blobPayload(keys, bytes, id === undefined ? undefined : Buffer.from(id.buffer, id.byteOffset, id.byteLength), level);
  const sealed = alloc(blob.sealedLength);
  sealInto(keys.encryption, blob.payload, blob.id, new Uint8Array(sealed), 0);
  let idBuf = blob.id;
  if (idBuf.byteOffset !== 0 || idBuf.byteLength !== idBuf.buffer.byteLength) idBuf = Buffer.from(Uint8Array.from(idBuf).buffer);
  return { id: idBuf, sealed, sealedLength: blob.sealedLength };
}

/** Opens a sealed blob and checks that its plaintext hashes to its id. */
export function openBlob(
  keys: { encryption: Uint8Array; blobId: Uint8Array },
  id: Buffer,
  sealed: Buffer,
  where: string,
): Buffer {
  const name = `blob ${toHex(id)} in ${where}`;
  let payload: Buffer;
  try {
    payload = aeadOpen(keys.encryption, sealed, id);
  } catch {
    throw new IntegrityError(name, 'authentication failed');
  }
  let data: Buffer;
  try {
    data = decodePayload(payload);
  } catch (e) {
    throw new IntegrityError(name, `cannot decode payload: ${(e as Error).message}`);
  }
  const actual = blobId(keys.blobId, data);
  if (!timingSafeEqual(actual, id)) throw new IntegrityError(name, 'content does not match its id');
  return data;
}

/** Per-thread scratch for decrypted payloads ({@link openBlobInto}), grown to the largest seen. */
let openScratch: Buffer | null = null;

/**
 * {@link openBlob} into `out`, which must be exactly the blob's plaintext length (from the
 * index): decrypts into a reused scratch buffer, decodes into `out`, and checks that `out`
 * hashes to `id`. Throws IntegrityError (naming `where`) on any failure; `out` is then garbage.
 */
export function openBlobInto(
  keys: { encryption: Uint8Array; blobId: Uint8Array },
  id: Buffer,
  sealed: Uint8Array,
  out: Buffer,
  where: string,
): void {
  if (native !== null) {
    const r = native.open(keys.encryption, keys.blobId, sealed, id, out);
    if (r === OPEN_RESULT.opened) return;
    if (r === OPEN_RESULT.authFailed) throw new IntegrityError(`blob ${toHex(id)} in ${where}`, 'authentication failed');
    if (r === OPEN_RESULT.idMismatch) throw new IntegrityError(`blob ${toHex(id)} in ${where}`, 'content does not match its id');
    // a payload the native decoder leaves alone (corrupt, or unusual): the TypeScript path says why
  }
  const payloadLen = sealed.length - OVERHEAD;
  if (openScratch === null || openScratch.length < payloadLen) {
    openScratch = Buffer.allocUnsafe(Math.max(1, Math.ceil(payloadLen / (1 << 20))) * (1 << 20)); // 1 MiB steps
  }
  try {
    aeadOpenInto(keys.encryption, sealed, id, openScratch, 0);
  } catch {
    throw new IntegrityError(`blob ${toHex(id)} in ${where}`, 'authentication failed');
  }
  try {
    decodePayloadInto(openScratch.subarray(0, payloadLen), out);
  } catch (e) {
    throw new IntegrityError(`blob ${toHex(id)} in ${where}`, `cannot decode payload: ${(e as Error).message}`);
  }
  if (!timingSafeEqual(blobId(keys.blobId, out), id)) throw new IntegrityError(`blob ${toHex(id)} in ${where}`, 'content does not match its id');
}

/**
 * Opens the blobs of one ranged read (`input`; each blob's sealed bytes at `offset` in it) into
 * `out`, blob i at the sum of the raw lengths before it. Returns per blob null (verified) or
 * the error's message; a failed blob's bytes in `out` are garbage.
 */
export function openBlobsInto(
  keys: { encryption: Uint8Array; blobId: Uint8Array },
  input: Buffer,
  blobs: ReadonlyArray<{ id: Uint8Array; offset: number; length: number; rawLength: number }>,
  out: Buffer,
  where: string,
): Array<string | null> {
  const errors: Array<string | null> = [];
  let pos = 0;
  for (const b of blobs) {
    const dst = out.subarray(pos, pos + b.rawLength);
    pos += b.rawLength;
    try {
      if (b.offset < 0 || b.offset + b.length > input.length) throw new Error(`blob ${toHex(b.id)}: outside the range read`);
      if (dst.length !== b.rawLength) throw new Error('output buffer too small');
      const id = Buffer.from(b.id.buffer, b.id.byteOffset, b.id.byteLength);
      openBlobInto(keys, id, input.subarray(b.offset, b.offset + b.length), dst, where);
      errors.push(null);
    } catch (e) {
      errors.push(e instanceof Error ? e.message : String(e));
    }
  }
  return errors;
}

/** Output buffers for {@link openBlobsInto} are sized in 1 MiB steps so that later ranges fit them. */
export function outputSize(rawTotal: number): number {
  return Math.max(1, Math.ceil(rawTotal / (1024 * 1024))) * 1024 * 1024;
}
