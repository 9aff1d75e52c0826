/**
 * Reading snapshot trees for restore, dump, ls, find and diff: loading tree blobs (with a small
 * in-process cache), resolving a path inside a snapshot, and walking a tree depth-first.
 */
import type { Repository } from '../repo/repository.js';
import { fromHexId } from '../util/hex.js';
import { IntegrityError } from '../repo/errors.js';
import { decodeTree, displayName, type Tree, type TreeNode } from './tree.js';

export class TreeLoader {
  private readonly cache = new Map<string, Promise<Tree>>();

  constructor(private readonly repo: Repository, private readonly maxCached = 4096) {}

  load(id: string): Promise<Tree> {
    let p = this.cache.get(id);
    if (!p) {
      p = this.repo.loadBlob(fromHexId(id)).then((b) => {
        try {
          return decodeTree(b);
        } catch (e) {
          throw new IntegrityError(`tree ${id}`, e instanceof IntegrityError ? e.reason : (e as Error).message);
        }
      });
      if (this.cache.size >= this.maxCached) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(id, p);
      p.catch(() => this.cache.delete(id));
    }
    return p;
  }
}

/** A name that must never become a path component: refused wherever it appears. */
export function unsafeName(name: Buffer): string | null {
  if (name.length === 0) return 'an empty name';
  if (name.includes(0x2f)) return 'a name containing "/"';
  if (name.includes(0)) return 'a name containing a NUL byte';
  if (name.length === 1 && name[0] === 0x2e) return 'the name "."';
  if (name.length === 2 && name[0] === 0x2e && name[1] === 0x2e) return 'the name ".."';
  return null;
}

/**
 * Directories nested deeper than this are refused: no such path fits Linux's PATH_MAX (4096
 * bytes, so at most 2048 one-byte components), and a hostile snapshot could otherwise nest
 * without end.
 */
export const MAX_TREE_DEPTH = 2048;

/**
 * The nodes of a tree whose name appears more than once (a hostile or broken tree: a writer never
 * produces one). Every occurrence is refused, since none of them is more right than the others.
 */
export function duplicateNodes(nodes: readonly TreeNode[]): Set<TreeNode> | null {
  let sorted = true;
  for (let i = 1; i < nodes.length && sorted; i++) if (Buffer.compare(nodes[i - 1]!.name, nodes[i]!.name) >= 0) sorted = false;
  if (sorted) return null; // strictly increasing: no duplicates (the common case, no allocation)
  const byName = new Map<string, TreeNode[]>();
  for (const n of nodes) {
    const k = n.name.toString('latin1');
    const l = byName.get(k);
    if (l) l.push(n);
    else byName.set(k, [n]);
  }
  const dups = new Set<TreeNode>();
  for (const l of byName.values()) if (l.length > 1) for (const n of l) dups.add(n);
  return dups.size > 0 ? dups : null;
}

/** Splits a snapshot path ("/etc/nginx", "etc/nginx/", "/") into its components (as bytes). */
export function splitSnapshotPath(p: string): Buffer[] {
  return p.split('/').filter((c) => c !== '' && c !== '.').map((c) => Buffer.from(c, 'utf8'));
}

/** A path for a message: control characters (NUL, newline, escape, ...) shown as \xNN, so a hostile name cannot break or forge a line. */
export function printable(p: string): string {
  return p.replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** Joins raw path components into an absolute snapshot path (for display, matching). */
export function joinDisplay(parts: Buffer[]): string {
  return '/' + parts.map(displayName).join('/');
}

export interface ResolvedPath {
  /** The node at the path; undefined for the root itself. */
  node?: TreeNode;
  /** Tree id of the directory at the path (the root, or a dir node's subtree). */
  treeId?: string;
  /** Components of the path. */
  parts: Buffer[];
}

/** Finds the node at `p` in the snapshot whose root tree is `rootId`; throws a one-line reason. */
export async function resolvePath(loader: TreeLoader, rootId: string, p: string): Promise<ResolvedPath> {
  const parts = splitSnapshotPath(p);
  if (parts.some((c) => c.length === 2 && c.toString() === '..')) throw new Error(`invalid path ${p}: ".." is not allowed`);
  let treeId: string | undefined = rootId;
  let node: TreeNode | undefined;
  for (let i = 0; i < parts.length; i++) {
    if (treeId === undefined) throw new Error(`path ${p} not found in the snapshot (${joinDisplay(parts.slice(0, i))} is not a directory)`);
    const tree: Tree = await loader.load(treeId);
    const found = tree.nodes.filter((n) => n.name.equals(parts[i]!));
    if (found.length > 1) throw new Error(`path ${p} is ambiguous in the snapshot: ${joinDisplay(parts.slice(0, i + 1))} appears ${found.length} times in its directory (a damaged or hostile tree)`);
    node = found[0];
    if (!node) throw new Error(`path ${p} not found in the snapshot`);
    treeId = node.type === 'dir' ? node.subtree : undefined;
    if (node.type === 'dir' && treeId === undefined) throw new Error(`directory ${joinDisplay(parts.slice(0, i + 1))} has no subtree`);
  }
  return { node, treeId, parts };
}

export interface WalkEntry {
  parts: Buffer[];
  node: TreeNode;
}

/**
 * Depth-first, in name order, over the tree `treeId` whose own path is `base`. `visit` returns
 * false to skip a directory's children. Unsafe names are reported through `onUnsafe` and skipped.
 */
export async function walkTree(
  loader: TreeLoader,
  treeId: string,
  base: Buffer[],
  visit: (e: WalkEntry) => boolean | void | Promise<boolean | void>,
  onUnsafe?: (parts: Buffer[], reason: string) => void,
): Promise<void> {
  const tree = await loader.load(treeId);
  // prefetch the first subtrees of this level while visiting it (bounded: a level may hold thousands)
  let prefetch = 16;
  for (const n of tree.nodes) {
    if (prefetch <= 0) break;
    if (n.type === 'dir' && n.subtree) {
      prefetch--;
      void loader.load(n.subtree).catch(() => {});
    }
  }
  const dups = duplicateNodes(tree.nodes);
  for (const node of tree.nodes) {
    const parts = [...base, node.name];
    const bad = unsafeName(node.name) ??
      (dups?.has(node) ? 'a name that appears more than once in its directory' : null) ??
      (parts.length > MAX_TREE_DEPTH ? `nesting deeper than ${MAX_TREE_DEPTH} directories` : null);
    if (bad) {
      onUnsafe?.(parts, bad);
      continue;
    }
    const descend = await visit({ parts, node });
    if (descend !== false && node.type === 'dir' && node.subtree) await walkTree(loader, node.subtree, parts, visit, onUnsafe);
  }
}
