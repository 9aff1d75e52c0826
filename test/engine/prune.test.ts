/**
 * Prune's planning through the library, on both backends: duplicate copies of a blob (two
 * clients that stored it concurrently) keep exactly one; --max-unused decides whether partly
 * used packs are repacked; --max-repack-size bounds repacking; --repack-small merges small packs.
 * After every prune the repository checks clean and every snapshot's blobs load.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Repository } from '../../src/repo/repository.js';
import type { Storage } from '../../src/storage/types.js';
import { checkRepository } from '../../src/engine/check.js';
import { pruneRepository } from '../../src/engine/prune.js';
import { encodeTree, type TreeNode } from '../../src/engine/tree.js';
import { fromHexId, toHex } from '../../src/util/hex.js';
import { backends, makeTempDir } from '../helpers/storage-backends.js';
import { pseudoRandom, testKdf } from '../helpers/repo.js';

const MiB = 1024 * 1024;

function fileNode(name: string, ids: Buffer[], size: number): TreeNode {
  return {
    name: Buffer.from(name), type: 'file', mode: 0o100644, uid: 0, gid: 0,
    mtimeNs: 1n, ctimeNs: 1n, size, content: ids.map((i) => toHex(i)),
  };
}

/** A snapshot of one directory holding one file per blob list. */
async function snapshot(repo: Repository, files: Buffer[][]): Promise<string> {
  const nodes = files.map((ids, i) => fileNode(`f${i}`, ids, ids.length));
  const tree = (await repo.saveBlob('tree', encodeTree({ nodes }))).id;
  await repo.flush();
  return repo.saveSnapshot({ version: 1, time: new Date().toISOString(), tree: toHex(tree), paths: ['/d'], hostname: 'h', tags: [], source: { type: 'files' } });
}

async function packCount(storage: Storage): Promise<number> {
  let n = 0;
  for await (const o of storage.list('data/')) if (o.name.split('/').length === 3) n++;
  return n;
}

async function expectHealthy(repo: Repository, blobs: Buffer[]): Promise<void> {
  const r = await checkRepository(repo, { readData: { kind: 'all' } });
  expect(r.findings.filter((f) => f.severity === 'error')).toEqual([]);
  expect(r.findings).toEqual([]); // no unreferenced packs left either
  for (const id of blobs) expect((await repo.loadBlob(id)).length).toBeGreaterThan(0);
}

describe.each(backends)('prune planning on $name', (backend) => {
  const open = async (storage: Storage, cacheDir?: string) =>
    Repository.open(storage, 'pw', { cacheDir: cacheDir ?? (await makeTempDir()) });

  it('a blob two clients stored keeps exactly one copy', async () => {
    const storage = await backend.make();
    const init = await Repository.init(storage, 'pw', { kdf: testKdf(), cacheDir: await makeTempDir() });
    await init.close();
    // two clients with their own caches each store the same 3 MiB blob and a blob of their own
    const shared = pseudoRandom(3 * MiB, 1);
    const a = await open(storage);
    const b = await open(storage);
    const sa = (await a.saveBlob('data', shared)).id;
    const sb = (await b.saveBlob('data', shared)).id;
    expect(sa.equals(sb)).toBe(true);
    const own = [(await a.saveBlob('data', pseudoRandom(MiB, 2))).id, (await b.saveBlob('data', pseudoRandom(MiB, 3))).id];
    await snapshot(a, [[sa, own[0]!]]);
    await snapshot(b, [[sb, own[1]!]]);
    await a.close();
    await b.close();

    const repo = await open(storage);
    const dry = await pruneRepository(repo, { graceMs: 0, dryRun: true, maxUnused: { kind: 'percent', percent: 0 } });
    expect(dry.usedBlobs).toBe(3 + 2); // 3 data blobs and 2 trees
    expect(dry.unusedBytes).toBeGreaterThan(3 * MiB); // the second copy
    expect(dry.unusedBytes).toBeLessThan(3.1 * MiB);
    const r = await pruneRepository(repo, { graceMs: 0, maxUnused: { kind: 'percent', percent: 0 } });
    expect(r.bytesFreed).toBeGreaterThan(2.9 * MiB);
    expect(repo.cache.lookup(sa)).toHaveLength(1);
    await expectHealthy(repo, [sa, ...own]);
    await repo.close();
  });

  it('--max-unused decides about repacking; --max-repack-size bounds it', async () => {
    const storage = await backend.make();
    const repo = await Repository.init(storage, 'pw', { kdf: testKdf(), cacheDir: await makeTempDir() });
    // three data packs of ~15 MiB: 5 blobs of 3 MiB each
    const blobs: Buffer[] = [];
    for (let i = 0; i < 15; i++) blobs.push((await repo.saveBlob('data', pseudoRandom(3 * MiB, 100 + i))).id);
    await snapshot(repo, [blobs.slice(0, 15)]);
    const keep = blobs.filter((_, i) => i % 5 !== 0); // one blob of five unused in every pack
    const s2 = await snapshot(repo, [keep]);
    for (const s of repo.cache.allSnapshots()) if (s.id !== s2) await repo.deleteSnapshot(s.id);
    const packsBefore = await packCount(storage);

    // 20 % unused is within "unlimited" and within 30 %: nothing is repacked
    for (const maxUnused of [{ kind: 'unlimited' } as const, { kind: 'percent', percent: 30 } as const]) {
      const r = await pruneRepository(repo, { graceMs: 0, dryRun: true, maxUnused });
      expect(r.packsToRepack).toBe(0);
    }
    // at 0 % every partly used pack is repacked, unless the repack budget stops it after one
    const bounded = await pruneRepository(repo, { graceMs: 0, dryRun: true, maxUnused: { kind: 'percent', percent: 0 }, maxRepackBytes: 20 * MiB });
    expect(bounded.packsToRepack).toBe(1);
    const full = await pruneRepository(repo, { graceMs: 0, maxUnused: { kind: 'percent', percent: 0 } });
    // every data pack; of the two tree packs, the forgotten snapshot's goes whole, the other stays
    expect(packsBefore).toBe(5);
    expect(full.packsToRepack).toBe(3);
    expect(full.packsToDelete).toBe(1);
    expect(full.unusedAfter).toBe(0);
    expect(full.bytesFreed).toBeGreaterThan(8.9 * MiB); // three 3 MiB blobs
    await expectHealthy(repo, keep);
    await repo.close();
  });

  it('prune drops the cached trees of forgotten snapshots, keeps the live ones', async () => {
    const storage = await backend.make();
    const cacheDir = await makeTempDir();
    const repo = await Repository.init(storage, 'pw', { kdf: testKdf(), cacheDir });
    const kept = (await repo.saveBlob('data', pseudoRandom(MiB, 300))).id;
    const gone = (await repo.saveBlob('data', pseudoRandom(MiB, 301))).id;
    const s1 = await snapshot(repo, [[gone]]);
    await snapshot(repo, [[kept]]);
    const treesDir = path.join(cacheDir, repo.id, 'trees');
    const cached = () => fs.readdirSync(treesDir).flatMap((d) => fs.readdirSync(path.join(treesDir, d)));
    expect(cached()).toHaveLength(2);
    await repo.deleteSnapshot(s1);
    await pruneRepository(repo, { graceMs: 0, maxUnused: { kind: 'percent', percent: 0 } });
    const left = cached();
    expect(left).toHaveLength(1);
    expect(repo.cache.has(Buffer.from(left[0]!, 'hex'))).toBe(true);
    await expectHealthy(repo, [kept]);
    await repo.close();
  });

  it('--repack-small merges small packs into one', async () => {
    const storage = await backend.make();
    const repo = await Repository.init(storage, 'pw', { kdf: testKdf(), cacheDir: await makeTempDir() });
    const ids: Buffer[] = [];
    for (let i = 0; i < 4; i++) {
      ids.push((await repo.saveBlob('data', pseudoRandom(MiB, 200 + i))).id);
      await snapshot(repo, [ids.slice()]); // each flush cuts a small data pack and a tree pack
    }
    const before = await packCount(storage);
    expect(before).toBe(8);
    const plain = await pruneRepository(repo, { graceMs: 0 });
    expect(plain.packsToRepack).toBe(0);
    const small = await pruneRepository(repo, { graceMs: 0, repackSmall: true });
    expect(small.packsToRepack).toBe(8);
    expect(await packCount(storage)).toBe(2); // one data pack, one tree pack
    await expectHealthy(repo, ids);
    for (const s of repo.cache.allSnapshots()) expect(JSON.parse(s.json).tree).toMatch(/^[0-9a-f]{64}$/);
    expect((await repo.loadBlob(fromHexId(toHex(ids[3]!)))).length).toBe(MiB);
    await repo.close();
  });
});
