import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createKeyFile, parseKeyFile, unwrapMasterKey } from '../../src/repo/keyfile.js';
import { IntegrityError } from '../../src/repo/errors.js';
import { sha256Hex } from '../../src/repo/hash.js';
import { testKdf } from '../helpers/repo.js';

describe('key files', () => {
  it('wrap the master key: the right password unwraps it, a wrong one does not', async () => {
    const master = crypto.randomBytes(32);
    const k = await createKeyFile(master, 'pw', testKdf());
    const parsed = parseKeyFile(`keys/${k.id}`, k.bytes);
    expect(parsed.kdf.algorithm).toBe('argon2id13');
    expect(parsed.kdf.memlimit).toBe(8 * 1024 * 1024);
    expect((await unwrapMasterKey(parsed, 'pw'))!.equals(master)).toBe(true);
    expect(await unwrapMasterKey(parsed, 'pW')).toBeNull();
    expect(JSON.stringify(parsed)).not.toContain(master.toString('base64'));
  });

  it('are refused when any byte changes (name = SHA-256 of the bytes)', async () => {
    const k = await createKeyFile(crypto.randomBytes(32), 'pw', testKdf());
    for (const i of [0, 10, k.bytes.length >> 1, k.bytes.length - 2]) {
      const bad = Buffer.from(k.bytes);
      bad[i]! ^= 0x01;
      expect(() => parseKeyFile(`keys/${k.id}`, bad)).toThrow(IntegrityError);
    }
  });

  it('with consistent name but altered data fail to unwrap rather than yield a wrong key', async () => {
    const k = await createKeyFile(crypto.randomBytes(32), 'pw', testKdf());
    const json = JSON.parse(k.bytes.toString()) as { data: string };
    const d = Buffer.from(json.data, 'base64');
    d[30]! ^= 1;
    json.data = d.toString('base64');
    const bytes = Buffer.from(JSON.stringify(json));
    const parsed = parseKeyFile(`keys/${sha256Hex(bytes)}`, bytes);
    expect(await unwrapMasterKey(parsed, 'pw')).toBeNull();
  });

  it('with absurd KDF parameters are refused before any work', async () => {
    const k = await createKeyFile(crypto.randomBytes(32), 'pw', testKdf());
    for (const [field, value] of [['memlimit', 64 * 1024 * 1024 * 1024], ['opslimit', 1_000_000], ['opslimit', 0]] as const) {
      const json = JSON.parse(k.bytes.toString()) as { kdf: Record<string, number> };
      json.kdf[field] = value;
      const bytes = Buffer.from(JSON.stringify(json));
      expect(() => parseKeyFile(`keys/${sha256Hex(bytes)}`, bytes)).toThrow(new RegExp(`malformed key file \\(kdf.${field}\\)`));
    }
  });
});
