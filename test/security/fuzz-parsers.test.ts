/**
 * Property-based fuzzing (fast-check) of every parser of repository data (issue 9): random bytes,
 * and valid objects mutated (bit flips, truncation, extension, insertion, JSON fields replaced by
 * arbitrary values). Whatever the input, a parser returns a value or throws its documented,
 * typed error — IntegrityError, UnsupportedVersionError, or PayloadError from decodePayload —
 * never TypeError/RangeError/SyntaxError, a crash or a hang.
 */
import crypto from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IntegrityError, UnsupportedVersionError } from '../../src/repo/errors.js';
import { decodeTree, encodeTree, type TreeNode } from '../../src/engine/tree.js';
import { decodeHeader, encodeHeader, parsePackTail, PackWriter } from '../../src/repo/pack.js';
import { decodePayload, decodePayloadInto, encodePayload, PayloadError } from '../../src/repo/compress.js';
import { openJson, sealJson, sealObject, openObject } from '../../src/repo/sealed.js';
import { configSchema, indexFileSchema, lockSchema, snapshotSchema } from '../../src/repo/formats.js';
import { parseKeyFile } from '../../src/repo/keyfile.js';
import { sha256Hex } from '../../src/repo/hash.js';
import { openBlob, openBlobInto, openBlobsInto, sealBlob } from '../../src/repo/blob.js';
import type { ObjectType } from '../../src/repo/object-types.js';
import fs from 'node:fs';
import path from 'node:path';
import { createKeyFile } from '../../src/repo/keyfile.js';
import { unlockMasterKey } from '../../src/repo/key-store.js';
import { LocalStorage } from '../../src/storage/local.js';
import { WrongPasswordError } from '../../src/repo/errors.js';
import { tmpDir } from '../helpers/repo.js';

const RUNS = 1000;
const keys = { encryption: crypto.randomBytes(32), blobId: crypto.randomBytes(32) };

type Allowed = Array<new (...args: never[]) => Error>;

/** Runs `f`; any throw must be one of the allowed error types (and carry a message). */
function only(allowed: Allowed, f: () => unknown): void {
  try {
    f();
  } catch (e) {
    if (!allowed.some((t) => e instanceof t)) {
      throw new Error(`leaked ${(e as Error)?.constructor?.name ?? typeof e}: ${(e as Error)?.message ?? String(e)}`);
    }
    expect((e as Error).message.length).toBeGreaterThan(0);
    expect((e as Error).message).not.toContain('\n');
  }
}

/** Byte-level mutations of a valid input. */
function mutated(valid: Buffer): fc.Arbitrary<Buffer> {
  return fc.oneof(
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 7 })), { minLength: 1, maxLength: 8 }).map((flips) => {
      const b = Buffer.from(valid);
      for (const [i, bit] of flips) if (b.length > 0) b[i % b.length]! ^= 1 << bit;
      return b;
    }),
    fc.nat({ max: valid.length }).map((n) => valid.subarray(0, n)),
    fc.nat({ max: valid.length }).map((n) => valid.subarray(n)),
    fc.uint8Array({ minLength: 1, maxLength: 64 }).map((x) => Buffer.concat([valid, x])),
    fc.tuple(fc.nat(), fc.uint8Array({ maxLength: 32 })).map(([i, x]) => {
      const p = i % (valid.length + 1);
      return Buffer.concat([valid.subarray(0, p), x, valid.subarray(p)]);
    }),
  );
}

function bytesOrMutated(valid: Buffer): fc.Arbitrary<Buffer> {
  return fc.oneof(fc.uint8Array({ maxLength: 512 }).map((u) => Buffer.from(u)), mutated(valid));
}

/** Every path (keys/indices) in a JSON value. */
function paths(v: unknown, prefix: Array<string | number> = []): Array<Array<string | number>> {
  const out: Array<Array<string | number>> = [prefix];
  if (Array.isArray(v)) v.forEach((x, i) => out.push(...paths(x, [...prefix, i])));
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) out.push(...paths(x, [...prefix, k]));
  return out;
}

/** A valid JSON document with one field replaced by an arbitrary value, or deleted. */
function jsonMutated(valid: unknown): fc.Arbitrary<Buffer> {
  const all = paths(valid).filter((p) => p.length > 0);
  const weird = fc.oneof(
    fc.jsonValue(),
    fc.constantFrom(-1, 2 ** 53, 1e308, -0, 0.5, '', '..', '/', '\u0000', 'A'.repeat(70), [], {}, null, true, '2026-13-45T99:99:99Z', '0000-00-00T00:00:00Z'),
  );
  return fc.tuple(fc.nat(), weird, fc.boolean()).map(([i, value, del]) => {
    const doc = structuredClone(valid) as Record<string | number, unknown>;
    const p = all[i % all.length]!;
    let o = doc as Record<string | number, unknown>;
    for (const k of p.slice(0, -1)) o = o[k] as Record<string | number, unknown>;
    const last = p[p.length - 1]!;
    if (del && !Array.isArray(o)) delete o[last];
    else o[last] = value;
    return Buffer.from(JSON.stringify(doc));
  });
}

const hex = () => crypto.randomBytes(32).toString('hex');
const T = 1_700_000_000_123_456_789n;
const sampleNodes: TreeNode[] = [
  { name: Buffer.from('dir'), type: 'dir', mode: 0o40755, uid: 0, gid: 0, mtimeNs: T, ctimeNs: T, subtree: hex() },
  { name: Buffer.from('file'), type: 'file', mode: 0o100644, uid: 1000, gid: 1000, user: 'u', group: 'g', mtimeNs: T, ctimeNs: T, atimeNs: T, size: 3, inode: 7, device: 9, links: 2, content: [hex(), hex()], xattrs: [{ name: 'user.a', value: Buffer.from('v') }], sparse: true },
  { name: Buffer.from('link'), type: 'symlink', mode: 0o120777, uid: 0, gid: 0, mtimeNs: T, ctimeNs: T, target: Buffer.from([0xff, 0x2f]) },
  { name: Buffer.from([0xc3, 0x28]), type: 'chardev', mode: 0o20644, uid: 0, gid: 0, mtimeNs: T, ctimeNs: T, rdev: 259 },
];
const validTree = encodeTree({ nodes: sampleNodes });

describe('fuzzing the parsers of repository data', () => {
  it('decodeTree: only IntegrityError', () => {
    const json = JSON.parse(validTree.toString()) as unknown;
    fc.assert(
      fc.property(fc.oneof(bytesOrMutated(validTree), jsonMutated(json), fc.json().map((s) => Buffer.from(s))), (b) => {
        only([IntegrityError], () => {
          const t = decodeTree(b);
          for (const n of t.nodes) {
            expect(n.name.length).toBeGreaterThan(0);
            expect(typeof n.mtimeNs).toBe('bigint');
          }
        });
      }),
      { numRuns: RUNS * 3 },
    );
    // deep nesting and huge inputs do not overflow the stack
    only([IntegrityError], () => decodeTree(Buffer.from('['.repeat(200_000) + ']'.repeat(200_000))));
    only([IntegrityError], () => decodeTree(Buffer.from(`{"nodes":${'['.repeat(100_000)}${']'.repeat(100_000)}}`)));
  });

  it('decodeHeader and parsePackTail: only IntegrityError', () => {
    const entries = [
      { id: crypto.randomBytes(32), type: 'data' as const, offset: 0, length: 100, rawLength: 90 },
      { id: crypto.randomBytes(32), type: 'data' as const, offset: 100, length: 50, rawLength: 40 },
    ];
    const header = encodeHeader(entries);
    fc.assert(fc.property(bytesOrMutated(header), (b) => only([IntegrityError], () => decodeHeader('data/xx', b))), { numRuns: RUNS });

    const w = new PackWriter('tree', keys.encryption);
    for (let i = 0; i < 3; i++) w.add(sealBlob(keys, 'tree', Buffer.from(`{"nodes":[${i}]}`)));
    const pack = w.finish().bytes;
    expect(Array.isArray(parsePackTail('p', keys.encryption, pack, pack.length))).toBe(true);
    fc.assert(
      fc.property(bytesOrMutated(pack), fc.oneof(fc.constant(-1), fc.nat({ max: 4 * pack.length }), fc.constant(0)), fc.boolean(), (b, size, same) => {
        only([IntegrityError], () => {
          const r = parsePackTail('p', keys.encryption, b, same ? b.length : size);
          if (!Array.isArray(r)) expect(r.need).toBeGreaterThan(b.length);
        });
      }),
      { numRuns: RUNS },
    );
    // a validly sealed header holding garbage
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (u) => {
        const sealed = sealObject(keys.encryption, 'pack-header', Buffer.from(u));
        const len = Buffer.alloc(4);
        len.writeUInt32LE(sealed.length);
        const tail = Buffer.concat([Buffer.alloc(150), sealed, len]);
        only([IntegrityError], () => parsePackTail('p', keys.encryption, tail, tail.length));
      }),
      { numRuns: RUNS },
    );
  });

  it('decodePayload / decodePayloadInto: only PayloadError', () => {
    const text = Buffer.from('lifeboat '.repeat(500));
    const validZstd = encodePayload(text);
    expect(validZstd[0]).toBe(1);
    fc.assert(
      fc.property(bytesOrMutated(validZstd), fc.nat({ max: 10_000 }), (b, outLen) => {
        only([PayloadError], () => decodePayload(b, 1 << 20));
        only([PayloadError], () => decodePayloadInto(b, Buffer.alloc(outLen)));
      }),
      { numRuns: RUNS * 2 },
    );
  });

  it('openObject / openJson with each schema: only IntegrityError, for random and for validly sealed mutated documents', () => {
    const docs: Array<{ type: ObjectType; schema: Parameters<typeof openJson>[4]; valid: unknown }> = [
      { type: 'config', schema: configSchema, valid: { version: 1, id: hex(), created: new Date().toISOString(), chunker: { algorithm: 'fastcdc-gear32-v1', min: 1, avg: 2, max: 3 }, pack_size: 16 } },
      { type: 'index', schema: indexFileSchema, valid: { version: 1, supersedes: [hex()], packs: [{ id: hex(), type: 'data', size: 100, blobs: [{ id: hex(), offset: 0, length: 60, raw_length: 50 }] }] } },
      { type: 'snapshot', schema: snapshotSchema, valid: { version: 1, time: new Date().toISOString(), tree: hex(), paths: ['/etc'], hostname: 'h', tags: ['a'], parent: hex(), source: { type: 'files' }, summary: { files: 1 } } },
      { type: 'lock', schema: lockSchema, valid: { time: new Date().toISOString(), exclusive: false, hostname: 'h', username: 'u', pid: 1, uid: 0, gid: 0, nonce: 'ab' } },
    ];
    for (const d of docs) {
      const sealed = sealJson(keys.encryption, d.type, d.valid);
      expect(openJson(keys.encryption, d.type, d.type, sealed, d.schema)).toBeTruthy();
      fc.assert(fc.property(bytesOrMutated(sealed), (b) => only([IntegrityError], () => openJson(keys.encryption, d.type, d.type, b, d.schema))), { numRuns: RUNS });
      fc.assert(
        fc.property(fc.oneof(jsonMutated(d.valid), fc.json().map((s) => Buffer.from(s)), fc.uint8Array({ maxLength: 100 }).map((u) => Buffer.from(u))), (plain) => {
          only([IntegrityError], () => openJson(keys.encryption, d.type, d.type, sealObject(keys.encryption, d.type, plain), d.schema));
        }),
        { numRuns: RUNS },
      );
      // valid encryption under another role (AD): refused
      const other: ObjectType = d.type === 'index' ? 'snapshot' : 'index';
      expect(() => openObject(keys.encryption, other, 'x', sealed)).toThrow(IntegrityError);
    }
  });

  it('parseKeyFile: only IntegrityError or UnsupportedVersionError', () => {
    const valid = { version: 1, created: new Date().toISOString(), hostname: 'h', username: 'u', kdf: { algorithm: 'argon2id13', opslimit: 2, memlimit: 8 * 1024 * 1024, salt: crypto.randomBytes(16).toString('base64') }, data: crypto.randomBytes(72).toString('base64') };
    const bytes = Buffer.from(JSON.stringify(valid, null, 2));
    fc.assert(
      fc.property(fc.oneof(bytesOrMutated(bytes), jsonMutated(valid), fc.json().map((s) => Buffer.from(s))), fc.boolean(), (b, rightName) => {
        const name = `keys/${rightName ? sha256Hex(b) : sha256Hex(Buffer.concat([b, Buffer.from('x')]))}`;
        only([IntegrityError, UnsupportedVersionError], () => parseKeyFile(name, b));
      }),
      { numRuns: RUNS * 2 },
    );
  });

  it('openBlob / openBlobInto / openBlobsInto: only IntegrityError (and per-blob messages)', () => {
    const data = Buffer.from('some file content '.repeat(100));
    const blob = sealBlob(keys, 'data', data);
    expect(openBlob(keys, blob.id, blob.sealed, 'p').equals(data)).toBe(true);
    const otherId = crypto.randomBytes(32);
    // valid encryption under a wrong id (AD): refused
    expect(() => openBlob(keys, otherId, blob.sealed, 'p')).toThrow(IntegrityError);
    // valid encryption under a forged id whose content does not hash to it: refused
    const forged = sealBlob(keys, 'data', data, otherId);
    expect(() => openBlob(keys, otherId, forged.sealed, 'p')).toThrow(/content does not match its id/);
    fc.assert(
      fc.property(bytesOrMutated(blob.sealed), fc.nat({ max: 4000 }), (b, rawLen) => {
        only([IntegrityError], () => openBlob(keys, blob.id, b, 'p'));
        only([IntegrityError], () => openBlobInto(keys, blob.id, b, Buffer.alloc(rawLen), 'p'));
        const errs = openBlobsInto(keys, b, [{ id: blob.id, offset: 0, length: b.length, rawLength: rawLen }], Buffer.alloc(rawLen), 'p');
        expect(errs).toHaveLength(1);
      }),
      { numRuns: RUNS },
    );
    // ranges that lie outside the bytes read are per-blob errors, not exceptions
    const errs = openBlobsInto(keys, blob.sealed, [{ id: blob.id, offset: 10, length: blob.sealed.length, rawLength: data.length }, { id: blob.id, offset: -5, length: 3, rawLength: 1 }], Buffer.alloc(data.length + 1), 'p');
    expect(errs.every((e) => typeof e === 'string')).toBe(true);
  });

  it('unlockMasterKey over mutated key files: IntegrityError, UnsupportedVersionError or WrongPasswordError; the right password still opens an intact one', async () => {
    const master = crypto.randomBytes(32);
    const valid = await createKeyFile(master, 'pw', { opslimit: 1, memlimit: 8192, salt: crypto.randomBytes(16) });
    const root = tmpDir('lifeboat-fuzz-keys-');
    try {
      const storage = new LocalStorage(root);
      await storage.create();
      let i = 0;
      await fc.assert(
        fc.asyncProperty(mutated(valid.bytes), async (b) => {
          const keysDir = path.join(root, 'keys');
          fs.mkdirSync(keysDir, { recursive: true });
          for (const f of fs.readdirSync(keysDir)) fs.rmSync(path.join(keysDir, f));
          fs.writeFileSync(path.join(keysDir, sha256Hex(b)), b);
          i++;
          try {
            const r = await unlockMasterKey(storage, 'pw');
            expect(r.master.equals(master)).toBe(true); // only an unchanged key opens
          } catch (e) {
            if (!(e instanceof IntegrityError || e instanceof UnsupportedVersionError || e instanceof WrongPasswordError)) {
              throw new Error(`leaked ${(e as Error).constructor.name}: ${(e as Error).message}`);
            }
          }
        }),
        { numRuns: 150 },
      );
      expect(i).toBe(150);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  }, 60_000);
});
