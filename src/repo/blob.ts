import { timingSafeEqual } from 'node:crypto';
import { OVERHEAD, open as aeadOpen, seal } from './aead.js';
import { decodePayload, encodePayloadParts } from './compress.js';
import { IntegrityError } from './errors.js';
import { blobId } from './keys-derive.js';
import { toHex } from '../util/hex.js';

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
  id: Buffer = blobId(keys.blobId, data),
  level?: number,
): SealedBlob {
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
