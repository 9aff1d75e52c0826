import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Repository } from '../../src/repo/repository.js';
import { backup } from '../../src/engine/archiver.js';
import { decodeTree, type TreeNode } from '../../src/engine/tree.js';
import { makeLocal, makeTempDir } from '../helpers/storage-backends.js';
import { pseudoRandom, testKdf } from '../helpers/repo.js';
import { setXattr, nativeAvailable } from '../../src/native/index.js';

async function loadTree(repo: Repository, id: string): Promise<TreeNode[]> {
  return decodeTree(await repo.loadBlob(Buffer.from(id, 'hex'))).nodes;
}

/** The node at an absolute path in a snapshot's tree. */
async function nodeAt(repo: Repository, root: string, abs: Buffer): Promise<TreeNode | undefined> {
  const parts: Buffer[] = [];
  let start = 1;
  for (let i = 1; i <= abs.length; i++) {
    if (i === abs.length || abs[i] === 0x2f) {
      if (i > start) parts.push(abs.subarray(start, i));
      start = i + 1;
    }
  }
  let tree = root;
  let node: TreeNode | undefined;
  for (const part of parts) {
    node = (await loadTree(repo, tree)).find((n) => n.name.equals(part));
    if (!node) return undefined;
    if (node.subtree) tree = node.subtree;
  }
  return node;
}

/** Walks a stored tree and the source side by side; returns the paths compared. */
async function compareTree(repo: Repository, treeId: string, dir: Buffer): Promise<number> {
  const nodes = await loadTree(repo, treeId);
  const names = fs.readdirSync(dir, { encoding: 'buffer' }).sort(Buffer.compare);
  expect(nodes.map((n) => n.name.toString('hex'))).toEqual(names.map((n) => n.toString('hex')));
  let count = 0;
  for (const n of nodes) {
    const p = Buffer.concat([dir, Buffer.from('/'), n.name]);
    const st = fs.lstatSync(p, { bigint: true });
    count++;
    expect(n.mode).toBe(Number(st.mode));
    expect(n.mtimeNs).toBe(st.mtimeNs);
    expect(n.uid).toBe(Number(st.uid));
    expect(n.gid).toBe(Number(st.gid));
    expect(n.inode).toBe(Number(st.ino));
    expect(n.links).toBe(Number(st.nlink));
    expect(n.atimeNs).toBeUndefined();
    if (st.isFile()) {
      expect(n.type).toBe('file');
      expect(n.size).toBe(Number(st.size));
      const data = Buffer.concat(await Promise.all(n.content!.map((id) => repo.loadBlob(Buffer.from(id, 'hex')))));
      expect(data.equals(fs.readFileSync(p))).toBe(true);
    } else if (st.isDirectory()) {
      expect(n.type).toBe('dir');
      count += await compareTree(repo, n.subtree!, p);
    } else if (st.isSymbolicLink()) {
      expect(n.type).toBe('symlink');
      expect(n.target!.equals(fs.readlinkSync(p, { encoding: 'buffer' }))).toBe(true);
    } else if (st.isFIFO()) {
      expect(n.type).toBe('fifo');
    }
  }
  return count;
}

describe('archiver', () => {
  let src: string;
  let repo: Repository;

  beforeAll(async () => {
    const tmp = await makeTempDir();
    src = path.join(tmp, 'src');
    fs.mkdirSync(path.join(src, 'a/b/c'), { recursive: true });
    fs.mkdirSync(path.join(src, 'empty-dir'));
    fs.writeFileSync(path.join(src, 'empty-file'), '');
    fs.writeFileSync(path.join(src, 'small.txt'), 'hello\n');
    fs.writeFileSync(path.join(src, 'a/big.bin'), pseudoRandom(5 * 1024 * 1024 + 17, 7));
    fs.writeFileSync(path.join(src, 'a/b/c/deep.txt'), 'deep'.repeat(1000));
    fs.writeFileSync(Buffer.from(path.join(src, 'latin1-\xe9\xff.txt'), 'latin1'), 'not utf-8 name');
    fs.symlinkSync('small.txt', path.join(src, 'link'));
    fs.symlinkSync('/nonexistent/target', path.join(src, 'dangling'));
    fs.symlinkSync(Buffer.from('bad-\xfe-target', 'latin1'), path.join(src, 'rawlink') as unknown as fs.PathLike);
    execFileSync('mkfifo', [path.join(src, 'fifo')]);
    fs.linkSync(path.join(src, 'small.txt'), path.join(src, 'a/hardlink.txt'));
    fs.chmodSync(path.join(src, 'a/b'), 0o750);
    // a sparse file: 4 MiB hole, then data
    const fd = fs.openSync(path.join(src, 'sparse'), 'w');
    fs.writeSync(fd, Buffer.from('tail'), 0, 4, 4 * 1024 * 1024);
    fs.closeSync(fd);
    fs.utimesSync(path.join(src, 'small.txt'), new Date('1999-01-02T03:04:05.123Z'), new Date('1999-01-02T03:04:05.123Z'));
    if (nativeAvailable()) setXattr(path.join(src, 'small.txt'), 'user.test', Buffer.from('xattr value'));
    repo = await Repository.init(await makeLocal(), 'pw', { kdf: testKdf(), cacheDir: path.join(tmp, 'cache') });
  });

  afterAll(async () => {
    await repo?.close();
  });

  it('stores the tree exactly: absolute hierarchy, names, types, modes, times, targets, contents', async () => {
    const errors: string[] = [];
    const r = await backup(repo, [src], { onError: (p, e) => errors.push(`${p}: ${e}`) });
    expect(errors).toEqual([]);
    expect(r.snapshotId).toMatch(/^[0-9a-f]{64}$/);
    expect(r.snapshot.paths).toEqual([src]);
    expect(r.summary.incomplete).toBe(false);
    expect(r.summary.filesNew).toBe(7);
    // the root tree holds the absolute hierarchy, each level with its real metadata
    const top = await loadTree(repo, r.snapshot.tree);
    expect(top.map((n) => n.name.toString())).toEqual([src.split('/')[1]]);
    const first = path.join('/', src.split('/')[1]!);
    // (not its mtime: other tests create directories in /tmp meanwhile)
    expect(top[0]!.mode).toBe(Number(fs.lstatSync(first, { bigint: true }).mode));
    expect(top[0]!.inode).toBe(Number(fs.lstatSync(first, { bigint: true }).ino));
    const srcNode = await nodeAt(repo, r.snapshot.tree, Buffer.from(src));
    expect(srcNode?.type).toBe('dir');
    expect(await compareTree(repo, srcNode!.subtree!, Buffer.from(src))).toBe(15);

    const sparse = await nodeAt(repo, r.snapshot.tree, Buffer.from(path.join(src, 'sparse')));
    expect(sparse?.sparse).toBe(true);
    const hl = await nodeAt(repo, r.snapshot.tree, Buffer.from(path.join(src, 'a/hardlink.txt')));
    const orig = await nodeAt(repo, r.snapshot.tree, Buffer.from(path.join(src, 'small.txt')));
    expect(hl?.links).toBe(2);
    expect(hl?.inode).toBe(orig?.inode);
    expect(hl?.content).toEqual(orig?.content);
    expect(orig?.mtimeNs).toBe(915246245123000000n);
    if (nativeAvailable()) expect(orig?.xattrs).toEqual([{ name: 'user.test', value: Buffer.from('xattr value') }]);
    const empty = await nodeAt(repo, r.snapshot.tree, Buffer.from(path.join(src, 'empty-file')));
    expect(empty?.content).toEqual([]);
  });

  it('a second backup reads no file and adds no data, only reuses the parent', async () => {
    const r1 = await backup(repo, [src]);
    expect(r1.parentId).toBeDefined();
    expect(r1.summary.filesRead).toBe(0);
    expect(r1.summary.bytesRead).toBe(0);
    expect(r1.summary.filesUnmodified).toBe(7);
    // only the trees above src may be new (/tmp's mtime moves as other tests run)
    expect(r1.summary.treeBlobs).toBeLessThanOrEqual(2);
    expect(r1.summary.dataBlobs).toBe(0);
    expect(r1.summary.dirsChanged + r1.summary.dirsNew).toBe(0);

    // one changed file: only it is read; --force reads all
    fs.writeFileSync(path.join(src, 'a/b/c/deep.txt'), 'changed');
    const r2 = await backup(repo, [src]);
    expect(r2.summary.filesRead).toBe(1);
    expect(r2.summary.filesChanged).toBe(1);
    expect(r2.summary.dirsChanged).toBe(4); // src, a, b, c
    const r3 = await backup(repo, [src], { force: true });
    expect(r3.summary.filesRead).toBe(7);
    expect(r3.summary.dataBlobs).toBe(0);
  });

  it('excludes, several paths, a single file path, and dry run', async () => {
    const r = await backup(repo, [path.join(src, 'a'), path.join(src, 'small.txt'), path.join(src, 'a/b')], {
      excludes: { exclude: ['*.bin'], excludeLargerThan: 10 },
    });
    expect(r.snapshot.paths).toEqual([path.join(src, 'a'), path.join(src, 'a/b'), path.join(src, 'small.txt')]);
    const a = await nodeAt(repo, r.snapshot.tree, Buffer.from(path.join(src, 'a')));
    expect((await loadTree(repo, a!.subtree!)).map((n) => n.name.toString())).toEqual(['b', 'hardlink.txt']);
    expect(await nodeAt(repo, r.snapshot.tree, Buffer.from(path.join(src, 'a/b/c/deep.txt')))).toBeDefined();
    expect(await nodeAt(repo, r.snapshot.tree, Buffer.from(path.join(src, 'link')))).toBeUndefined();

    const before = (await repo.listSnapshots()).length;
    fs.writeFileSync(path.join(src, 'new-file'), pseudoRandom(1000, 3));
    const d = await backup(repo, [src], { dryRun: true });
    expect(d.snapshotId).toBeNull();
    expect(d.summary.filesNew).toBe(1);
    expect(d.summary.dataAdded).toBeGreaterThanOrEqual(1000);
    expect((await repo.listSnapshots()).length).toBe(before);
    fs.rmSync(path.join(src, 'new-file'));
  });

  it('reports an unreadable file, skips it and marks the snapshot incomplete', async () => {
    // root can read anything chmod 000; /proc/<pid>/mem of another process fails for root too
    // (EIO: reading from offset 0, which is never mapped)
    const mem = `/proc/${process.pid}/mem`;
    const errors: string[] = [];
    const r = await backup(repo, [src, mem], { onError: (p, e) => errors.push(`${p}: ${e}`) });
    expect(errors).toEqual([expect.stringMatching(new RegExp(`^${mem}: .*\\((EIO|EACCES|EPERM)\\)$`))]);
    expect(r.summary.incomplete).toBe(true);
    expect(r.snapshotId).toMatch(/^[0-9a-f]{64}$/);
    expect(await nodeAt(repo, r.snapshot.tree, Buffer.from(mem))).toBeUndefined();
    expect(await nodeAt(repo, r.snapshot.tree, Buffer.from(path.join(src, 'small.txt')))).toBeDefined();
    // the path that vanished
    const gone = await backup(repo, [src, path.join(path.dirname(src), 'does-not-exist')], { onError: (p, e) => errors.push(`${p}: ${e}`) });
    expect(gone.summary.incomplete).toBe(true);
    expect(errors.at(-1)).toMatch(/does-not-exist: .*ENOENT/);
  });
});


describe('archiver, many files stored at once', () => {
  it('every blob a snapshot names is in the index afterwards (packs finished while files share the repository)', async () => {
    const tmp = await makeTempDir();
    const src = path.join(tmp, 'src');
    fs.mkdirSync(src);
    for (let i = 0; i < 10; i++) fs.writeFileSync(path.join(src, `f${i}`), pseudoRandom(6 * 1024 * 1024 + i, 100 + i));
    const storage = await makeLocal();
    const repo = await Repository.init(storage, 'pw', { kdf: testKdf(), cacheDir: path.join(tmp, 'cache'), uploadConcurrency: 1 });
    const r = await backup(repo, [src]);
    await repo.close();
    const fresh = await Repository.open(storage, 'pw', { cacheDir: path.join(tmp, 'cache2') });
    try {
      const node = await nodeAt(fresh, r.snapshot.tree, Buffer.from(src));
      const files = await loadTree(fresh, node!.subtree!);
      expect(files).toHaveLength(10);
      for (const f of files) for (const id of f.content!) expect(fresh.hasBlob(Buffer.from(id, 'hex'))).toBe(true);
      const again = await backup(fresh, [src]);
      expect(again.summary.filesRead).toBe(0);
      expect(again.summary.dataBlobs).toBe(0);
    } finally {
      await fresh.close();
    }
  });
});
