import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { PackWriter, parsePackTail, verifyPackBytes } from '../../src/repo/pack.js';
import { openBlob, sealBlob, type BlobType } from '../../src/repo/blob.js';
import { deriveSubkeys } from '../../src/repo/keys-derive.js';
import { IntegrityError } from '../../src/repo/errors.js';
import { getSodium } from '../../src/repo/sodium.js';

await getSodium();
const keys = deriveSubkeys(crypto.randomBytes(32));

function build(type: BlobType, blobs: Buffer[]) {
  const w = new PackWriter(type, keys.encryption);
  for (const b of blobs) w.add(sealBlob(keys, type, b));
  return w.finish();
}

describe('pack writer and reader', () => {
  it('round-trips any set of blobs (header from the tail, blobs from their offsets)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ minLength: 0, maxLength: 5000 }), { minLength: 1, maxLength: 20 }),
        fc.constantFrom<BlobType>('data', 'tree'),
        (arrays, type) => {
          const blobs = arrays.map((a) => Buffer.from(a));
          const pack = build(type, blobs);
          expect(pack.id).toBe(crypto.createHash('sha256').update(pack.bytes).digest('hex'));
          const entries = parsePackTail('p', keys.encryption, pack.bytes, pack.bytes.length);
          if ('need' in entries) throw new Error('whole pack given, header must parse');
          expect(entries).toHaveLength(blobs.length);
          entries.forEach((e, i) => {
            expect(e.type).toBe(type);
            expect(e.rawLength).toBe(blobs[i]!.length);
            const sealed = pack.bytes.subarray(e.offset, e.offset + e.length);
            expect(openBlob(keys, e.id, sealed, 'p').equals(blobs[i]!)).toBe(true);
          });
        },
      ),
      { numRuns: 60 },
    );
  });

  it('asks for more bytes when the tail is too short, then parses', () => {
    const pack = build('tree', Array.from({ length: 50 }, (_, i) => Buffer.from(`tree ${i}`)));
    const r = parsePackTail('p', keys.encryption, pack.bytes.subarray(pack.bytes.length - 10), pack.bytes.length);
    expect('need' in r).toBe(true);
    const need = (r as { need: number }).need;
    const r2 = parsePackTail('p', keys.encryption, pack.bytes.subarray(pack.bytes.length - need), pack.bytes.length);
    expect(Array.isArray(r2) && r2.length).toBe(50);
  });

  it('refuses a pack with any byte of its header flipped, or truncated', () => {
    const pack = build('data', [crypto.randomBytes(1000), crypto.randomBytes(2000)]);
    const headerStart = pack.entries.reduce((s, e) => s + e.length, 0);
    for (let i = headerStart; i < pack.bytes.length; i++) {
      const bad = Buffer.from(pack.bytes);
      bad[i]! ^= 0x01;
      expect(() => parsePackTail('data/xx/p', keys.encryption, bad, bad.length)).toThrow(IntegrityError);
    }
    const cut = pack.bytes.subarray(0, pack.bytes.length - 1);
    expect(() => parsePackTail('data/xx/p', keys.encryption, cut, cut.length)).toThrow(IntegrityError);
    const shortFront = pack.bytes.subarray(1);
    expect(() => parsePackTail('data/xx/p', keys.encryption, shortFront, shortFront.length)).toThrow(/size does not match/);
  });

  it('detects a flipped blob byte by the pack hash and by the blob AEAD', () => {
    const data = crypto.randomBytes(4096);
    const pack = build('data', [data]);
    const bad = Buffer.from(pack.bytes);
    bad[100]! ^= 0x80;
    expect(() => verifyPackBytes('data/xx/p', pack.id, bad)).toThrow(IntegrityError);
    const e = pack.entries[0]!;
    expect(() => openBlob(keys, e.id, bad.subarray(e.offset, e.offset + e.length), 'p')).toThrow(IntegrityError);
  });

  it('binds a blob to its id: a blob presented under another id is refused', () => {
    const a = sealBlob(keys, 'data', Buffer.from('aaaa'));
    const b = sealBlob(keys, 'data', Buffer.from('bbbb'));
    expect(() => openBlob(keys, b.id, a.sealed, 'p')).toThrow(IntegrityError);
  });

  it('refuses to mix blob types in one pack', () => {
    const w = new PackWriter('data', keys.encryption);
    expect(() => w.add(sealBlob(keys, 'tree', Buffer.from('{}')))).toThrow(/tree blob to a data pack/);
  });
});
