/**
 * Comparing two snapshot trees (restic's `diff`): identical subtrees (same id) are skipped
 * without loading; changes are reported with restic's modifiers (+ added, - removed,
 * M content, T type, U metadata only), and blob sets of the differing parts give the
 * added/removed statistics.
 */
import type { TreeNode } from './tree.js';
import { TreeLoader, joinDisplay } from './tree-load.js';

export type Modifier = '+' | '-' | 'M' | 'T' | 'U';

export interface DiffSide {
  files: number;
  dirs: number;
  others: number;
  dataBlobs: Set<string>;
  treeBlobs: Set<string>;
}

export interface DiffStats {
  changedFiles: number;
  added: DiffSide;
  removed: DiffSide;
}

function side(): DiffSide {
  return { files: 0, dirs: 0, others: 0, dataBlobs: new Set(), treeBlobs: new Set() };
}

function sameMeta(a: TreeNode, b: TreeNode): boolean {
  const x = (n: TreeNode) => JSON.stringify([n.mode, n.uid, n.gid, String(n.mtimeNs), n.size, n.target?.toString('hex'), n.rdev,
    (n.xattrs ?? []).map((v) => [v.name, v.value.toString('hex')])]);
  return x(a) === x(b);
}

function sameContent(a: TreeNode, b: TreeNode): boolean {
  const ca = a.content ?? [];
  const cb = b.content ?? [];
  return ca.length === cb.length && ca.every((id, i) => id === cb[i]);
}

export async function diffTrees(
  loader: TreeLoader,
  a: string,
  b: string,
  emit: (modifier: Modifier, path: string, node: TreeNode) => void,
): Promise<DiffStats> {
  const stats: DiffStats = { changedFiles: 0, added: side(), removed: side() };
  const count = (s: DiffSide, n: TreeNode) => {
    if (n.type === 'file') s.files++;
    else if (n.type === 'dir') s.dirs++;
    else s.others++;
    for (const id of n.content ?? []) s.dataBlobs.add(id);
  };
  // collect everything below a node that exists on one side only
  const collect = async (s: DiffSide, n: TreeNode, parts: Buffer[], mod: Modifier) => {
    count(s, n);
    emit(mod, joinDisplay(parts) + (n.type === 'dir' ? '/' : ''), n);
    if (n.type === 'dir' && n.subtree) {
      s.treeBlobs.add(n.subtree);
      for (const c of (await loader.load(n.subtree)).nodes) await collect(s, c, [...parts, c.name], mod);
    }
  };
  const blobsOf = async (s: DiffSide, treeId: string) => {
    s.treeBlobs.add(treeId);
  };
  const walk = async (ta: string, tb: string, parts: Buffer[]): Promise<void> => {
    if (ta === tb) return;
    await blobsOf(stats.removed, ta);
    await blobsOf(stats.added, tb);
    const [A, B] = await Promise.all([loader.load(ta), loader.load(tb)]);
    let i = 0;
    let j = 0;
    while (i < A.nodes.length || j < B.nodes.length) {
      const na = A.nodes[i];
      const nb = B.nodes[j];
      const cmp = !na ? 1 : !nb ? -1 : Buffer.compare(na.name, nb.name);
      if (cmp < 0) {
        await collect(stats.removed, na!, [...parts, na!.name], '-');
        i++;
      } else if (cmp > 0) {
        await collect(stats.added, nb!, [...parts, nb!.name], '+');
        j++;
      } else {
        const p = [...parts, na!.name];
        if (na!.type !== nb!.type) {
          await collect(stats.removed, na!, p, '-');
          await collect(stats.added, nb!, p, '+');
        } else if (na!.type === 'dir') {
          if (!sameMeta(na!, nb!)) emit('U', joinDisplay(p) + '/', nb!);
          if (na!.subtree && nb!.subtree) await walk(na!.subtree, nb!.subtree, p);
        } else {
          for (const id of na!.content ?? []) stats.removed.dataBlobs.add(id);
          for (const id of nb!.content ?? []) stats.added.dataBlobs.add(id);
          if (!sameContent(na!, nb!)) {
            emit('M', joinDisplay(p), nb!);
            if (nb!.type === 'file') stats.changedFiles++;
          } else if (!sameMeta(na!, nb!)) emit('U', joinDisplay(p), nb!);
        }
        i++;
        j++;
      }
    }
  };
  await walk(a, b, []);
  // blobs present on both sides are neither added nor removed
  for (const kind of ['dataBlobs', 'treeBlobs'] as const) {
    for (const id of [...stats.added[kind]]) {
      if (stats.removed[kind].delete(id)) stats.added[kind].delete(id);
    }
  }
  return stats;
}
