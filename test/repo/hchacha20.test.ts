import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { hchacha20 } from '../../src/repo/hchacha20.js';
import { getSodium } from '../../src/repo/sodium.js';

describe('hchacha20', () => {
  it('matches the draft-irtf-cfrg-xchacha §2.2.1 test vector', () => {
    const key = Buffer.from('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', 'hex');
    const nonce = Buffer.from('000000090000004a0000000031415927', 'hex');
    expect(hchacha20(key, nonce).toString('hex')).toBe('82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc');
  });

  it("equals libsodium's crypto_core_hchacha20 on random inputs", async () => {
    const sodium = await getSodium();
    for (let i = 0; i < 500; i++) {
      const key = randomBytes(32);
      const nonce = randomBytes(16);
      expect(hchacha20(key, nonce).toString('hex')).toBe(Buffer.from(sodium.crypto_core_hchacha20(nonce, key, null)).toString('hex'));
    }
  });

  it('refuses bad key sizes', () => {
    expect(() => hchacha20(Buffer.alloc(31), Buffer.alloc(16))).toThrow(RangeError);
  });
});
