import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { restore, type RestoreOptions } from '../../src/engine/restorer.js';
import { decodeGroups, planRanges } from '../../src/engine/restore-fetch.js';
import { PathMatcher } from '../../src/engine/path-match.js';
import { getXattr, listXattrs } from '../../src/native/index.js';
import { packName, type Repository } from '../../src/repo/repository.js';
import { blobId } from '../../src/repo/keys-derive.js';
import { LocalStorage } from '../../src/storage/local.js';
import { pseudoRandom, tmpDir } from '../helpers/repo.js';
import { T0, dirNode, fileNode, makeRepo, node, saveSnapshot } from './restore-fixtures.js';
import { toHex } from '../../src/util/hex.js';

const isRoot = process.getuid?.() === 0;
let repo: Repository;
let snap: string;
const big = pseudoRandom(3 * 1024 * 1024 + 17, 7);
const sparseData = Buffer.concat([Buffer.alloc(1 << 20), Buffer.from('middle'), Buffer.alloc(2 << 20)]);
const rawName = Buffer.from([0x6e, 0xff, 0xfe, 0x2e, 0x62, 0x69, 0x6e]);

beforeAll(async () => {
  repo = await makeRepo();
  const shared = pseudoRandom(300_000, 3);
  const u = await dirNode(repo, 'u', [
    await fileNode(repo, 'big.bin', big, { mode: 0o100600, mtimeNs: T0 + 1n, atimeNs: T0 - 5n }),
    await fileNode(repo, 'empty', Buffer.alloc(0)),
    await fileNode(repo, 'dup1', shared),
    await fileNode(repo, 'dup2', shared, { mode: 0o104755, uid: 1234, gid: 4321 }),
    await fileNode(repo, 'hard-a', Buffer.from('linked'), { inode: 99, device: 5, links: 2 }),
    await fileNode(repo, 'hard-b', Buffer.from('linked'), { inode: 99, device: 5, links: 2 }),
    await fileNode(repo, 'sparse', sparseData, { sparse: true }, 1 << 20),
    await fileNode(repo, rawName, Buffer.from('raw name')),
    await fileNode(repo, 'xattr', Buffer.from('x'), { xattrs: [{ name: 'user.k', value: Buffer.from([1, 2, 0, 3]) }] }),
    node('link', 'symlink', { target: Buffer.from('big.bin') }),
    node('dangling', 'symlink', { target: Buffer.from([0x2e, 0x2e, 0x2f, 0xff, 0x6e, 0x6f]) }),
    node('pipe', 'fifo', { mode: 0o010640 }),
    await dirNode(repo, 'emptydir', [], { mode: 0o040700, mtimeNs: T0 + 77n }),
    await dirNode(repo, 'ro', [await fileNode(repo, 'f', Buffer.from('in a read-only dir'))], { mode: 0o040555 }),
    node('null', 'chardev', { mode: 0o020666, rdev: fs.statSync('/dev/null').rdev }),
  ], { mtimeNs: T0 + 3n });
  snap = await saveSnapshot(repo, [await dirNode(repo, 'home', [u]), await dirNode(repo, 'etc', [await fileNode(repo, 'conf', Buffer.from('a=1\n'))])], ['/home', '/etc']);
});

afterAll(async () => {
  await repo?.close();
});

async function run(opts: Partial<RestoreOptions> = {}) {
  const target = opts.target ?? tmpDir('lifeboat-restore-');
  const warnings: string[] = [];
  const r = await restore(repo, snap, { target, onWarning: (w) => warnings.push(w), ...opts });
  return { target, r, warnings };
}

describe('restore (library)', () => {
  it('restores a whole snapshot at its absolute paths, exactly', async () => {
    const { target, r } = await run();
    expect(r.errors).toEqual([]);
    const u = path.join(target, 'home/u');
    // stat before reading: relatime moves an atime older than the mtime on the first read
    const st = fs.statSync(path.join(u, 'big.bin'), { bigint: true });
    expect(st.mtimeNs).toBe(T0 + 1n);
    expect(st.atimeNs).toBe(T0 - 5n);
    expect(fs.readFileSync(path.join(u, 'big.bin')).equals(big)).toBe(true);
    expect(Number(st.mode) & 0o7777).toBe(0o600);
    expect(fs.statSync(path.join(u, 'empty')).size).toBe(0);
    expect(fs.readFileSync(path.join(u, 'dup1')).equals(fs.readFileSync(path.join(u, 'dup2')))).toBe(true);
    if (isRoot) {
      const d2 = fs.statSync(path.join(u, 'dup2'));
      expect([d2.uid, d2.gid, d2.mode & 0o7777]).toEqual([1234, 4321, 0o4755]);
      const dev = fs.lstatSync(path.join(u, 'null'));
      expect(dev.isCharacterDevice()).toBe(true);
      expect(dev.rdev).toBe(fs.statSync('/dev/null').rdev);
    }
    expect(fs.statSync(path.join(u, 'hard-a')).ino).toBe(fs.statSync(path.join(u, 'hard-b')).ino);
    expect(fs.statSync(path.join(u, 'hard-a')).nlink).toBe(2);
    const sp = fs.statSync(path.join(u, 'sparse'));
    expect(sp.size).toBe(sparseData.length);
    expect(sp.blocks * 512).toBeLessThan(64 * 1024);
    expect(fs.readFileSync(path.join(u, 'sparse')).equals(sparseData)).toBe(true);
    const rawPath = Buffer.concat([Buffer.from(u + '/'), rawName]);
    expect(fs.readFileSync(rawPath).toString()).toBe('raw name');
    expect(listXattrs(path.join(u, 'xattr'))).toContain('user.k');
    expect(getXattr(path.join(u, 'xattr'), 'user.k')).toEqual(Buffer.from([1, 2, 0, 3]));
    expect(fs.readlinkSync(path.join(u, 'link'))).toBe('big.bin');
    expect(fs.readlinkSync(path.join(u, 'dangling'), { encoding: 'buffer' })).toEqual(Buffer.from([0x2e, 0x2e, 0x2f, 0xff, 0x6e, 0x6f]));
    expect(fs.lstatSync(path.join(u, 'link'), { bigint: true }).mtimeNs).toBe(T0);
    expect(fs.lstatSync(path.join(u, 'pipe')).isFIFO()).toBe(true);
    expect(fs.lstatSync(path.join(u, 'pipe')).mode & 0o777).toBe(0o640);
    const ed = fs.statSync(path.join(u, 'emptydir'), { bigint: true });
    expect([Number(ed.mode) & 0o777, ed.mtimeNs]).toEqual([0o700, T0 + 77n]);
    expect(fs.statSync(path.join(u, 'ro')).mode & 0o777).toBe(0o555);
    expect(fs.readFileSync(path.join(u, 'ro/f'), 'utf8')).toBe('in a read-only dir');
    expect(fs.statSync(u, { bigint: true }).mtimeNs).toBe(T0 + 3n);
    expect(fs.readFileSync(path.join(target, 'etc/conf'), 'utf8')).toBe('a=1\n');
    // no temporary files left
    expect(fs.readdirSync(u).filter((n) => n.startsWith('.lifeboat-'))).toEqual([]);
    expect(r.hardlinks).toBe(1);
  });

  it('restores the same through the worker pool (blobs opened in workers) and verifies it', async () => {
    const { target, r } = await run({ workers: 2, verify: true });
    expect(r.errors).toEqual([]);
    expect(r.filesVerified).toBe(r.filesRestored - r.hardlinks);
    const u = path.join(target, 'home/u');
    expect(fs.readFileSync(path.join(u, 'big.bin')).equals(big)).toBe(true);
    expect(fs.readFileSync(path.join(u, 'sparse')).equals(sparseData)).toBe(true);
    expect(fs.readFileSync(path.join(u, 'dup2')).equals(fs.readFileSync(path.join(u, 'dup1')))).toBe(true);
  });

  it('with few descriptors allowed, ranges that reach many files are written file by file, exactly', async () => {
    const r2 = await makeRepo();
    try {
      const same = Buffer.from('the same bytes in every copy\n');
      const files = [];
      // 40 files sharing one blob, and 30 of their own: both more than half of 16 descriptors
      for (let i = 0; i < 40; i++) files.push(await fileNode(r2, `copy${i}`, same));
      for (let i = 0; i < 30; i++) files.push(await fileNode(r2, `own${i}`, pseudoRandom(3000 + i, 100 + i)));
      files.push(await fileNode(r2, 'big', pseudoRandom(3 << 20, 7)));
      const id = await saveSnapshot(r2, [await dirNode(r2, 'many', files)], ['/many']);
      for (const workers of [0, 2]) {
        const target = tmpDir('lifeboat-restore-fds-');
        const openFds = () => fs.readdirSync('/proc/self/fd').length;
        const before = openFds();
        let most = before;
        const r = await restore(r2, id, { target, workers, maxOpenFiles: 16, onProgress: () => (most = Math.max(most, openFds())) });
        expect(r.errors).toEqual([]);
        // 16 files, plus the pack being read and the workers' own (a few)
        expect(most - before).toBeLessThanOrEqual(16 + 8);
        expect(r.filesRestored).toBe(71);
        for (let i = 0; i < 40; i++) expect(fs.readFileSync(path.join(target, 'many', `copy${i}`)).equals(same)).toBe(true);
        for (let i = 0; i < 30; i++) {
          expect(fs.readFileSync(path.join(target, 'many', `own${i}`)).equals(pseudoRandom(3000 + i, 100 + i))).toBe(true);
        }
        expect(fs.readFileSync(path.join(target, 'many', 'big')).equals(pseudoRandom(3 << 20, 7))).toBe(true);
        // no temporary file left behind
        expect(fs.readdirSync(path.join(target, 'many')).filter((n) => !/^(copy|own)\d+$|^big$/.test(n))).toEqual([]);
      }
    } finally {
      await r2.close();
    }
  });

  it('files waiting for their next blob are closed to make room: no wait for a descriptor that never comes', async () => {
    const r2 = await makeRepo();
    try {
      // three packs of 40 blobs of 400 KB (two ranges of 20 blobs each); ranges are read in the
      // packs' id order, so the packs get their roles once their ids are known: 40 files with a
      // blob in the first and one in the last pack, and 40 one-blob files in the middle one.
      // Read one range at a time with 48 descriptors allowed, 36 of the 40 stay open between
      // their blobs, and each middle range needs 20 more.
      const data = (k: number, i: number) => pseudoRandom(400_000, 1000 * k + i);
      const packOf = new Map<string, number>();
      const ids: string[][] = [];
      for (let k = 0; k < 3; k++) {
        ids.push([]);
        for (let i = 0; i < 40; i++) ids[k]!.push(toHex((await r2.saveBlob('data', data(k, i))).id));
        await r2.flush();
        packOf.set(r2.cache.lookup(Buffer.from(ids[k]![0]!, 'hex'))[0]!.packId, k);
      }
      const [a, mid, z] = [...packOf.keys()].sort().map((p) => packOf.get(p)!) as [number, number, number];
      const nodes = [];
      for (let i = 0; i < 40; i++) {
        nodes.push(node(`f${i}`, 'file', { content: [ids[a]![i]!, ids[z]![i]!], size: 800_000 }));
        nodes.push(node(`g${i}`, 'file', { content: [ids[mid]![i]!], size: 400_000 }));
      }
      const id = await saveSnapshot(r2, [await dirNode(r2, 'spread', nodes)], ['/spread']);
      const target = tmpDir('lifeboat-restore-room-');
      const r = await restore(r2, id, { target, workers: 2, maxOpenFiles: 48, concurrency: 1 });
      expect(r.errors).toEqual([]);
      expect(r.filesRestored).toBe(80);
      for (let i = 0; i < 40; i++) {
        expect(fs.readFileSync(path.join(target, 'spread', `f${i}`)).equals(Buffer.concat([data(a, i), data(z, i)]))).toBe(true);
        expect(fs.readFileSync(path.join(target, 'spread', `g${i}`)).equals(data(mid, i))).toBe(true);
      }
    } finally {
      await r2.close();
    }
  }, 60_000);

  it('a damaged blob fails only the files that use it (inline and in workers)', async () => {
    const r2 = await makeRepo();
    try {
      const good = pseudoRandom(200_000, 21);
      const bad = pseudoRandom(200_000, 22);
      const d = await dirNode(r2, 'd', [await fileNode(r2, 'good', good), await fileNode(r2, 'bad', bad)]);
      const id = await saveSnapshot(r2, [d], ['/d']);
      const badId = blobId(r2.keys.blobId, bad);
      const loc = r2.cache.lookup(badId)[0]!;
      const file = path.join((r2.storage as LocalStorage).root, packName(loc.packId));
      const fd = fs.openSync(file, 'r+');
      const b = Buffer.alloc(1);
      fs.readSync(fd, b, 0, 1, loc.offset + 100);
      b[0] = b[0]! ^ 0x40;
      fs.writeSync(fd, b, 0, 1, loc.offset + 100);
      fs.closeSync(fd);
      for (const workers of [0, 2]) {
        const target = tmpDir('lifeboat-restore-bad-');
        const r = await restore(r2, id, { target, workers });
        expect(r.errors.length).toBe(1);
        expect(r.errors[0]).toMatch(/\/d\/bad: blob .*authentication failed/);
        expect(fs.readFileSync(path.join(target, 'd/good')).equals(good)).toBe(true);
        expect(fs.readdirSync(path.join(target, 'd'))).toEqual(['good']); // no temp file left
      }
    } finally {
      await r2.close();
    }
  });

  it('restores a subpath\'s contents into the target, and a single file as target/name', async () => {
    const { target, r } = await run({ subpath: '/home/u' });
    expect(r.errors).toEqual([]);
    expect(fs.readFileSync(path.join(target, 'big.bin')).equals(big)).toBe(true);
    expect(fs.existsSync(path.join(target, 'home'))).toBe(false);
    const one = await run({ subpath: '/etc/conf' });
    expect(fs.readdirSync(one.target)).toEqual(['conf']);
    await expect(run({ subpath: '/nope' })).rejects.toThrow(/not found/);
  });

  it('include and exclude patterns', async () => {
    const inc = await run({ include: ['/home/u/dup*'] });
    expect(fs.readdirSync(inc.target)).toEqual(['home']);
    expect(fs.readdirSync(path.join(inc.target, 'home/u')).sort()).toEqual(['dup1', 'dup2']);
    const exc = await run({ exclude: ['*.bin', '/etc'] });
    expect(fs.readdirSync(exc.target)).toEqual(['home']);
    expect(fs.existsSync(path.join(exc.target, 'home/u/big.bin'))).toBe(false);
    expect(fs.existsSync(path.join(exc.target, 'home/u/dup1'))).toBe(true);
  });

  it('dry run writes nothing; verify re-reads', async () => {
    const dry = await run({ dryRun: true });
    expect(fs.readdirSync(dry.target)).toEqual([]);
    expect(dry.r.bytesTotal).toBeGreaterThan(big.length);
    const v = await run({ verify: true });
    expect(v.r.errors).toEqual([]);
    expect(v.r.filesVerified).toBeGreaterThan(5);
  });

  it('overwrite policies', async () => {
    const target = tmpDir('lifeboat-restore-');
    const f = path.join(target, 'etc/conf');
    fs.mkdirSync(path.dirname(f));
    fs.writeFileSync(f, 'local');
    await run({ target, subpath: '/', overwrite: 'never', include: ['/etc'] });
    expect(fs.readFileSync(f, 'utf8')).toBe('local');
    const ifc = await run({ target, overwrite: 'if-changed', include: ['/etc'] });
    expect(fs.readFileSync(f, 'utf8')).toBe('a=1\n');
    expect(ifc.r.filesRestored).toBe(1);
    const again = await run({ target, overwrite: 'if-changed', include: ['/etc'] });
    expect(again.r.filesSkipped).toBe(1);
    fs.writeFileSync(f, 'newer local');
    await run({ target, overwrite: 'if-newer', include: ['/etc'] });
    expect(fs.readFileSync(f, 'utf8')).toBe('newer local');
    await run({ target, overwrite: 'always', include: ['/etc'] });
    expect(fs.readFileSync(f, 'utf8')).toBe('a=1\n');
  });

  it('replaces a symlink in the target instead of following it', async () => {
    const target = tmpDir('lifeboat-restore-');
    const outside = tmpDir('lifeboat-outside-');
    fs.symlinkSync(outside, path.join(target, 'etc'));
    const { r } = await run({ target, include: ['/etc'] });
    expect(r.errors).toEqual([]);
    expect(fs.readdirSync(outside)).toEqual([]);
    expect(fs.lstatSync(path.join(target, 'etc')).isDirectory()).toBe(true);
    // a symlinked file is replaced, its target untouched
    fs.writeFileSync(path.join(outside, 'victim'), 'keep');
    fs.rmSync(path.join(target, 'etc/conf'));
    fs.symlinkSync(path.join(outside, 'victim'), path.join(target, 'etc/conf'));
    await run({ target, include: ['/etc'] });
    expect(fs.readFileSync(path.join(outside, 'victim'), 'utf8')).toBe('keep');
    expect(fs.lstatSync(path.join(target, 'etc/conf')).isFile()).toBe(true);
  });
});

describe('restore refuses hostile trees', () => {
  it('never writes outside the target', async () => {
    const hostileRepo = await makeRepo();
    try {
      const outside = tmpDir('lifeboat-outside-');
      const esc = await fileNode(hostileRepo, '..', Buffer.from('escape'));
      const slash = await fileNode(hostileRepo, `x/../../${path.basename(outside)}/pwned`, Buffer.from('escape'));
      const dot = await dirNode(hostileRepo, '.', [await fileNode(hostileRepo, 'f', Buffer.from('dot'))]);
      // a symlink named like a directory that a later node descends into is impossible within
      // one tree (names are unique), but a link pointing out must stay a link
      const link = node('out', 'symlink', { target: Buffer.from(outside) });
      const ok = await fileNode(hostileRepo, 'ok', Buffer.from('fine'));
      const snapId = await saveSnapshot(hostileRepo, [await dirNode(hostileRepo, 'd', [esc, slash, dot, link, ok])]);
      const target = path.join(tmpDir('lifeboat-restore-'), 't');
      const r = await restore(hostileRepo, snapId, { target });
      expect(r.refused.length).toBe(3);
      expect(r.refused.join('\n')).toMatch(/"\.\."/);
      expect(r.refused.join('\n')).toMatch(/"\/"/);
      expect(fs.readdirSync(path.join(target, 'd')).sort()).toEqual(['ok', 'out']);
      expect(fs.readdirSync(outside)).toEqual([]);
      expect(fs.readdirSync(path.dirname(target))).toEqual(['t']);
    } finally {
      await hostileRepo.close();
    }
  });
});

describe('restore helpers', () => {
  it('merges adjacent blobs of a pack into one range', () => {
    const b = (packId: string, offset: number, length: number) => ({ id: `${packId}${offset}`, packId, offset, length, rawLength: length });
    const r = planRanges([b('p', 100, 10), b('p', 0, 100), b('q', 0, 5), b('p', 10 << 20, 4)], 1024);
    expect(r.map((x) => [x.packId, x.offset, x.length, x.blobs.length])).toEqual([['p', 0, 110, 2], ['p', 10 << 20, 4, 1], ['q', 0, 5, 1]]);
  });

  it('opens a range in groups of bounded plaintext, in order; a larger blob alone', () => {
    const b = (offset: number, rawLength: number) => ({ id: `p${offset}`, packId: 'p', offset, length: 10, rawLength });
    const blobs = [b(0, 5), b(10, 4), b(20, 2), b(30, 20), b(40, 1), b(50, 9)];
    const g = decodeGroups(blobs, 10);
    expect(g.map((x) => x.blobs.map((y) => y.offset))).toEqual([[0, 10], [20], [30], [40, 50]]);
    expect(g.map((x) => x.raw)).toEqual([9, 2, 20, 10]);
    expect(g.flatMap((x) => x.blobs)).toEqual(blobs);
    // planning no longer cuts a GET for plaintext size: only for bytes read
    const text = Array.from({ length: 40 }, (_, i) => ({ id: `t${i}`, packId: 't', offset: i * 100_000, length: 100_000, rawLength: 1_000_000 }));
    expect(planRanges(text)).toHaveLength(1);
  });

  it('matches patterns like restic', () => {
    const m = new PathMatcher(['*.log', '/etc/ssh', '/var/**/cache']);
    expect(m.matches('/var/log/a.log')).toBe(true);
    expect(m.matches('/etc/ssh/sshd_config')).toBe(true);
    expect(m.matches('/x/etc/ssh')).toBe(false);
    expect(m.matches('/var/a/b/cache/x')).toBe(true);
    expect(m.matches('/var/a/b/other')).toBe(false);
    expect(new PathMatcher(['/etc/ssh']).mayMatchBelow('/etc')).toBe(true);
    expect(new PathMatcher(['/etc/ssh']).mayMatchBelow('/var')).toBe(false);
  });
});
