import { describe, expect, it } from 'vitest';
import {
  DEFAULT_MEMLIMIT,
  DEFAULT_OPSLIMIT,
  defaultKdfParams,
  deriveKeyFromPassword,
  validateKdfParams,
} from '../../src/repo/kdf.js';
import { getSodium } from '../../src/repo/sodium.js';
import { nativeArgon2id } from '../../src/native/index.js';

const SALT = Buffer.from(Array.from({ length: 16 }, (_, i) => i));
const SMALL = { opslimit: 2, memlimit: 8 * 1024 * 1024, salt: SALT };

describe('kdf: Argon2id password hashing', () => {
  it('equals libsodium crypto_pwhash(ALG_ARGON2ID13) and is pinned', async () => {
    const key = await deriveKeyFromPassword('correct horse battery staple', SMALL);
    const sodium = await getSodium();
    const direct = sodium.crypto_pwhash(32, 'correct horse battery staple', SALT, 2, 8 * 1024 * 1024, sodium.crypto_pwhash_ALG_ARGON2ID13);
    expect(key.length).toBe(32);
    expect(key.equals(direct)).toBe(true);
    expect(key.toString('hex')).toBe('a891dd91a3d123add6ea78ceedcc94a7f1dc1e4ca480e57e6f240a113662ea2f');
    // the password is taken as UTF-8, without normalisation
    expect((await deriveKeyFromPassword('pässwörd', SMALL)).toString('hex')).toBe(
      'a60ab694f557156592bcf61a557a86d4c505ad4119337604a00782eb22fd6c7b',
    );
  });

  it('depends on password, salt, opslimit and memlimit', async () => {
    const base = await deriveKeyFromPassword('pw', SMALL);
    const keys = await Promise.all([
      deriveKeyFromPassword('pw2', SMALL),
      deriveKeyFromPassword('pw', { ...SMALL, salt: Buffer.alloc(16, 1) }),
      deriveKeyFromPassword('pw', { ...SMALL, opslimit: 3 }),
      deriveKeyFromPassword('pw', { ...SMALL, memlimit: 9 * 1024 * 1024 }),
    ]);
    for (const k of keys) expect(k.equals(base)).toBe(false);
    expect((await deriveKeyFromPassword('pw', SMALL)).equals(base)).toBe(true);
  });

  it('refuses an empty password', async () => {
    await expect(deriveKeyFromPassword('', SMALL)).rejects.toThrow(/empty password/);
  });

  it('validates parameters read from a key file', async () => {
    const bad = [
      { ...SMALL, opslimit: 0 },
      { ...SMALL, opslimit: 1.5 },
      { ...SMALL, opslimit: -1 },
      { ...SMALL, opslimit: 2 ** 32 },
      { ...SMALL, opslimit: Number.NaN },
      { ...SMALL, memlimit: 8191 },
      { ...SMALL, memlimit: 1024 * 1024 * 1024 + 1 },
      { ...SMALL, memlimit: 2 ** 40 },
      { ...SMALL, memlimit: '67108864' as unknown as number },
      { ...SMALL, salt: new Uint8Array(15) },
      { ...SMALL, salt: new Uint8Array(32) },
    ];
    for (const p of bad) {
      expect(() => validateKdfParams(p), JSON.stringify({ ...p, salt: p.salt.length })).toThrow(/invalid KDF parameter/);
      await expect(deriveKeyFromPassword('pw', p)).rejects.toThrow(/invalid KDF parameter/);
    }
    expect(validateKdfParams({ ...SMALL, memlimit: 1024 * 1024 * 1024 })).toBeTruthy();
    expect(validateKdfParams({ ...SMALL, opslimit: 1, memlimit: 8192 })).toBeTruthy();
  });

  it('defaults: 64 MiB, opslimit 3 (RFC 9106), a fresh random 16-byte salt, and they work', async () => {
    const a = defaultKdfParams();
    const b = defaultKdfParams();
    expect(a.memlimit).toBe(DEFAULT_MEMLIMIT);
    expect(a.memlimit).toBe(64 * 1024 * 1024);
    expect(a.opslimit).toBe(DEFAULT_OPSLIMIT);
    expect(a.salt.length).toBe(16);
    expect(Buffer.from(a.salt).equals(Buffer.from(b.salt))).toBe(false);
    const key = await deriveKeyFromPassword('a real password', a);
    expect(key.length).toBe(32);
  });

  it('the system libsodium (native helper) and the WASM build derive the same keys', async () => {
    // this machine has libsodium23: the native path must be the one taken, not silently skipped
    const probe = nativeArgon2id(Buffer.from('x'), SALT, 1, 8192, 32);
    expect(probe).not.toBeNull();
    await probe;
    const sodium = await getSodium();
    const cases: [string, number, number, Buffer][] = [
      ['correct horse battery staple', 2, 8 * 1024 * 1024, SALT],
      ['pässwörd \u{1F512}', 1, 8192, Buffer.alloc(16, 0xff)],
      ['x'.repeat(1000), 3, 9 * 1024 * 1024 + 1024, Buffer.alloc(16, 7)],
    ];
    for (const [pw, ops, mem, salt] of cases) {
      const native = await nativeArgon2id(Buffer.from(pw, 'utf8'), salt, ops, mem, 32)!;
      const wasm = Buffer.from(sodium.crypto_pwhash(32, Buffer.from(pw, 'utf8'), salt, ops, mem, sodium.crypto_pwhash_ALG_ARGON2ID13));
      expect(native.toString('hex'), `${ops}/${mem}`).toBe(wasm.toString('hex'));
    }
    // and deriveKeyFromPassword gives the pinned key on both paths
    const prev = process.env.LIFEBOAT_NATIVE_KDF;
    try {
      for (const v of ['0', '1']) {
        process.env.LIFEBOAT_NATIVE_KDF = v;
        expect((await deriveKeyFromPassword('correct horse battery staple', SMALL)).toString('hex'), v).toBe(
          'a891dd91a3d123add6ea78ceedcc94a7f1dc1e4ca480e57e6f240a113662ea2f',
        );
      }
    } finally {
      if (prev === undefined) delete process.env.LIFEBOAT_NATIVE_KDF;
      else process.env.LIFEBOAT_NATIVE_KDF = prev;
    }
  });
});
