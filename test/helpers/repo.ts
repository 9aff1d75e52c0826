import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { KdfParams } from '../../src/repo/kdf.js';

/** Fast Argon2id parameters for tests (real ones take ~0.5 s per key). */
export function testKdf(): KdfParams {
  return { opslimit: 1, memlimit: 8 * 1024 * 1024, salt: crypto.randomBytes(16) };
}

/**
 * The stored packs of a local repository (data/<xx>/<64 hex>), as paths: not the packs being
 * written (data/pack.tmp-…) nor anything else.
 */
export function localPacks(repoDir: string): string[] {
  const data = path.join(repoDir, 'data');
  if (!fs.existsSync(data)) return [];
  return fs.readdirSync(data, { withFileTypes: true })
    .filter((d) => d.isDirectory() && /^[0-9a-f]{2}$/.test(d.name))
    .flatMap((d) => fs.readdirSync(path.join(data, d.name)).filter((n) => /^[0-9a-f]{64}$/.test(n)).map((n) => path.join(data, d.name, n)));
}

export function tmpDir(prefix = 'lifeboat-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Deterministic pseudo-random bytes (xorshift), fast and reproducible. */
export function pseudoRandom(size: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

/** SQL-dump-like text (INSERT lines with varied values), deterministic for a seed. */
export function sqlText(bytes: number, seed = 1): Buffer {
  const lines: string[] = [];
  let total = 0;
  let x = seed;
  while (total < bytes) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    const line = `INSERT INTO orders VALUES (${x % 1000000}, 'user${x % 977}', ${(x % 10000) / 100}, '2026-11-${10 + (x % 18)}');\n`;
    lines.push(line);
    total += line.length;
  }
  return Buffer.from(lines.join('')).subarray(0, bytes);
}

/** A small seeded PRNG (mulberry32): the same seed gives the same schedule of faults or kills. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
