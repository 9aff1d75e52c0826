import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { PackWriter, parsePackTail } from '../../src/repo/pack.js';
import { cleanSpool, SpooledPackWriter } from '../../src/repo/pack-spool.js';
import { sealBlob, type BlobType } from '../../src/repo/blob.js';
import { deriveSubkeys } from '../../src/repo/keys-derive.js';
import { getSodium } from '../../src/repo/sodium.js';

await getSodium();
const keys = deriveSubkeys(crypto.randomBytes(32));
const mapError = (e: unknown, file: string) => new Error(`spool ${file}: ${(e as Error).message}`);

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-spool-'));
}

describe('spooled packs', () => {
  it('write exactly the bytes and id an in-memory pack would, for any blobs', () => {
    const dir = tempDir();
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ minLength: 0, maxLength: 5000 }), { minLength: 1, maxLength: 12 }),
        fc.constantFrom<BlobType>('data', 'tree'),
        (arrays, type) => {
          const sealed = arrays.map((a) => sealBlob(keys, type, Buffer.from(a)));
          const mem = new PackWriter(type, keys.encryption);
          const spooled = SpooledPackWriter.create(dir, type, keys.encryption, mapError);
          for (const b of sealed) {
            // the same sealed bytes go to both (sealing is randomised)
            mem.add(b);
            spooled.add(b);
            expect(spooled.size).toBe(mem.size);
            expect(spooled.sizeWith(100)).toBe(mem.sizeWith(100));
          }
          const m = mem.finish();
          const s = spooled.finish();
          const bytes = fs.readFileSync(s.file);
          expect(s.size).toBe(bytes.length);
          expect(s.id).toBe(crypto.createHash('sha256').update(bytes).digest('hex'));
          // the header is sealed with a fresh nonce: same blobs and entries, not the same tail bytes
          expect(bytes.subarray(0, m.entries.at(-1)!.offset + m.entries.at(-1)!.length))
            .toEqual(m.bytes.subarray(0, m.entries.at(-1)!.offset + m.entries.at(-1)!.length));
          const parsed = parsePackTail('p', keys.encryption, bytes, bytes.length);
          if ('need' in parsed) throw new Error('whole pack given, header must parse');
          expect(parsed).toEqual(m.entries);
          expect(s.entries).toEqual(m.entries);
          spooled.discard();
          expect(fs.existsSync(s.file)).toBe(false);
        },
      ),
      { numRuns: 40 },
    );
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('creates its directory, names files so local listings skip them, and refuses a blob of the other type', () => {
    const dir = path.join(tempDir(), 'not', 'yet');
    const w = SpooledPackWriter.create(dir, 'data', keys.encryption, mapError);
    expect(path.basename(w.file)).toMatch(/^pack\.tmp-[0-9a-f]{16}$/);
    expect(fs.statSync(w.file).mode & 0o777).toBe(0o600);
    expect(() => w.add(sealBlob(keys, 'tree', Buffer.from('t')))).toThrow(/cannot add a tree blob to a data pack/);
    expect(() => w.finish()).toThrow(/empty pack/);
    w.discard();
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('reports a failed write through the mapper (a full disk), and discard still removes the file', () => {
    const dir = tempDir();
    const w = SpooledPackWriter.create(dir, 'data', keys.encryption, mapError);
    // a descriptor that cannot be written: /dev/full answers every write with ENOSPC
    const full = fs.openSync('/dev/full', 'w');
    (w as unknown as { fd: number }).fd = full;
    expect(() => w.add(sealBlob(keys, 'data', Buffer.from('x')))).toThrow(/^spool .*ENOSPC/);
    w.discard();
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('cleanSpool removes only spool files an hour old', () => {
    const dir = tempDir();
    const old = path.join(dir, 'pack.tmp-0123456789abcdef');
    const fresh = path.join(dir, 'pack.tmp-fedcba9876543210');
    const other = path.join(dir, 'keep-me');
    for (const f of [old, fresh, other]) fs.writeFileSync(f, 'x');
    const hourAgo = new Date(Date.now() - 61 * 60 * 1000);
    fs.utimesSync(old, hourAgo, hourAgo);
    fs.utimesSync(other, hourAgo, hourAgo);
    expect(cleanSpool(dir)).toBe(1);
    expect(fs.readdirSync(dir).sort()).toEqual(['keep-me', 'pack.tmp-fedcba9876543210']);
    expect(cleanSpool(path.join(dir, 'missing'))).toBe(0);
  });
});
