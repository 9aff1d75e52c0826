/**
 * Tree blobs kept in the repository's cache directory (`<cache>/<repo id>/trees/`), sealed
 * exactly as stored — encrypted and authenticated, opened and checked against their id on every
 * read — so that a backup reading its parent's trees, and a restore, ls, find or diff walking
 * trees, need no ranged GET per directory (on S3 a no-change backup of 200 directories made 200
 * requests). Part of the rebuildable cache: a missing, unreadable or damaged file is only a miss,
 * and deleting the directory costs downloads, never data.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';

export class TreeCache {
  constructor(readonly dir: string) {}

  private file(hex: string): string {
    return path.join(this.dir, hex.slice(0, 2), hex);
  }

  /** The sealed blob, or null. */
  get(hex: string): Buffer | null {
    try {
      return fs.readFileSync(this.file(hex));
    } catch {
      return null;
    }
  }

  /** Keeps a sealed tree blob; failures (a full or read-only disk) are ignored: it is a cache. */
  put(hex: string, sealed: Buffer): void {
    const file = this.file(hex);
    const tmp = `${file}.tmp-${randomBytes(6).toString('hex')}`;
    try {
      if (fs.existsSync(file)) return;
      fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
      fs.writeFileSync(tmp, sealed, { mode: 0o600, flag: 'wx' });
      fs.renameSync(tmp, file);
    } catch {
      fs.rmSync(tmp, { force: true });
    }
  }

  /**
   * Deletes the cached trees `keep` rejects (prune: those no index names any more), so the cache
   * does not grow for ever as snapshots are forgotten; returns how many went.
   */
  retainOnly(keep: (hex: string) => boolean): number {
    let removed = 0;
    let dirs: string[];
    try {
      dirs = fs.readdirSync(this.dir);
    } catch {
      return 0;
    }
    for (const d of dirs) {
      let names: string[];
      try {
        names = fs.readdirSync(path.join(this.dir, d));
      } catch {
        continue;
      }
      for (const n of names) {
        // leftovers of an interrupted put go too
        if (/^[0-9a-f]{64}$/.test(n) && keep(n)) continue;
        fs.rmSync(path.join(this.dir, d, n), { force: true });
        removed++;
      }
    }
    return removed;
  }

  /** Forgets a file that did not open (damaged, or from another key). */
  drop(hex: string): void {
    fs.rmSync(this.file(hex), { force: true });
  }
}
