/**
 * `check`: proves the repository's integrity. Structure: every snapshot and index file reads
 * and authenticates; every pack the index names exists with the indexed size and a header that
 * lists the indexed blobs; every tree of every snapshot loads and every blob it references is
 * indexed. With read-data, content too: every selected pack hashes to its name and every blob in
 * it decrypts and matches its id. Each damaged object is named, with the snapshots it affects.
 */
import type { Repository } from '../repo/repository.js';
import { packName } from '../repo/repository.js';
import { ScratchDb } from '../cache/scratch-db.js';
import { openJson } from '../repo/sealed.js';
import { snapshotSchema } from '../repo/formats.js';
import { openBlobInto } from '../repo/blob.js';
import { DEFAULT_MAX_SIZE } from '../repo/compress.js';
import { parsePackTail, verifyPackBytes, type PackEntry } from '../repo/pack.js';
import { toHex } from '../util/hex.js';
import { ReachWalker } from './reach.js';
import { mapLimit, WeightedGate } from '../util/concurrency.js';
import { listObjects } from '../repo/listing.js';

export type CheckSeverity = 'error' | 'warning';

export interface CheckFinding {
  severity: CheckSeverity;
  /** What kind of problem: snapshot, index, pack-missing, pack-size, pack-header, pack-data, blob-data, blob-missing, tree, pack-unreferenced. */
  kind: string;
  /** The object concerned: `snapshots/<id>`, `index/<id>`, `data/xx/<id>`, `blob <id>`, `tree <id>`. */
  object: string;
  message: string;
}

/** Which packs to read in full: all, a percentage, a size, or group n of t (by first id byte). */
export type ReadDataSelection =
  | { kind: 'all' }
  | { kind: 'percent'; percent: number }
  | { kind: 'bytes'; bytes: number }
  | { kind: 'group'; n: number; t: number };

export interface CheckOptions {
  readData?: ReadDataSelection;
  onFinding?: (f: CheckFinding) => void;
  onProgress?: (phase: string, done: number, total: number) => void;
}

export interface CheckResult {
  findings: CheckFinding[];
  errors: number;
  /** Snapshots that reference something damaged or missing (ids). */
  affectedSnapshots: string[];
  stats: {
    snapshots: number;
    indexFiles: number;
    packs: number;
    blobs: number;
    trees: number;
    packsRead: number;
    bytesRead: number;
  };
}

/** Most bytes of tree plaintext check --read-data keeps from the packs it read, for the tree walk. */
const VERIFIED_TREES_MAX = 128 * 1024 * 1024;

/** The data blobs a --read-data check opens go here (their plaintext is not kept), grown to the largest. */
let openScratch: Buffer | null = null;

/** Room for a blob's plaintext of `n` bytes (a pack header's claim): its own buffer, or the shared scratch. */
function plaintextBuffer(n: number, own: boolean): Buffer {
  if (n > DEFAULT_MAX_SIZE) throw new Error(`the pack header says ${n} bytes, more than a blob may hold (${DEFAULT_MAX_SIZE})`);
  if (own) return Buffer.allocUnsafe(n);
  if (openScratch === null || openScratch.length < n) openScratch = Buffer.allocUnsafe(Math.max(n, 1 << 20));
  return openScratch.subarray(0, n);
}

export async function checkRepository(repo: Repository, opts: CheckOptions = {}): Promise<CheckResult> {
  // trees as the repository holds them, not as the local cache remembers them
  repo.bypassTreeCache = true;
  const findings: CheckFinding[] = [];
  const report = (f: CheckFinding) => {
    findings.push(f);
    opts.onFinding?.(f);
  };
  const progress = opts.onProgress ?? (() => undefined);
  const scratch = new ScratchDb(repo.cacheDir);
  try {
    // damaged blobs (missing pack, failed header or content check): the snapshot walk marks
    // every snapshot that needs one of them
    const badBlobs = scratch.idSet('bad_blobs');

    // 1. snapshots: each one read from the store and authenticated (not from the cache)
    const snapshotIds = (await listObjects(repo.storage, 'snapshots')).map((o) => o.id);
    const snapshots: Array<{ id: string; tree: string }> = [];
    await mapLimit(snapshotIds, 8, async (id) => {
      const name = `snapshots/${id}`;
      try {
        const snap = openJson(repo.keys.encryption, 'snapshot', name, await repo.getVerified(name), snapshotSchema);
        snapshots.push({ id, tree: snap.tree });
      } catch (e) {
        report({ severity: 'error', kind: 'snapshot', object: name, message: (e as Error).message });
      }
    });
    progress('snapshots', snapshots.length, snapshotIds.length);

    // 2. index files: new ones are read and authenticated by the sync; every one's stored bytes
    // must still hash to its name (a cached copy proves what it said when it was read)
    const indexIds = (await listObjects(repo.storage, 'index')).map((o) => o.id);
    await repo.syncIndex();
    const damagedIndex: string[] = [];
    let indexDone = 0;
    await mapLimit(indexIds, 8, async (id) => {
      const why = repo.unreadableIndex.get(id);
      try {
        if (why) throw new Error(why);
        await repo.getVerified(`index/${id}`);
      } catch (e) {
        damagedIndex.push(id);
        report({ severity: 'error', kind: 'index', object: `index/${id}`, message: (e as Error).message });
      }
      progress('index', ++indexDone, indexIds.length);
    });
    // what a damaged index file named no longer counts as indexed (repair index finds it again)
    if (damagedIndex.length > 0) repo.cache.applyIndexChanges([], damagedIndex);

    // 3. packs: the store's listing against the index
    const stored = new Map((await listObjects(repo.storage, 'data')).map((o) => [o.id, o.size]));
    const indexed = repo.cache.packs();
    const indexedIds = new Set<string>();
    const present: Array<{ id: string; size: number }> = [];
    for (const p of indexed) {
      indexedIds.add(p.id);
      const size = stored.get(p.id);
      if (size === undefined) {
        report({ severity: 'error', kind: 'pack-missing', object: packName(p.id), message: `pack ${p.id} is in the index but missing from the repository` });
        markPackBad(repo, p.id, badBlobs);
      } else if (size !== p.size) {
        report({ severity: 'error', kind: 'pack-size', object: packName(p.id), message: `pack ${p.id} has ${size} bytes, the index says ${p.size}` });
        markPackBad(repo, p.id, badBlobs);
      } else {
        present.push(p);
      }
    }
    for (const [id] of stored) {
      if (!indexedIds.has(id)) {
        report({
          severity: 'warning',
          kind: 'pack-unreferenced',
          object: packName(id),
          message: `pack ${id} is not in any index (an interrupted backup's, or awaiting prune)`,
        });
      }
    }

    // 4. pack headers (structure), or whole packs (read-data). Tree blobs opened from the packs
    // read are kept (up to VERIFIED_TREES_MAX) for step 5, which would otherwise read each again
    // (one request per tree on S3: 340 of the 423 of a --read-data check of the bench's tree).
    const verifiedTrees = new Map<string, Buffer>();
    let treesHeld = 0;
    const toRead = new Set(selectPacks(present, opts.readData).map((p) => p.id));
    let packsRead = 0;
    let bytesRead = 0;
    let packsDone = 0;
    // memory: at most ~64 MiB of packs being read and ~200 000 header entries in flight, however
    // large the packs or small the blobs
    const gate = new WeightedGate(toRead.size > 0 ? 64 * 1024 * 1024 : 200_000);
    await mapLimit(present, 8, (p) =>
      gate.run(toRead.has(p.id) ? p.size : repo.cache.packBlobCount(p.id), async () => {
        const name = packName(p.id);
        try {
          let entries: PackEntry[];
          if (toRead.has(p.id)) {
            const bytes = await repo.storage.get(name);
            packsRead++;
            bytesRead += bytes.length;
            verifyPackBytes(name, p.id, bytes);
            const r = parsePackTail(name, repo.keys.encryption, bytes, bytes.length);
            if ('need' in r) throw new Error('pack header could not be read');
            entries = r;
            for (const e of entries) {
              try {
                // data blobs are opened into one reused buffer (nothing of them is kept); a tree
                // that stays for step 5 gets its own
                const keep = e.type === 'tree' && treesHeld + e.rawLength <= VERIFIED_TREES_MAX;
                const plain = plaintextBuffer(e.rawLength, keep);
                openBlobInto(repo.keys, e.id, bytes.subarray(e.offset, e.offset + e.length), plain, name);
                if (keep) {
                  verifiedTrees.set(toHex(e.id), plain);
                  treesHeld += plain.length;
                }
              } catch (err) {
                badBlobs.add(e.id);
                report({ severity: 'error', kind: 'blob-data', object: `blob ${toHex(e.id)}`, message: (err as Error).message });
              }
            }
          } else {
            entries = await repo.readPackHeader(p.id);
          }
          compareHeader(name, entries, repo.cache.iterateBlobsInPack(p.id), badBlobs, report);
        } catch (e) {
          const kind = toRead.has(p.id) ? 'pack-data' : 'pack-header';
          report({ severity: 'error', kind, object: name, message: (e as Error).message });
          markPackBad(repo, p.id, badBlobs);
        }
        progress(toRead.size > 0 ? 'read-data' : 'packs', ++packsDone, present.length);
      }),
    );

    // 5. every snapshot's trees, and every blob they reference is indexed and undamaged
    const state = scratch.idMap('tree_state');
    const reportedMissing = scratch.idSet('reported_missing');
    const walker = new ReachWalker(repo, state, {
      onContent(id, path) {
        if (badBlobs.has(id)) return true;
        if (repo.cache.has(id)) return false;
        if (reportedMissing.add(id)) {
          report({ severity: 'error', kind: 'blob-missing', object: `blob ${toHex(id)}`, message: `blob ${toHex(id)} of ${path()} is not in the index` });
        }
        return true;
      },
      knownTree: (id) => {
        const plain = verifiedTrees.get(id);
        verifiedTrees.delete(id);
        return plain;
      },
      onTreeError(id, error, path) {
        report({ severity: 'error', kind: 'tree', object: `tree ${id}`, message: `tree ${id} (${path}) cannot be read: ${error.message}` });
      },
    });
    const affected: string[] = [];
    let snapsDone = 0;
    for (const s of snapshots) {
      if (await walker.walk(s.tree)) affected.push(s.id);
      progress('trees', ++snapsDone, snapshots.length);
    }
    affected.sort();
    const errors = findings.filter((f) => f.severity === 'error').length;
    return {
      findings,
      errors,
      affectedSnapshots: affected,
      stats: {
        snapshots: snapshotIds.length,
        indexFiles: indexIds.length,
        packs: stored.size,
        blobs: repo.cache.stats().blobs,
        trees: walker.treesLoaded,
        packsRead,
        bytesRead,
      },
    };
  } finally {
    scratch.close();
  }
}

function markPackBad(repo: Repository, packId: string, bad: { add(id: Buffer): boolean }): void {
  for (const b of repo.cache.blobsInPack(packId)) bad.add(b.id);
}

/**
 * Every blob the index places in the pack must be in its header at the same place. Both lists
 * are in offset order, so they are compared in one pass, without a map of either.
 */
function compareHeader(
  name: string,
  entries: PackEntry[],
  expected: Iterable<{ id: Buffer; type: number; offset: number; length: number }>,
  bad: { add(id: Buffer): boolean },
  report: (f: CheckFinding) => void,
): void {
  const wrong: Buffer[] = [];
  let i = 0;
  for (const x of expected) {
    while (i < entries.length && entries[i]!.offset < x.offset) i++;
    const e = entries[i];
    const same = e !== undefined && e.offset === x.offset && e.length === x.length && e.id.equals(x.id) && (e.type === 'data' ? 0 : 1) === x.type;
    if (!same) wrong.push(Buffer.from(x.id));
  }
  // reported after the walk: the cache's statement is busy while it streams
  for (const id of wrong) {
    bad.add(id);
    report({ severity: 'error', kind: 'pack-header', object: name, message: `blob ${toHex(id)} is indexed in ${name} but not at that place in its header` });
  }
}

/** The packs read-data reads: all, or a subset as restic selects them. */
export function selectPacks<P extends { id: string; size: number }>(packs: P[], sel: ReadDataSelection | undefined): P[] {
  if (!sel) return [];
  switch (sel.kind) {
    case 'all':
      return packs;
    case 'group':
      return packs.filter((p) => parseInt(p.id.slice(0, 2), 16) % sel.t === sel.n - 1);
    case 'percent': {
      const n = Math.min(packs.length, Math.ceil((packs.length * sel.percent) / 100));
      return shuffled(packs).slice(0, n);
    }
    case 'bytes': {
      const out: P[] = [];
      let total = 0;
      for (const p of shuffled(packs)) {
        if (total >= sel.bytes) break;
        out.push(p);
        total += p.size;
      }
      return out;
    }
  }
}

function shuffled<T>(items: T[]): T[] {
  const a = items.slice();
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

/** Parses `--read-data-subset`: `N%`, `n/t`, or a size such as `500M`. */
export function parseReadDataSubset(text: string, parseSize: (s: string) => number): ReadDataSelection {
  const pct = /^(\d+(?:\.\d+)?)%$/.exec(text);
  if (pct) {
    const percent = Number(pct[1]);
    if (!(percent > 0 && percent <= 100)) throw new Error(`percentage must be in (0, 100]: ${text}`);
    return { kind: 'percent', percent };
  }
  const grp = /^(\d+)\/(\d+)$/.exec(text);
  if (grp) {
    const n = Number(grp[1]);
    const t = Number(grp[2]);
    if (!(t >= 1 && n >= 1 && n <= t)) throw new Error(`n/t needs 1 <= n <= t: ${text}`);
    return { kind: 'group', n, t };
  }
  try {
    return { kind: 'bytes', bytes: parseSize(text) };
  } catch {
    throw new Error(`expected N%, n/t or a size (e.g. 10%, 1/5, 500M): ${text}`);
  }
}

