import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Repository, packName } from '../../src/repo/repository.js';
import { IntegrityError, NoRepositoryError, RepositoryExistsError, WrongPasswordError } from '../../src/repo/errors.js';
import { toHex } from '../../src/util/hex.js';
import type { Snapshot } from '../../src/repo/formats.js';
import { backends, makeLocal, makeTempDir } from '../helpers/storage-backends.js';
import type { Storage } from '../../src/storage/types.js';
import { StorageError } from '../../src/storage/errors.js';
import { pseudoRandom, testKdf } from '../helpers/repo.js';
import { names } from '../helpers/storage-asserts.js';

function snapshotFor(tree: Buffer): Snapshot {
  return {
    version: 1,
    time: new Date().toISOString(),
    tree: toHex(tree),
    paths: ['/srv'],
    hostname: 'test-host',
    tags: ['t1'],
    source: { type: 'files' },
  };
}

describe.each(backends)('repository on $name', (backend) => {
  it('init then open with the password; a wrong or empty password is refused', async () => {
    const storage = await backend.make();
    const cacheDir = await makeTempDir();
    const repo = await Repository.init(storage, 'correct horse', { kdf: testKdf(), cacheDir });
    expect(repo.id).toMatch(/^[0-9a-f]{64}$/);
    await repo.close();
    const again = await Repository.open(storage, 'correct horse', { cacheDir });
    expect(again.id).toBe(repo.id);
    expect(again.config.chunker).toEqual({ algorithm: 'fastcdc-gear32-v1', min: 524288, avg: 1048576, max: 8388608 });
    await again.close();
    await expect(Repository.open(storage, 'wrong', { cacheDir })).rejects.toBeInstanceOf(WrongPasswordError);
    await expect(Repository.open(storage, '', { cacheDir })).rejects.toThrow(/empty password/);
    await expect(Repository.init(storage, 'other', { kdf: testKdf(), cacheDir })).rejects.toBeInstanceOf(RepositoryExistsError);
    expect(await names(storage, 'keys/')).toHaveLength(1);
  });

  it('open where there is no repository says so', async () => {
    const storage = await backend.make();
    await expect(Repository.open(storage, 'pw', { cacheDir: await makeTempDir() })).rejects.toBeInstanceOf(NoRepositoryError);
  });

  it('holds every write until the gate opens, and fails them all when it does not (a lock still being checked)', async () => {
    const storage = await backend.make();
    const repo = await Repository.init(storage, 'pw', { kdf: testKdf(), cacheDir: await makeTempDir() });
    let open!: () => void;
    repo.holdWritesUntil(new Promise<void>((r) => (open = r)));
    const tree = (await repo.saveBlob('tree', Buffer.from('{"nodes":[]}'))).id;
    let saved = false;
    const flushed = repo.flush().then(() => repo.saveSnapshot(snapshotFor(tree))).then(() => (saved = true));
    await new Promise((r) => setTimeout(r, 100));
    expect(saved).toBe(false);
    expect(await names(storage, 'data/')).toEqual([]);
    expect(await names(storage, 'snapshots/')).toEqual([]);
    open();
    await flushed;
    expect(await names(storage, 'snapshots/')).toHaveLength(1);

    const conflict = new Error('repository is already locked: exclusive lock held by someone');
    const closed = Promise.reject(conflict);
    closed.catch(() => undefined);
    repo.holdWritesUntil(closed);
    await repo.saveBlob('data', pseudoRandom(1 << 20, 7));
    await expect(repo.flush()).rejects.toBe(conflict);
    await expect(repo.saveSnapshot(snapshotFor(tree))).rejects.toBe(conflict);
    await expect(repo.deleteSnapshot('0'.repeat(64))).rejects.toBe(conflict);
    expect(await names(storage, 'snapshots/')).toHaveLength(1);
    expect(await names(storage, 'data/')).toHaveLength(1); // the first tree pack only
    await repo.close();
  });

  it('stores blobs in packs, indexes them, and reads them back from a fresh cache', async () => {
    const storage = await backend.make();
    const repo = await Repository.init(storage, 'pw', { kdf: testKdf(), cacheDir: await makeTempDir() });
    const datas = [pseudoRandom(3 << 20, 1), Buffer.alloc(2 << 20), Buffer.from('x'.repeat(100_000)), Buffer.alloc(0)];
    const ids: Buffer[] = [];
    for (const d of datas) ids.push((await repo.saveBlob('data', d)).id);
    const tree = Buffer.from(JSON.stringify({ nodes: [] }));
    const treeId = (await repo.saveBlob('tree', tree)).id;
    expect((await repo.saveBlob('data', datas[0]!)).added).toBe(false);
    await repo.flush();
    const snapId = await repo.saveSnapshot(snapshotFor(treeId));
    await repo.close();

    const packs = await names(storage, 'data/');
    expect(packs).toHaveLength(2); // one data pack, one tree pack
    for (const p of packs) expect(p).toMatch(/^data\/([0-9a-f]{2})\/\1[0-9a-f]{62}$/);
    expect(await names(storage, 'index/')).toHaveLength(1);

    const fresh = await Repository.open(storage, 'pw', { cacheDir: await makeTempDir(), sync: false });
    expect(await fresh.syncIndex()).toEqual({ added: 1, removed: 0 });
    for (let i = 0; i < datas.length; i++) expect((await fresh.loadBlob(ids[i]!)).equals(datas[i]!)).toBe(true);
    expect((await fresh.loadBlob(treeId)).equals(tree)).toBe(true);
    const snaps = await fresh.listSnapshots();
    expect(snaps.map((s) => s.id)).toEqual([snapId]);
    expect(snaps[0]!.snapshot.tree).toBe(toHex(treeId));
    const header = await fresh.readPackHeader(packs[0]!.slice(8));
    expect(header.length).toBeGreaterThan(0);
    // a second session deduplicates against what the first stored
    expect((await fresh.saveBlob('data', datas[1]!)).added).toBe(false);
    await fresh.flush();
    expect(await names(storage, 'data/')).toHaveLength(2);
    await fresh.close();
  });

  it('cuts packs at about 16 MiB and keeps data and tree blobs apart', async () => {
    const storage = await backend.make();
    const repo = await Repository.init(storage, 'pw', { kdf: testKdf(), cacheDir: await makeTempDir() });
    for (let i = 0; i < 40; i++) await repo.saveBlob('data', pseudoRandom(1 << 20, 100 + i));
    await repo.flush();
    await repo.syncIndex();
    const packs = repo.cache.packs();
    expect(packs.length).toBe(3);
    for (const p of packs) expect(p.size).toBeLessThanOrEqual(16 * 1024 * 1024);
    expect(packs.filter((p) => p.size > 15 * 1024 * 1024)).toHaveLength(2);
    await repo.close();
  });

  it('keeps every blob when many are saved concurrently (several files stored at once)', async () => {
    const storage = await backend.make();
    const repo = await Repository.init(storage, 'pw', { kdf: testKdf(), cacheDir: await makeTempDir() });
    const datas = Array.from({ length: 40 }, (_, i) => pseudoRandom((1 << 20) + i * 1000, 500 + i));
    const results = await Promise.all(datas.map((d, i) => repo.saveBlob(i % 5 === 0 ? 'tree' : 'data', d)));
    await repo.flush();
    await repo.close();
    const fresh = await Repository.open(storage, 'pw', { cacheDir: await makeTempDir() });
    for (let i = 0; i < datas.length; i++) expect((await fresh.loadBlob(results[i]!.id)).equals(datas[i]!)).toBe(true);
    await fresh.close();
  });

  it('names each damaged object: config, key, index, snapshot, pack', async () => {
    const storage = await backend.make();
    const cacheDir = await makeTempDir();
    const repo = await Repository.init(storage, 'pw', { kdf: testKdf(), cacheDir });
    const blobId = (await repo.saveBlob('data', pseudoRandom(100_000, 7))).id;
    await repo.flush();
    const snapId = await repo.saveSnapshot(snapshotFor(blobId));
    await repo.close();

    const flip = async (name: string, at: (len: number) => number) => {
      const orig = await storage.get(name);
      const bad = Buffer.from(orig);
      bad[at(bad.length)]! ^= 0x04;
      await storage.put(name, bad);
      return async () => storage.put(name, orig);
    };
    const open = async () => Repository.open(storage, 'pw', { cacheDir: await makeTempDir(), sync: false });

    let restore = await flip('config', (n) => n - 5);
    await expect(open()).rejects.toThrow(/integrity error in config/);
    await restore();

    const keyName = (await names(storage, 'keys/'))[0]!;
    restore = await flip(keyName, (n) => n >> 1);
    await expect(open()).rejects.toThrow(new RegExp(`integrity error in ${keyName}`));
    await restore();

    const indexName = (await names(storage, 'index/'))[0]!;
    restore = await flip(indexName, (n) => n - 20);
    // a damaged index file or snapshot is skipped with a warning naming it, and remembered
    const warnings: string[] = [];
    let r = await Repository.open(storage, 'pw', { cacheDir: await makeTempDir(), sync: false, warn: (m) => warnings.push(m) });
    await r.syncIndex();
    expect([...r.unreadableIndex.values()]).toEqual([expect.stringMatching(new RegExp(`integrity error in ${indexName}`))]);
    expect(warnings).toEqual([expect.stringMatching(new RegExp(`skipping ${indexName}: integrity error in ${indexName}`))]);
    await r.close();
    await restore();

    restore = await flip(`snapshots/${snapId}`, () => 30);
    r = await open();
    expect(await r.listSnapshots()).toEqual([]);
    expect([...r.unreadableSnapshots.values()]).toEqual([expect.stringMatching(new RegExp(`integrity error in snapshots/${snapId}`))]);
    await r.close();
    await restore();

    const pack = (await names(storage, 'data/'))[0]!;
    restore = await flip(pack, () => 50);
    r = await open();
    await r.syncIndex();
    await expect(r.loadBlob(blobId)).rejects.toBeInstanceOf(IntegrityError);
    await r.close();
    await restore();
    restore = await flip(pack, (n) => n - 10);
    r = await open();
    await expect(r.readPackHeader(pack.slice(8))).rejects.toThrow(/integrity error in data\/.*header/);
    await r.close();
    await restore();

    r = await open();
    await r.syncIndex();
    expect((await r.loadBlob(blobId)).equals(pseudoRandom(100_000, 7))).toBe(true);
    await r.close();
  });

  it('refuses truncated objects with an integrity error naming them', async () => {
    const storage = await backend.make();
    const repo = await Repository.init(storage, 'pw', { kdf: testKdf(), cacheDir: await makeTempDir() });
    const blobId = (await repo.saveBlob('data', pseudoRandom(5000, 3))).id;
    await repo.flush();
    await repo.saveSnapshot(snapshotFor(blobId));
    await repo.close();
    const objects = ['config', ...(await names(storage, 'keys/')), ...(await names(storage, 'index/')), ...(await names(storage, 'snapshots/')), ...(await names(storage, 'data/'))];
    for (const name of objects) {
      const orig = await storage.get(name);
      await storage.put(name, orig.subarray(0, orig.length - 7));
      const attempt = async () => {
        const r = await Repository.open(storage, 'pw', { cacheDir: await makeTempDir(), sync: false });
        try {
          await r.syncIndex();
          await r.listSnapshots();
          for (const why of [...r.unreadableIndex.values(), ...r.unreadableSnapshots.values()]) throw new Error(why);
          if (name.startsWith('data/')) await r.readPackHeader(name.slice(name.lastIndexOf('/') + 1));
        } finally {
          await r.close();
        }
      };
      await expect(attempt(), name).rejects.toThrow(new RegExp(`integrity error in ${name.replace(/\//g, '\\/')}`));
      await storage.put(name, orig);
    }
  });

  it('manages keys: add, open with either, passwd, remove; never the last or current one', async () => {
    const storage = await backend.make();
    const cacheDir = await makeTempDir();
    const repo = await Repository.init(storage, 'one', { kdf: testKdf(), cacheDir });
    const second = await repo.addKey('two', testKdf());
    expect((await repo.listKeys()).map((k) => k.id).sort()).toEqual([repo.keyId, second].sort());
    await expect(repo.removeKey(repo.keyId)).rejects.toThrow(/key in use/);
    await repo.close();

    const viaTwo = await Repository.open(storage, 'two', { cacheDir });
    expect(viaTwo.keyId).toBe(second);
    const third = await viaTwo.changePassword('three', testKdf());
    await viaTwo.close();
    await expect(Repository.open(storage, 'two', { cacheDir })).rejects.toBeInstanceOf(WrongPasswordError);
    const viaThree = await Repository.open(storage, 'three', { cacheDir });
    expect(viaThree.keyId).toBe(third);
    await viaThree.removeKey(repo.keyId.slice(0, 10));
    await expect(Repository.open(storage, 'one', { cacheDir })).rejects.toBeInstanceOf(WrongPasswordError);
    expect(await viaThree.listKeys()).toHaveLength(1);
    await viaThree.close();
  });

  it('cache: picks up index files written by another client and drops deleted ones', async () => {
    const storage = await backend.make();
    const a = await Repository.init(storage, 'pw', { kdf: testKdf(), cacheDir: await makeTempDir() });
    const b = await Repository.open(storage, 'pw', { cacheDir: await makeTempDir() });
    const id1 = (await a.saveBlob('data', Buffer.from('one'))).id;
    await a.flush();
    expect(b.hasBlob(id1)).toBe(false);
    expect(await b.syncIndex()).toEqual({ added: 1, removed: 0 });
    expect(b.hasBlob(id1)).toBe(true);
    for (const n of await names(storage, 'index/')) await storage.delete(n);
    expect(await b.syncIndex()).toEqual({ added: 0, removed: 1 });
    expect(b.hasBlob(id1)).toBe(false);
    await a.close();
    await b.close();
  });

  it('open syncs the cache: index entries and snapshots written elsewhere are there at once', async () => {
    const storage = await backend.make();
    const a = await Repository.init(storage, 'pw', { kdf: testKdf(), cacheDir: await makeTempDir() });
    const id = (await a.saveBlob('tree', Buffer.from('{"nodes":[]}'))).id;
    await a.flush();
    const snap = await a.saveSnapshot(snapshotFor(id));
    await a.close();
    const b = await Repository.open(storage, 'pw', { cacheDir: await makeTempDir() });
    expect(b.hasBlob(id)).toBe(true);
    expect(b.cache.snapshotIds()).toEqual(new Set([snap]));
    await b.close();
  });
});

describe('repository blob ids', () => {
  it('are keyed: the same data has different ids in different repositories', async () => {
    const s1 = await backends[0]!.make();
    const s2 = await backends[0]!.make();
    const r1 = await Repository.init(s1, 'pw', { kdf: testKdf(), cacheDir: await makeTempDir() });
    const r2 = await Repository.init(s2, 'pw', { kdf: testKdf(), cacheDir: await makeTempDir() });
    const data = crypto.randomBytes(1000);
    const id1 = (await r1.saveBlob('data', data)).id;
    const id2 = (await r2.saveBlob('data', data)).id;
    expect(id1.equals(id2)).toBe(false);
    expect(id1.equals(crypto.createHash('sha256').update(data).digest())).toBe(false);
    expect(packName('ab'.repeat(32))).toBe(`data/ab/${'ab'.repeat(32)}`);
    await r1.close();
    await r2.close();
  });
});

describe('tree cache', () => {
  it('trees come from the local cache (sealed, checked against their id), not a GET; check and repair read the repository', async () => {
    const { LocalStorage } = await import('../../src/storage/local.js');
    const dir = await makeTempDir();
    const storage = new LocalStorage(dir);
    const cacheDir = await makeTempDir();
    const repo = await Repository.init(storage, 'pw', { kdf: testKdf(), cacheDir });
    const tree = Buffer.from('{"nodes":[]}');
    const data = pseudoRandom(50_000, 3);
    const { id: treeId } = await repo.saveBlob('tree', tree);
    const { id: dataId } = await repo.saveBlob('data', data);
    await repo.flush();
    await repo.saveSnapshot(snapshotFor(treeId));
    await repo.close();
    // written through at backup time: sealed, not plaintext
    const file = path.join(cacheDir, repo.id, 'trees', toHex(treeId).slice(0, 2), toHex(treeId));
    const sealed = fs.readFileSync(file);
    expect(sealed.includes(tree)).toBe(false);
    expect((fs.statSync(file).mode & 0o777).toString(8)).toBe('600');

    const gets: string[] = [];
    const counting = new Proxy(storage, {
      get(target, prop, receiver) {
        if (prop === 'get') return (name: string, range?: unknown) => (gets.push(name), target.get(name, range as never));
        return Reflect.get(target, prop, receiver) as unknown;
      },
    });
    const again = await Repository.open(counting, 'pw', { cacheDir });
    gets.length = 0;
    expect((await again.loadBlob(treeId)).equals(tree)).toBe(true);
    expect(gets).toEqual([]);
    expect((await again.loadBlob(dataId)).equals(data)).toBe(true); // data blobs are not cached
    expect(gets.filter((g) => g.startsWith('data/'))).toHaveLength(1);

    // a damaged cache file is a miss: read from the repository, and the cache is mended
    fs.writeFileSync(file, Buffer.alloc(sealed.length, 1));
    gets.length = 0;
    expect((await again.loadBlob(treeId)).equals(tree)).toBe(true);
    expect(gets.filter((g) => g.startsWith('data/'))).toHaveLength(1);
    expect(fs.readFileSync(file).equals(Buffer.alloc(sealed.length, 1))).toBe(false);

    // check judges the repository: a damaged tree pack is found even though the cache holds the tree
    const { checkRepository } = await import('../../src/engine/check.js');
    const treePack = (await names(storage, 'data/')).find((n) => fs.readFileSync(path.join(dir, n)).length < 2000)!;
    const bytes = fs.readFileSync(path.join(dir, treePack));
    bytes[10] ^= 0xff;
    fs.writeFileSync(path.join(dir, treePack), bytes);
    gets.length = 0;
    await expect(again.loadBlob(treeId)).resolves.toEqual(tree); // the cache still serves it
    const result = await checkRepository(again, {});
    expect(result.errors).toBeGreaterThan(0);
    expect(gets.filter((g) => g.startsWith('data/')).length).toBeGreaterThan(0);
    await again.close();
  });
});

describe('pack uploads', () => {
  /** Local storage whose pack writes take 60 ms, counting how many run at once. */
  async function slowPacks(): Promise<{ storage: Storage; most: () => number; packs: () => number }> {
    const inner = await makeLocal();
    let now = 0;
    let most = 0;
    let packs = 0;
    const storage = Object.create(inner) as Storage;
    const slow = async (write: () => Promise<void>): Promise<void> => {
      now++;
      most = Math.max(most, now);
      try {
        await new Promise((r) => setTimeout(r, 60));
        await write();
        packs++;
      } finally {
        now--;
      }
    };
    storage.put = async (name, data, opts) => {
      if (!name.startsWith('data/')) return inner.put(name, data, opts);
      await slow(() => inner.put(name, data, opts));
    };
    // spooled packs (the default) arrive through putFile
    storage.putFile = async (name, file, size) => slow(() => inner.putFile!(name, file, size));
    return { storage, most: () => most, packs: () => packs };
  }

  it.each([1, 3])('uploads at most uploadConcurrency = %i packs at once, and all of them', async (n) => {
    const { storage, most, packs } = await slowPacks();
    const repo = await Repository.init(storage, 'pw', { kdf: testKdf(), cacheDir: await makeTempDir(), uploadConcurrency: n });
    const ids: Buffer[] = [];
    // 8 blobs of 5 MiB of random bytes: packs of ~16 MiB, so 2–3 packs plus the last one
    for (let i = 0; i < 8; i++) ids.push((await repo.saveBlob('data', pseudoRandom(5 << 20, 100 + i))).id);
    await repo.flush();
    expect(most()).toBeLessThanOrEqual(n);
    if (n > 1) expect(most()).toBeGreaterThan(1);
    expect(packs()).toBeGreaterThanOrEqual(2);
    for (let i = 0; i < 8; i++) expect((await repo.loadBlob(ids[i]!)).equals(pseudoRandom(5 << 20, 100 + i))).toBe(true);
    await repo.close();
  });
});

describe.each(backends)('spooled packs on $name', (backend) => {
  /** Spool files left anywhere a pack may be spooled: the local repository's data/ or the cache. */
  function spoolFiles(storage: Storage, cacheDir: string): string[] {
    const dirs = [storage.spoolDir, ...fs.readdirSync(cacheDir).map((d) => path.join(cacheDir, d, 'spool'))];
    return dirs.flatMap((d) => (d !== undefined && fs.existsSync(d) ? fs.readdirSync(d).filter((n) => n.startsWith('pack.tmp-')) : []));
  }

  it('packs are written through a spool file that is gone once they are stored', async () => {
    const storage = await backend.make();
    const cacheDir = await makeTempDir();
    const repo = await Repository.init(storage, 'pw', { kdf: testKdf(), cacheDir });
    const ids: Buffer[] = [];
    for (let i = 0; i < 7; i++) ids.push((await repo.saveBlob('data', pseudoRandom(5 << 20, 300 + i))).id);
    // the open pack is on disk, not in memory (and so are those still being stored)
    expect(spoolFiles(storage, cacheDir).length).toBeGreaterThanOrEqual(1);
    const tree = (await repo.saveBlob('tree', Buffer.from('{"nodes":[]}'))).id;
    await repo.flush();
    expect(spoolFiles(storage, cacheDir)).toEqual([]);
    const packs = await names(storage, 'data/');
    expect(packs.length).toBeGreaterThanOrEqual(3);
    for (const p of packs) expect(p).toMatch(/^data\/[0-9a-f]{2}\/[0-9a-f]{64}$/);
    if (storage.spoolDir === undefined) expect(fs.existsSync(path.join(cacheDir, repo.id, 'spool'))).toBe(true);
    await repo.close();
    const again = await Repository.open(storage, 'pw', { cacheDir: await makeTempDir() });
    for (let i = 0; i < 7; i++) expect((await again.loadBlob(ids[i]!)).equals(pseudoRandom(5 << 20, 300 + i))).toBe(true);
    expect((await again.loadBlob(tree)).toString()).toBe('{"nodes":[]}');
    await again.close();
  });

  it('a pack that cannot be stored fails the flush and leaves no spool file; close drops an open pack', async () => {
    const inner = await backend.make();
    const storage = Object.create(inner) as Storage;
    storage.putFile = async () => {
      throw new StorageError('access-denied', 'the store refuses packs', false);
    };
    const cacheDir = await makeTempDir();
    const repo = await Repository.init(storage, 'pw', { kdf: testKdf(), cacheDir });
    for (let i = 0; i < 4; i++) await repo.saveBlob('data', pseudoRandom(5 << 20, 400 + i)).catch(() => undefined);
    await expect(repo.flush()).rejects.toThrow(/refuses packs/);
    expect(spoolFiles(storage, cacheDir)).toEqual([]);
    expect(await names(inner, 'data/')).toEqual([]);
    await repo.close();

    const other = await Repository.open(inner, 'pw', { cacheDir });
    await other.saveBlob('data', Buffer.from('never flushed'));
    expect(spoolFiles(inner, cacheDir)).toHaveLength(1);
    await other.close();
    expect(spoolFiles(inner, cacheDir)).toEqual([]);
  });

  it('the first pack of a session removes spool files a killed writer left an hour ago, not fresh ones', async () => {
    const storage = await backend.make();
    const cacheDir = await makeTempDir();
    const repo = await Repository.init(storage, 'pw', { kdf: testKdf(), cacheDir });
    const dir = storage.spoolDir ?? path.join(cacheDir, repo.id, 'spool');
    fs.mkdirSync(dir, { recursive: true });
    const stale = path.join(dir, 'pack.tmp-00112233445566aa');
    const fresh = path.join(dir, 'pack.tmp-00112233445566bb');
    fs.writeFileSync(stale, 'left by a killed backup');
    fs.writeFileSync(fresh, 'another backup is writing this');
    const twoHoursAgo = new Date(Date.now() - 2 * 60 * 60 * 1000);
    fs.utimesSync(stale, twoHoursAgo, twoHoursAgo);
    await repo.saveBlob('data', Buffer.from('first blob of the session'));
    expect(fs.existsSync(stale)).toBe(false);
    expect(fs.existsSync(fresh)).toBe(true);
    await repo.flush();
    // neither is a pack to anyone who lists the repository
    expect((await names(storage, 'data/')).every((n) => /^data\/[0-9a-f]{2}\/[0-9a-f]{64}$/.test(n))).toBe(true);
    await repo.close();
  });

  it('LIFEBOAT_PACK_SPOOL=0 builds packs in memory instead', async () => {
    const storage = await backend.make();
    const cacheDir = await makeTempDir();
    process.env.LIFEBOAT_PACK_SPOOL = '0';
    try {
      const repo = await Repository.init(storage, 'pw', { kdf: testKdf(), cacheDir });
      const id = (await repo.saveBlob('data', pseudoRandom(1 << 20, 500))).id;
      expect(spoolFiles(storage, cacheDir)).toEqual([]);
      await repo.flush();
      expect((await repo.loadBlob(id)).equals(pseudoRandom(1 << 20, 500))).toBe(true);
      await repo.close();
    } finally {
      delete process.env.LIFEBOAT_PACK_SPOOL;
    }
  });
});

describe('blob lookups', () => {
  it('preloadBlobs answers hasBlob for indexed ids, and never says an unknown id is there', async () => {
    const storage = await makeLocal();
    const cacheDir = await makeTempDir();
    const repo = await Repository.init(storage, 'pw', { kdf: testKdf(), cacheDir });
    const a = (await repo.saveBlob('data', Buffer.from('blob a'))).id;
    const b = (await repo.saveBlob('data', Buffer.from('blob b'))).id;
    await repo.flush();
    await repo.close();
    const again = await Repository.open(storage, 'pw', { cacheDir });
    const unknown = crypto.randomBytes(32);
    expect(again.cache.hasMany([toHex(a), toHex(unknown), toHex(b), toHex(a)]).sort()).toEqual([toHex(a), toHex(b)].sort());
    again.preloadBlobs([toHex(a), toHex(b), toHex(unknown)]);
    for (let round = 0; round < 2; round++) {
      // the second round asks the index itself: each preloaded answer is used once
      expect(again.hasBlobHex(toHex(a))).toBe(true);
      expect(again.hasBlob(b)).toBe(true);
      expect(again.hasBlobHex(toHex(unknown))).toBe(false);
    }
    await again.close();
  });
});
