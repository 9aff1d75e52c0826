/**
 * Walking everything a set of snapshots references — every tree once, however many snapshots
 * share it — for check (what is damaged, and which snapshots does it touch), prune (which blobs
 * are used) and repair. What has been visited lives in a scratch SQLite table, so memory stays
 * flat as the repository grows.
 */
import type { Repository } from '../repo/repository.js';
import type { IdMap } from '../cache/scratch-db.js';
import { fromHexId } from '../util/hex.js';
import { decodeTree, displayName, type Tree } from './tree.js';

export interface ReachHandlers {
  /** A tree was loaded (once per tree id). */
  onTree?(id: Buffer, tree: Tree): void;
  /**
   * A file's content blob (called for every reference the first time its tree is visited).
   * Returns true when the blob is damaged or missing, which marks the tree and its snapshots.
   */
  onContent(id: Buffer, path: () => string): boolean;
  /** A tree could not be loaded or decoded; the tree counts as damaged. */
  onTreeError(id: string, error: Error, path: string): void;
  /**
   * A tree's plaintext, verified against its id already (check --read-data has just read its
   * pack), or undefined to load it from the repository.
   */
  knownTree?(id: string): Buffer | undefined;
}

const BAD = 1;
const GOOD = 0;

/** Bounds concurrent tree loads (each one a ranged read of the store). */
class Gate {
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  constructor(private readonly limit: number) {}
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((r) => this.waiting.push(r));
    this.active++;
    try {
      return await fn();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}

export class ReachWalker {
  private readonly inFlight = new Map<string, Promise<boolean>>();
  private readonly gate: Gate;
  treesLoaded = 0;

  /** `state` remembers each visited tree as good (0) or damaged (1). */
  constructor(
    private readonly repo: Repository,
    private readonly state: IdMap,
    private readonly handlers: ReachHandlers,
    concurrency = 16,
  ) {
    this.gate = new Gate(concurrency);
  }

  /** Visits the tree and everything beneath it; true if anything in it is damaged or missing. */
  walk(treeId: string, path = '/'): Promise<boolean> {
    const id = fromHexId(treeId);
    const known = this.state.get(id);
    if (known !== undefined) return Promise.resolve(known === BAD);
    let p = this.inFlight.get(treeId);
    if (!p) {
      p = this.visit(treeId, id, path).then((bad) => {
        this.state.set(id, bad ? BAD : GOOD);
        this.inFlight.delete(treeId);
        return bad;
      });
      this.inFlight.set(treeId, p);
    }
    return p;
  }

  private async visit(treeId: string, id: Buffer, path: string): Promise<boolean> {
    let tree: Tree;
    try {
      const known = this.handlers.knownTree?.(treeId);
      tree = known ? decodeTree(known) : await this.gate.run(async () => decodeTree(await this.repo.loadBlob(id)));
    } catch (e) {
      this.handlers.onTreeError(treeId, e instanceof Error ? e : new Error(String(e)), path);
      return true;
    }
    this.treesLoaded++;
    this.handlers.onTree?.(id, tree);
    let bad = false;
    const subdirs: Array<{ id: string; path: string }> = [];
    const child = (name: Buffer) => (path === '/' ? '/' : `${path}/`) + displayName(name);
    for (const node of tree.nodes) {
      if (node.content) {
        for (const c of node.content) {
          if (this.handlers.onContent(fromHexId(c), () => child(node.name))) bad = true;
        }
      }
      if (node.type === 'dir' && node.subtree) subdirs.push({ id: node.subtree, path: child(node.name) });
    }
    // a few subtrees at a time: wide directories must not start thousands of walks at once
    for (let i = 0; i < subdirs.length; i += 32) {
      const results = await Promise.all(subdirs.slice(i, i + 32).map((d) => this.walk(d.id, d.path)));
      if (results.some(Boolean)) bad = true;
    }
    return bad;
  }
}
