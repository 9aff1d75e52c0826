import { createHash } from 'node:crypto';

/** Hex SHA-256 of bytes: the name of every content-addressed object. */
export function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}
