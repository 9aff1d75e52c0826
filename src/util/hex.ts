const HEX64 = /^[0-9a-f]{64}$/;

/** True for a 64-digit lowercase hex id (a SHA-256 or HMAC-SHA-256 in hex). */
export function isHexId(s: string): boolean {
  return HEX64.test(s);
}

export function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

export function fromHexId(s: string): Buffer {
  if (!isHexId(s)) throw new Error(`not a 64-digit hex id: ${JSON.stringify(s.slice(0, 80))}`);
  return Buffer.from(s, 'hex');
}
