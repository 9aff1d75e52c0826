/**
 * Subkeys derived from the repository master key (docs/repository-format.md §2.1, §5).
 *
 * All derivations are HKDF-SHA-256 with an empty salt and a fixed ASCII info string. Changing
 * any of them changes every blob id and chunk boundary of every repository: test/repo pins them.
 */
import { createHmac, hkdfSync } from 'node:crypto';

export const MASTER_KEY_BYTES = 32;
export const SUBKEY_BYTES = 32;
export const BLOB_ID_BYTES = 32;

export const INFO_ENCRYPTION = 'lifeboat/v1/encryption';
export const INFO_BLOB_ID = 'lifeboat/v1/blob-id';
export const INFO_CHUNKER = 'lifeboat/v1/chunker';
export const INFO_GEAR = 'lifeboat/v1/gear';

export interface Subkeys {
  /** K_enc: AEAD key for every sealed object and blob. */
  encryption: Buffer;
  /** K_id: HMAC-SHA-256 key for blob ids. */
  blobId: Buffer;
  /** K_chunk: seed of the chunker's gear table. */
  chunker: Buffer;
}

const EMPTY_SALT = Buffer.alloc(0);

function hkdf(ikm: Uint8Array, info: string, length: number): Buffer {
  return Buffer.from(hkdfSync('sha256', ikm, EMPTY_SALT, info, length));
}

export function deriveSubkeys(master: Uint8Array): Subkeys {
  if (master.length !== MASTER_KEY_BYTES) {
    throw new RangeError(`master key must be ${MASTER_KEY_BYTES} bytes, got ${master.length}`);
  }
  return {
    encryption: hkdf(master, INFO_ENCRYPTION, SUBKEY_BYTES),
    blobId: hkdf(master, INFO_BLOB_ID, SUBKEY_BYTES),
    chunker: hkdf(master, INFO_CHUNKER, SUBKEY_BYTES),
  };
}

/**
 * The chunker's gear table: HKDF-SHA-256(IKM = chunkerKey, salt empty, info "lifeboat/v1/gear",
 * 1024 bytes), word i = little-endian uint32 at bytes 4i..4i+3, stored as int32 (same bits).
 */
export function gearTable(chunkerKey: Uint8Array): Int32Array {
  if (chunkerKey.length !== SUBKEY_BYTES) {
    throw new RangeError(`chunker key must be ${SUBKEY_BYTES} bytes, got ${chunkerKey.length}`);
  }
  const bytes = hkdf(chunkerKey, INFO_GEAR, 1024);
  const table = new Int32Array(256);
  for (let i = 0; i < 256; i++) table[i] = bytes.readInt32LE(4 * i);
  return table;
}

/** Blob id = HMAC-SHA-256(K_id, plaintext), over the uncompressed data. */
export function blobId(idKey: Uint8Array, data: Uint8Array): Buffer {
  return createHmac('sha256', idKey).update(data).digest();
}
