/**
 * Restore's last step where blobs are opened: each blob of a range read is opened (decrypted,
 * decoded, verified against its id) into a scratch buffer and written at once into the files
 * that hold it (util/pwrite.ts). One blob at a time, so the scratch needs only the largest
 * blob's plaintext, whatever the range decodes to. The descriptors are opened (and closed) by
 * the restore in the calling thread. Runs in the seal pool's workers (and inline for a pool
 * without workers).
 */
import { openBlobsInto, outputSize } from './blob.js';
import { writeBlobSync, type WriteTarget } from '../util/pwrite.js';

export interface OpenWriteResult {
  /** Per blob: null (opened) or why it could not be opened (nothing was written for it). */
  errors: Array<string | null>;
  /** Per blob and target: null (written) or why writing it failed. */
  writeErrors: Array<Array<string | null>>;
}

let scratch: Buffer | null = null;
/** A scratch larger than this is dropped after use (blobs are at most 8 MiB by default). */
const SCRATCH_KEEP = 16 * 1024 * 1024;

export function openAndWriteBlobs(
  keys: { encryption: Uint8Array; blobId: Uint8Array },
  input: Buffer,
  blobs: ReadonlyArray<{ id: Uint8Array; offset: number; length: number; rawLength: number }>,
  writes: WriteTarget[][],
  where: string,
): OpenWriteResult {
  let largest = 0;
  for (const b of blobs) largest = Math.max(largest, b.rawLength);
  if (scratch === null || scratch.length < largest) scratch = Buffer.allocUnsafeSlow(outputSize(largest));
  const errors: Array<string | null> = [];
  const writeErrors: Array<Array<string | null>> = [];
  for (let i = 0; i < blobs.length; i++) {
    const b = blobs[i]!;
    const data = scratch.subarray(0, b.rawLength);
    const [err] = openBlobsInto(keys, input, [b], data, where);
    errors.push(err ?? null);
    writeErrors.push(err == null ? writeBlobSync(data, writes[i] ?? []) : (writes[i] ?? []).map(() => null));
  }
  if (scratch.length > SCRATCH_KEEP) scratch = null;
  return { errors, writeErrors };
}
