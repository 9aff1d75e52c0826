/** Building snapshots through the library (no backup command needed) for restore tests. */
import { LocalStorage } from '../../src/storage/local.js';
import { Repository } from '../../src/repo/repository.js';
import { encodeTree, type TreeNode } from '../../src/engine/tree.js';
import { toHex } from '../../src/util/hex.js';
import { testKdf, tmpDir } from '../helpers/repo.js';

export const T0 = 1_700_000_000_123_456_789n;

export async function makeRepo(): Promise<Repository> {
  const dir = tmpDir('lifeboat-restore-repo-');
  const storage = new LocalStorage(`${dir}/repo`);
  await storage.create();
  return Repository.init(storage, 'pw', { kdf: testKdf(), cacheDir: `${dir}/cache` });
}

/** Stores data as chunks of `chunk` bytes; returns the content ids. */
export async function saveData(repo: Repository, data: Buffer, chunk = 256 * 1024): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < data.length; i += chunk) ids.push(toHex((await repo.saveBlob('data', data.subarray(i, i + chunk))).id));
  return ids;
}

export async function saveTree(repo: Repository, nodes: TreeNode[]): Promise<string> {
  return toHex((await repo.saveBlob('tree', encodeTree({ nodes }))).id);
}

export function node(name: string | Buffer, type: TreeNode['type'], extra: Partial<TreeNode> = {}): TreeNode {
  const perm = type === 'dir' ? 0o755 : type === 'symlink' ? 0o777 : 0o644;
  const typeBits = { file: 0o100000, dir: 0o040000, symlink: 0o120000, fifo: 0o010000, chardev: 0o020000, blockdev: 0o060000, socket: 0o140000 }[type];
  return {
    name: typeof name === 'string' ? Buffer.from(name) : name,
    type,
    mode: typeBits | perm,
    uid: 0,
    gid: 0,
    mtimeNs: T0,
    ctimeNs: T0,
    ...(type === 'file' ? { content: [], size: 0 } : {}),
    ...extra,
  };
}

export async function fileNode(repo: Repository, name: string | Buffer, data: Buffer, extra: Partial<TreeNode> = {}, chunk?: number): Promise<TreeNode> {
  return node(name, 'file', { content: await saveData(repo, data, chunk), size: data.length, ...extra });
}

export async function dirNode(repo: Repository, name: string | Buffer, nodes: TreeNode[], extra: Partial<TreeNode> = {}): Promise<TreeNode> {
  return node(name, 'dir', { subtree: await saveTree(repo, nodes), ...extra });
}

export async function saveSnapshot(repo: Repository, rootNodes: TreeNode[], paths: string[] = ['/']): Promise<string> {
  const tree = await saveTree(repo, rootNodes);
  await repo.flush();
  return repo.saveSnapshot({
    version: 1,
    time: new Date().toISOString(),
    tree,
    paths,
    hostname: 'test',
    tags: [],
    source: { type: 'files' },
  });
}
