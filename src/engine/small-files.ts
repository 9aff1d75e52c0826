/**
 * Small files in a backup: a file below the chunker's minimum size is exactly one chunk, so a
 * seal-pool worker can read it whole and seal it by itself (SealPool.sealFile). The thread that
 * walks the tree then never waits on those reads (a cold page cache makes each one a disk
 * round trip) nor spends time compressing them; a tree of thousands of small files keeps both
 * cores busy.
 *
 * The worker seals before anyone knows whether the repository has the blob already. While
 * small files keep turning out to be duplicates (a second host's copy of the same tree, a
 * directory copied within the tree), they are read on the calling thread instead, which hashes
 * first and skips sealing known blobs (write-path.ts).
 */
import type { Repository } from '../repo/repository.js';
import type { SealPool } from '../repo/seal-pool.js';
import { DEFAULT_PARAMS } from '../repo/chunker.js';
import { SYNC_READ_MAX, type ReadResult } from './file-reader.js';

/** Files up to this size (by the walk's lstat) may be read by a worker. */
export const WORKER_READ_MAX = Math.min(SYNC_READ_MAX, DEFAULT_PARAMS.min - 1);

/** Moving average weight per file, and the duplicate share above which files stay here. */
const ALPHA = 1 / 16;
const DUP_THRESHOLD = 0.1;

export class SmallFiles {
  private dup = 0;

  constructor(private readonly repo: Repository) {}

  /** A file's content was found stored already (true) or was new (false). */
  saw(duplicate: boolean): void {
    this.dup += ALPHA * ((duplicate ? 1 : 0) - this.dup);
  }

  /** Should a file of this size be read by a worker now? */
  wants(size: number): boolean {
    return size <= WORKER_READ_MAX && this.dup < DUP_THRESHOLD;
  }

  /**
   * Reads and stores a small file through a worker; null when the pool has no workers or the
   * file has grown past WORKER_READ_MAX (the caller reads it then). Throws what reading throws.
   */
  async read(pool: SealPool, p: Buffer, sizeHint: number, onRead?: (n: number) => void): Promise<(ReadResult & { newBlobs: number }) | null> {
    if (pool.size === 0) return null;
    await pool.ready();
    const r = await pool.sealFile(p, WORKER_READ_MAX, sizeHint);
    if (r === null) return null;
    onRead?.(r.size);
    const out = { ids: [] as Buffer[], size: r.size, newBytes: 0, storedBytes: 0, newBlobs: 0, stat: r.stat, changedWhileReading: r.changed, reads: r.reads };
    if (r.blob !== null) {
      const sealedLength = r.blob.sealed.length; // the repository may hand its memory to a worker
      out.ids.push(r.blob.id);
      const added = await this.repo.addSealedBlob(r.blob);
      this.saw(!added);
      if (added) {
        out.newBytes = r.blob.rawLength;
        out.storedBytes = sealedLength;
        out.newBlobs = 1;
      }
    }
    return out;
  }
}
