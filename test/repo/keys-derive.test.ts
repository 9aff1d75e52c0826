import { createHash, createHmac } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { blobId, deriveSubkeys, gearTable } from '../../src/repo/keys-derive.js';

/** RFC 5869 HKDF-SHA-256 written out with HMAC only (independent of node's hkdfSync). */
function hkdfReference(ikm: Uint8Array, salt: Uint8Array, info: string, length: number): Buffer {
  const prk = createHmac('sha256', salt.length > 0 ? salt : Buffer.alloc(32)).update(ikm).digest();
  const blocks: Buffer[] = [];
  let prev = Buffer.alloc(0);
  for (let i = 1; blocks.length * 32 < length; i++) {
    prev = createHmac('sha256', prk).update(prev).update(info, 'ascii').update(Buffer.from([i])).digest();
    blocks.push(prev);
  }
  return Buffer.concat(blocks).subarray(0, length);
}

const MASTER = Buffer.from(Array.from({ length: 32 }, (_, i) => i)); // 00 01 02 … 1f

describe('keys-derive', () => {
  it('the reference HKDF matches RFC 5869 test case 3 (empty salt and info)', () => {
    const okm = hkdfReference(Buffer.alloc(22, 0x0b), Buffer.alloc(0), '', 42);
    expect(okm.toString('hex')).toBe(
      '8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8',
    );
  });

  it('subkeys are HKDF-SHA-256(master, salt empty, info lifeboat/v1/…), 32 bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (master) => {
        const k = deriveSubkeys(master);
        expect(k.encryption.equals(hkdfReference(master, new Uint8Array(0), 'lifeboat/v1/encryption', 32))).toBe(true);
        expect(k.blobId.equals(hkdfReference(master, new Uint8Array(0), 'lifeboat/v1/blob-id', 32))).toBe(true);
        expect(k.chunker.equals(hkdfReference(master, new Uint8Array(0), 'lifeboat/v1/chunker', 32))).toBe(true);
      }),
      { numRuns: 50 },
    );
  });

  it('pinned: subkeys of master 00..1f (a change here breaks every repository)', () => {
    const k = deriveSubkeys(MASTER);
    expect(k.encryption.toString('hex')).toBe('31ba5ef10a9aba75d7fe4a488f1fb95c926b5a423e5269643496b0cfe12a9be9');
    expect(k.blobId.toString('hex')).toBe('32f9b5dc03d3d462b045414c49c90bbc2f201006ae241c4fb52b3b5c37c02897');
    expect(k.chunker.toString('hex')).toBe('f61620ad4e9b734668ceb5ea8fe048ee08f0e518bf8f3ca80a3fd0a4696707f9');
  });

  it('gear table = HKDF(K_chunk, "lifeboat/v1/gear", 1024 bytes) as little-endian uint32 words', () => {
    const { chunker } = deriveSubkeys(MASTER);
    const bytes = hkdfReference(chunker, new Uint8Array(0), 'lifeboat/v1/gear', 1024);
    const g = gearTable(chunker);
    expect(g).toBeInstanceOf(Int32Array);
    expect(g.length).toBe(256);
    for (let i = 0; i < 256; i++) {
      const w = bytes[4 * i]! | (bytes[4 * i + 1]! << 8) | (bytes[4 * i + 2]! << 16) | (bytes[4 * i + 3]! << 24);
      expect(g[i]).toBe(w | 0);
    }
  });

  it('pinned: gear table of master 00..1f', () => {
    const g = gearTable(deriveSubkeys(MASTER).chunker);
    expect(Array.from(g.subarray(0, 4))).toEqual([-893467121, 1978206056, 1613336897, 1026457217]);
    expect(g[255]).toBe(1173627424);
    const le = Buffer.alloc(1024);
    g.forEach((v, i) => le.writeInt32LE(v, 4 * i));
    expect(createHash('sha256').update(le).digest('hex')).toBe('0da5af44250bd768c7d388db82fea7e7995be42446bfcbcefc1dc8e395aad238');
  });

  it('blob id = HMAC-SHA-256(K_id, data)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ maxLength: 5000 }), (key, data) => {
        expect(blobId(key, data).equals(createHmac('sha256', key).update(data).digest())).toBe(true);
      }),
      { numRuns: 100 },
    );
    const { blobId: idKey } = deriveSubkeys(MASTER);
    expect(blobId(idKey, Buffer.from('hello')).toString('hex')).toBe('3d162c41cbb2c52094084f760feaa0ece6b0c2f4cc32a356771da03b713a8d81');
    expect(blobId(idKey, Buffer.alloc(0)).toString('hex')).toBe('42042b9806786f3be8edd174375fec14f6f98c3ef888b41b251478e74611eeb2');
  });

  it('rejects keys of the wrong size', () => {
    expect(() => deriveSubkeys(new Uint8Array(16))).toThrow(RangeError);
    expect(() => gearTable(new Uint8Array(31))).toThrow(RangeError);
  });
});
