import crypto from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { Repository } from '../../src/repo/repository.js';
import { SealPool } from '../../src/repo/seal-pool.js';
import { storeStream } from '../../src/repo/write-path.js';
import { LocalStorage } from '../../src/storage/local.js';
import type { Storage } from '../../src/storage/types.js';
import { pseudoRandom, sqlText, testKdf, tmpDir } from '../helpers/repo.js';

const MiB = 1024 * 1024;


/** ~40 MiB: random, SQL text, the same random again (repeated chunks), more random; unique per seed. */
function mixed(seed: number): Buffer {
  const a = pseudoRandom(10 * MiB + 12345, seed);
  return Buffer.concat([a, sqlText(12 * MiB, seed + 1), a, pseudoRandom(8 * MiB - 777, seed + 2)]);
}

/** Feeds `data` in irregular pieces (views), like a read stream with short reads. */
async function* pieces(data: Buffer): AsyncGenerator<Buffer> {
  const sizes = [8 * MiB, 3 * MiB + 17, 65536, 5 * MiB - 3, 1];
  let pos = 0;
  for (let i = 0; pos < data.length; i++) {
    const n = Math.min(sizes[i % sizes.length]!, data.length - pos);
    yield data.subarray(pos, pos + n);
    pos += n;
  }
}

async function names(storage: Storage, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const o of storage.list(prefix)) out.push(o.name);
  return out.sort();
}

describe('storeStream', () => {
  const pools: SealPool[] = [];
  afterAll(async () => {
    for (const p of pools) await p.close();
  });

  it.each([
    { workers: 2, hashFirst: true },
    { workers: 2, hashFirst: false },
    { workers: 2, hashFirst: 'auto' as const },
    { workers: 0, hashFirst: true },
  ])('round trip through a local repository (workers=$workers, hashFirst=$hashFirst); storing again adds no pack',
    async ({ workers, hashFirst }) => {
      const dir = tmpDir();
      const storage = new LocalStorage(dir);
      const repo = await Repository.init(storage, 'pw', { kdf: testKdf(), cacheDir: tmpDir() });
      const pool = await SealPool.create(repo.keys, { workers });
      pools.push(pool);
      const input = mixed(workers * 10 + String(hashFirst).length);

      const r = await storeStream(repo, pool, pieces(input), { hashFirst });
      await repo.flush();
      expect(r.size).toBe(input.length);
      expect(r.ids.length).toBe(r.lengths.length);
      expect(r.lengths.reduce((a, b) => a + b, 0)).toBe(input.length);
      expect(r.ids.every((id) => id.length === 32)).toBe(true);
      // chunks that repeat (if the repeated random part resynchronised the cuts) are stored once
      const unique = new Set(r.ids.map((id) => id.toString('hex')));
      expect(r.newChunks).toBe(unique.size);
      expect(r.storedBytes).toBeLessThan(r.newBytes); // the SQL text compresses
      const packs = await names(storage, 'data/');
      expect(packs.length).toBeGreaterThanOrEqual(2);
      await repo.close();

      // a fresh process's view: new Repository, new cache, only what is in the directory
      const again = await Repository.open(new LocalStorage(dir), 'pw', { cacheDir: tmpDir() });
      await again.syncIndex();
      const blobs: Buffer[] = [];
      for (const id of r.ids) blobs.push(await again.loadBlob(id));
      expect(Buffer.concat(blobs).equals(input)).toBe(true);

      // dedup: the same stream again writes no pack and no new blob
      const pool2 = await SealPool.create(again.keys, { workers });
      pools.push(pool2);
      const r2 = await storeStream(again, pool2, pieces(input), { hashFirst });
      await again.flush();
      expect(r2.newChunks).toBe(0);
      expect(r2.newBytes).toBe(0);
      expect(r2.ids.map((b) => b.toString('hex'))).toEqual(r.ids.map((b) => b.toString('hex')));
      expect(await names(storage, 'data/')).toEqual(packs);
      await again.close();
    });

  it.each([true, false, 'auto' as const])('stores chunks repeated within a stream once (hashFirst=%s)', async (hashFirst) => {
    const repo = await Repository.init(new LocalStorage(tmpDir()), 'pw', { kdf: testKdf(), cacheDir: tmpDir() });
    const pool = await SealPool.create(repo.keys, { workers: 2 });
    pools.push(pool);
    const a = pseudoRandom(300_000, 42);
    const input = Buffer.concat([a, a, a, a]);
    // small chunks so that cuts resynchronise within each copy whatever the key
    const chunker = { min: 1024, avg: 4096, max: 16384 };
    const r = await storeStream(repo, pool, pieces(input), { hashFirst, chunker });
    await repo.flush();
    const unique = new Set(r.ids.map((id) => id.toString('hex')));
    expect(unique.size).toBeLessThan(r.ids.length * 0.4);
    expect(r.newChunks).toBe(unique.size);
    const back = Buffer.concat(await Promise.all(r.ids.map((id) => repo.loadBlob(id))));
    expect(back.equals(input)).toBe(true);
    await repo.close();
  });

  it.each(['memory', 'spool'] as const)('packs built in %s reuse their buffers and are byte-exact', async (where) => {
    const dir = tmpDir();
    // memory: joined in the workers into reused pack buffers; spool: written to a file as the
    // blobs come, each blob's buffer handed back to the workers to seal into again
    if (where === 'memory') process.env.LIFEBOAT_PACK_SPOOL = '0';
    let repo: Repository;
    try {
      repo = await Repository.init(new LocalStorage(dir), 'pw', { kdf: testKdf(), cacheDir: tmpDir(), uploadConcurrency: 1 });
    } finally {
      delete process.env.LIFEBOAT_PACK_SPOOL;
    }
    const pool = await SealPool.create(repo.keys, { workers: 2 });
    pools.push(pool);
    const input = pseudoRandom(60 * MiB, 77);
    const r = await storeStream(repo, pool, pieces(input));
    await repo.flush();
    expect(repo.packAssembler).not.toBeNull();
    if (where === 'memory') expect(pool.stats.packBuffersReused).toBeGreaterThan(0);
    else expect(pool.stats.packBuffersReused).toBe(0);
    // how many depends on how far sealing runs ahead of packing (CI load, native sealing): some
    expect(pool.stats.sealedBuffersRecycled).toBeGreaterThan(0);
    await repo.close();
    const again = await Repository.open(new LocalStorage(dir), 'pw', { cacheDir: tmpDir() });
    await again.syncIndex();
    // every pack's name is the SHA-256 of its bytes, and its header reads back
    const packs = await names(again.storage, 'data/');
    expect(packs.length).toBeGreaterThanOrEqual(4);
    for (const name of packs) {
      await again.getVerified(name);
      expect((await again.readPackHeader(name.slice(name.lastIndexOf('/') + 1))).length).toBeGreaterThan(0);
    }
    const back = Buffer.concat(await Promise.all(r.ids.map((id) => again.loadBlob(id))));
    expect(back.equals(input)).toBe(true);
    await again.close();
  });

  it('handles an empty stream and a stream of one small piece', async () => {
    const storage = new LocalStorage(tmpDir());
    const repo = await Repository.init(storage, 'pw', { kdf: testKdf(), cacheDir: tmpDir() });
    const pool = await SealPool.create(repo.keys, { workers: 2 });
    pools.push(pool);
    const empty = await storeStream(repo, pool, []);
    expect(empty).toMatchObject({ ids: [], size: 0, newChunks: 0 });
    const small = crypto.randomBytes(1000);
    const one = await storeStream(repo, pool, [small]);
    expect(one.ids.length).toBe(1);
    await repo.flush();
    expect((await repo.loadBlob(one.ids[0]!)).equals(small)).toBe(true);
    await repo.close();
  });

  it('two streams share one pool and one repository concurrently', async () => {
    const dir = tmpDir();
    const repo = await Repository.init(new LocalStorage(dir), 'pw', { kdf: testKdf(), cacheDir: tmpDir() });
    const pool = await SealPool.create(repo.keys, { workers: 2, maxInFlight: 4 });
    pools.push(pool);
    const a = pseudoRandom(9 * MiB, 101);
    const b = sqlText(9 * MiB, 202);
    const [ra, rb] = await Promise.all([storeStream(repo, pool, pieces(a)), storeStream(repo, pool, pieces(b))]);
    await repo.flush();
    await repo.close();
    const again = await Repository.open(new LocalStorage(dir), 'pw', { cacheDir: tmpDir() });
    await again.syncIndex();
    const load = async (ids: Buffer[]) => Buffer.concat(await Promise.all(ids.map((id) => again.loadBlob(id))));
    expect((await load(ra.ids)).equals(a)).toBe(true);
    expect((await load(rb.ids)).equals(b)).toBe(true);
    await again.close();
  });
});
