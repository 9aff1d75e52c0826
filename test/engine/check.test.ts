/** check --read-data reads each pack once: the trees come from the packs it verified. */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Repository } from '../../src/repo/repository.js';
import { backup } from '../../src/engine/archiver.js';
import { checkRepository } from '../../src/engine/check.js';
import type { ByteRange, Storage } from '../../src/storage/types.js';
import { makeLocal, makeTempDir } from '../helpers/storage-backends.js';
import { pseudoRandom, testKdf } from '../helpers/repo.js';
import { sealBlob } from '../../src/repo/blob.js';

describe('check --read-data', () => {
  it('walks the trees from the packs it read: one whole-pack GET per pack, no tree read again', async () => {
    const storage = await makeLocal();
    const cacheDir = await makeTempDir();
    const src = await makeTempDir();
    for (let d = 0; d < 6; d++) {
      fs.mkdirSync(path.join(src, `dir${d}`, 'sub'), { recursive: true });
      fs.writeFileSync(path.join(src, `dir${d}`, 'a.txt'), `file ${d}\n`);
      fs.writeFileSync(path.join(src, `dir${d}`, 'sub', 'b.bin'), pseudoRandom(20_000 + d, d));
    }
    const repo = await Repository.init(storage, 'pw', { kdf: testKdf(), cacheDir });
    await backup(repo, [src]);
    await repo.close();

    const gets: Array<{ name: string; range: ByteRange | undefined }> = [];
    const counting = new Proxy(storage, {
      get(target, prop, receiver) {
        if (prop === 'get') return (name: string, range?: ByteRange) => (gets.push({ name, range }), target.get(name, range));
        return Reflect.get(target, prop, receiver) as unknown;
      },
    }) as Storage;
    // a fresh cache: nothing to serve trees from but the repository
    const again = await Repository.open(counting, 'pw', { cacheDir: await makeTempDir() });
    gets.length = 0;
    const r = await checkRepository(again, { readData: { kind: 'all' } });
    expect(r.errors).toBe(0);
    expect(r.stats.trees).toBeGreaterThanOrEqual(13); // the root's chain, 6 dirs and 6 subs
    const packReads = gets.filter((g) => g.name.startsWith('data/'));
    expect(packReads.every((g) => g.range === undefined)).toBe(true);
    expect(packReads).toHaveLength(r.stats.packsRead);

    // a damaged tree is still found: its pack fails, and the snapshot is named
    const treePack = (await Promise.all(packReads.map(async (g) => ({ g, size: (await storage.get(g.name)).length }))))
      .sort((a, b) => a.size - b.size)[0]!.g.name;
    const file = path.join(storage.root, treePack);
    const bytes = fs.readFileSync(file);
    bytes[20] = bytes[20]! ^ 0xff;
    fs.writeFileSync(file, bytes);
    const bad = await checkRepository(again, { readData: { kind: 'all' } });
    expect(bad.errors).toBeGreaterThan(0);
    expect(bad.affectedSnapshots).toHaveLength(1);
    await again.close();
  });

  it('opens every blob of the packs it reads and names each one that fails inside a sound pack', async () => {
    const storage = await makeLocal();
    const repo = await Repository.init(storage, 'pw', { kdf: testKdf(), cacheDir: await makeTempDir() });
    // good blobs of both kinds and sizes (several groups of ≤ 8 MiB of plaintext per pack) ...
    const good = [pseudoRandom(3 << 20, 1), Buffer.alloc(5 << 20, 0x61), pseudoRandom(100, 2), pseudoRandom(6 << 20, 3)];
    for (const d of good) await repo.saveBlob('data', d);
    // ... and two damaged at writing: the pack's bytes hash to its name, but these blobs don't open
    const flipped = sealBlob(repo.keys, 'data', pseudoRandom(50_000, 4));
    flipped.sealed[40]! ^= 0x01; // authentication fails
    const wrongId = sealBlob(repo.keys, 'data', pseudoRandom(60_000, 5), Buffer.alloc(32, 7)); // opens, hashes to another id
    expect(await repo.addSealedBlob(flipped)).toBe(true);
    expect(await repo.addSealedBlob(wrongId)).toBe(true);
    await repo.flush();
    const r = await checkRepository(repo, { readData: { kind: 'all' } });
    const blobErrors = r.findings.filter((f) => f.kind === 'blob-data');
    expect(blobErrors.map((f) => f.object).sort()).toEqual([`blob ${flipped.id.toString('hex')}`, `blob ${'07'.repeat(32)}`].sort());
    expect(blobErrors.find((f) => f.object.includes(flipped.id.toString('hex')))!.message).toMatch(/authentication failed/);
    expect(blobErrors.find((f) => f.object.includes('07'.repeat(32)))!.message).toMatch(/content does not match its id/);
    expect(r.errors).toBe(2); // the good blobs of the same pack verified
    expect(r.stats.packsRead).toBe(1);
    await repo.close();
  });
});
