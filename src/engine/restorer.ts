/**
 * Restoring a snapshot (or a path in it) into a target directory, exactly and fast.
 *
 * - A whole snapshot lands under the target at its absolute paths; `subpath` restores that
 *   directory's contents into the target (a file subpath lands as target/<name>).
 * - Safety: every path is built from checked names (no "/", ".", ".." or NUL), directories are
 *   created with lstat checks so a symlink is never followed while descending, files are
 *   written to a temporary name in their directory and renamed into place, and symlinks,
 *   FIFOs and devices are created last, also through rename.
 * - Speed: only the needed blobs are fetched, grouped per pack and merged into ranged GETs,
 *   several at a time (restore-fetch.ts); a blob shared by several files is fetched once.
 * - Exactness: content verified against blob ids while restoring (and re-read with `verify`),
 *   sparse files keep their holes, owners (as root), mode, xattrs, ns times (directories' after
 *   their children), hardlinks, symlinks (verbatim targets), FIFOs and devices.
 */
import fs from 'node:fs';
import nodePath from 'node:path';
import fsp from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import type { Repository } from '../repo/repository.js';
import { blobId } from '../repo/keys-derive.js';
import { fromHexId, toHex } from '../util/hex.js';
import { mknod, mkfifo, raiseNoFileLimit } from '../native/index.js';
import type { TreeNode } from './tree.js';
import { TreeLoader, joinDisplay, printable, resolvePath, walkTree } from './tree-load.js';
import { PathMatcher } from './path-match.js';
import { fetchRanges, planRanges, type BlobRef, type BlobWriter, type FetchRange } from './restore-fetch.js';
import { fsErrorText, writeTargetSync, type WriteTarget } from '../util/pwrite.js';
import { applyMetadata, applyMetadataSync, IS_ROOT, setTimes, type MetaOptions } from './restore-meta.js';
import { SealPool } from '../repo/seal-pool.js';

export type OverwritePolicy = 'always' | 'if-changed' | 'if-newer' | 'never';

export interface RestoreProgress {
  filesDone: number;
  filesTotal: number;
  bytesDone: number;
  bytesTotal: number;
}

export interface RestoreOptions {
  target: string;
  /** A path inside the snapshot whose contents (or which file) to restore. */
  subpath?: string;
  include?: string[];
  exclude?: string[];
  overwrite?: OverwritePolicy;
  dryRun?: boolean;
  verify?: boolean;
  /** Ranges being read, opened and written at once (default 4). */
  concurrency?: number;
  /** Worker threads that open blobs (default: the cores for restores of 32 MiB or more, else 0 = inline). */
  workers?: number;
  /** Most files open at once (default 8192, and always below the open-files limit). */
  maxOpenFiles?: number;
  onProgress?: (p: RestoreProgress) => void;
  /** Each warning (metadata that could not be set, refused names, ...). */
  onWarning?: (message: string) => void;
  /** Each restored or planned path (for verbose / dry-run listings). */
  onItem?: (action: 'restore' | 'skip' | 'refuse', path: string, node?: TreeNode) => void;
}

export interface RestoreResult {
  filesTotal: number;
  filesRestored: number;
  filesSkipped: number;
  dirs: number;
  symlinks: number;
  hardlinks: number;
  specials: number;
  bytesTotal: number;
  bytesRestored: number;
  bytesSkipped: number;
  blobsFetched: number;
  requests: number;
  bytesDownloaded: number;
  filesVerified: number;
  refused: string[];
  errors: string[];
  warnings: number;
  durationMs: number;
}

type Kind = 'dir' | 'file' | 'hardlink' | 'symlink' | 'fifo' | 'dev';

interface Entry {
  kind: Kind;
  node: TreeNode;
  /** Snapshot path (for display and pattern matching). */
  path: string;
  dest: Buffer;
  dir: Buffer;
  parent: number; // index of the parent dir entry, -1 for the target
  keep: boolean;
  failed?: boolean;
  // files
  linkTo?: Entry;
  tmp?: Buffer;
  total?: number;
  remaining?: number;
  /** The temporary file exists (created by this restore). */
  created?: boolean;
  /** Its creation ahead of the first write, in the thread pool (createAhead). */
  creating?: Promise<void>;
  /** finalize ran: renamed into place, or failed and removed. */
  finished?: boolean;
  /** Its open descriptor while it is being written. */
  fd?: number;
  /** Writes into it in progress. */
  writers?: number;
  skipped?: boolean;
  done?: Promise<void>;
  resolveDone?: () => void;
  places?: Array<{ ref: BlobRef; offset: number }>;
}

const SLASH = Buffer.from('/');
const O_NEW = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW;
const O_EXISTING = fs.constants.O_WRONLY | fs.constants.O_NOFOLLOW;
/** Most descriptors a restore keeps open (files being written), below RLIMIT_NOFILE. */
const FD_BUDGET_MAX = 8192;
/** Files created at once ahead of their first write (precreate); the thread pool has 4 threads. */
const PRECREATE_LANES = 4;
/** Below this many bytes to restore the blobs are opened in this thread (no worker start-up). */
const POOL_MIN_BYTES = 32 * 1024 * 1024;
/** Bytes of ranges read and their plaintext in flight, at most. */
const MAX_BYTES_IN_FLIGHT = 32 * 1024 * 1024;

function join(dir: Buffer, name: Buffer): Buffer {
  return Buffer.concat([dir, SLASH, name]);
}

/** Temporary names: one random prefix per process and a counter (unpredictable, unique, cheap). */
const TMP_PREFIX = `.lifeboat-${randomBytes(8).toString('hex')}-`;
let tmpSeq = 0;

function tmpName(dir: Buffer): Buffer {
  return join(dir, Buffer.from(`${TMP_PREFIX}${(tmpSeq++).toString(36)}.tmp`));
}

export async function restore(repo: Repository, snapshotId: string, opts: RestoreOptions): Promise<RestoreResult> {
  const started = Date.now();
  const overwrite = opts.overwrite ?? 'always';
  const result: RestoreResult = {
    filesTotal: 0, filesRestored: 0, filesSkipped: 0, dirs: 0, symlinks: 0, hardlinks: 0, specials: 0,
    bytesTotal: 0, bytesRestored: 0, bytesSkipped: 0, blobsFetched: 0, requests: 0, bytesDownloaded: 0,
    filesVerified: 0, refused: [], errors: [], warnings: 0, durationMs: 0,
  };
  const warn = (m: string): void => {
    result.warnings++;
    opts.onWarning?.(m);
  };
  const meta: MetaOptions = { owners: IS_ROOT, warn };
  const fail = (e: Entry | null, msg: string): void => {
    if (e) e.failed = true;
    result.errors.push(msg);
  };

  const snapshot = await repo.loadSnapshot(snapshotId);
  const loader = new TreeLoader(repo);
  const target = Buffer.from(nodePath.resolve(opts.target));
  const include = new PathMatcher(opts.include ?? []);
  const exclude = new PathMatcher(opts.exclude ?? []);

  // ---------------------------------------------------------------- plan
  const entries: Entry[] = [];
  const resolved = await resolvePath(loader, snapshot.tree, opts.subpath ?? '/');
  const dirIndex = new Map<string, number>(); // dest (latin1) → entry index
  const addEntry = (node: TreeNode, parts: Buffer[], dest: Buffer, parent: number): Entry | null => {
    const path = joinDisplay(parts);
    if (!exclude.empty && exclude.matches(path)) {
      opts.onItem?.('skip', path, node);
      return null;
    }
    const included = include.empty || include.matches(path);
    if (!included && !(node.type === 'dir' && include.mayMatchBelow(path))) return null;
    let kind: Kind;
    switch (node.type) {
      case 'dir': kind = 'dir'; break;
      case 'file': kind = 'file'; break;
      case 'symlink': kind = 'symlink'; break;
      case 'fifo': kind = 'fifo'; break;
      case 'chardev': case 'blockdev': kind = 'dev'; break;
      default:
        warn(`${path}: ${node.type} not restored`);
        return null;
    }
    const e: Entry = { kind, node, path, dest, dir: parent < 0 ? target : entries[parent]!.dest, parent, keep: included && kind !== 'dir' };
    if (included && kind === 'dir') e.keep = true;
    entries.push(e);
    if (e.keep) for (let p = parent; p >= 0 && !entries[p]!.keep; p = entries[p]!.parent) entries[p]!.keep = true;
    return e;
  };
  const onUnsafe = (parts: Buffer[], reason: string): void => {
    const p = printable(joinDisplay(parts));
    result.refused.push(`${p}: refused ${reason}`);
    opts.onItem?.('refuse', p);
    warn(`refusing ${p}: ${reason}`);
  };

  if (resolved.node && resolved.node.type !== 'dir') {
    addEntry(resolved.node, resolved.parts, join(target, resolved.node.name), -1);
  } else {
    const base = resolved.parts;
    const depthOf = (parts: Buffer[]) => parts.length - base.length;
    await walkTree(loader, resolved.treeId!, base, ({ parts, node }) => {
      const parentParts = parts.slice(0, -1);
      const parentIdx = depthOf(parentParts) === 0 ? -1 : dirIndex.get(Buffer.concat(parentParts.flatMap((p) => [SLASH, p])).toString('latin1'));
      if (parentIdx === undefined) return false; // parent not planned
      const dir = parentIdx < 0 ? target : entries[parentIdx]!.dest;
      const e = addEntry(node, parts, join(dir, node.name), parentIdx);
      if (!e) return false;
      if (e.kind === 'dir') dirIndex.set(Buffer.concat(parts.flatMap((p) => [SLASH, p])).toString('latin1'), entries.length - 1);
      return true;
    }, onUnsafe);
  }
  const plan = entries.filter((e) => e.keep);

  // hardlinks: the same inode and device within the restore ⇒ linked to the first one restored
  const firstByInode = new Map<string, Entry>();
  for (const e of plan) {
    if (e.kind !== 'file') continue;
    const n = e.node;
    if ((n.links ?? 1) > 1 && n.inode !== undefined && n.device !== undefined) {
      const key = `${n.device}:${n.inode}`;
      const first = firstByInode.get(key);
      if (first) {
        e.kind = 'hardlink';
        e.linkTo = first;
      } else firstByInode.set(key, e);
    }
  }

  // content locations
  const blobs = new Map<string, BlobRef & { targets: Array<{ e: Entry; offset: number }> }>();
  const files = plan.filter((e) => e.kind === 'file');
  repo.cache.reading(() => {
    for (const e of files) {
      let offset = 0;
      const content = e.node.content ?? [];
      const places: Array<{ ref: BlobRef; offset: number }> = [];
      let missing: string | null = null;
      for (const id of content) {
        let ref = blobs.get(id);
        if (!ref) {
          const loc = repo.cache.lookup(fromHexId(id))[0];
          if (!loc) {
            missing = id;
            break;
          }
          ref = { id, packId: loc.packId, offset: loc.offset, length: loc.length, rawLength: loc.rawLength, targets: [] };
          blobs.set(id, ref);
        }
        places.push({ ref, offset });
        offset += ref.rawLength;
      }
      e.total = offset;
      result.filesTotal++;
      result.bytesTotal += offset;
      if (missing) {
        fail(e, `${e.path}: blob ${missing} is not in the index`);
        continue;
      }
      e.remaining = places.length;
      e.places = places;
    }
  });
  result.filesTotal += plan.filter((e) => e.kind === 'hardlink').length;

  if (opts.dryRun) {
    for (const e of plan) {
      opts.onItem?.('restore', e.path, e.node);
      if (e.kind === 'dir') result.dirs++;
      else if (e.kind === 'symlink') result.symlinks++;
      else if (e.kind === 'hardlink') result.hardlinks++;
      else if (e.kind === 'fifo' || e.kind === 'dev') result.specials++;
    }
    result.filesRestored = files.filter((e) => !e.failed).length;
    result.bytesRestored = result.bytesTotal;
    result.durationMs = Date.now() - started;
    return result;
  }

  // ---------------------------------------------------------------- directories
  await fsp.mkdir(target, { recursive: true });
  const parentFailed = (e: Entry): boolean => e.parent >= 0 && !!entries[e.parent]!.failed;
  for (const e of plan) {
    if (e.kind !== 'dir') continue;
    if (parentFailed(e)) {
      e.failed = true;
      continue;
    }
    try {
      await ensureDir(e.dest, overwrite);
      result.dirs++;
      opts.onItem?.('restore', e.path, e.node);
    } catch (err) {
      fail(e, `${e.path}: ${(err as Error).message}`);
    }
  }

  // ---------------------------------------------------------------- files
  const progress: RestoreProgress = { filesDone: 0, filesTotal: result.filesTotal, bytesDone: 0, bytesTotal: result.bytesTotal };
  const report = () => opts.onProgress?.(progress);
  const work: Entry[] = [];
  for (const e of files) {
    if (e.failed) continue;
    if (parentFailed(e)) {
      fail(e, `${e.path}: not restored (its directory could not be created)`);
      continue;
    }
    if (await shouldSkip(e, overwrite)) {
      e.skipped = true;
      result.filesSkipped++;
      result.bytesSkipped += e.total!;
      progress.filesDone++;
      progress.bytesDone += e.total!;
      opts.onItem?.('skip', e.path, e.node);
      continue;
    }
    e.tmp = tmpName(e.dir);
    e.done = new Promise<void>((r) => (e.resolveDone = r));
    work.push(e);
    for (const p of e.places!) blobs.get(p.ref.id)!.targets.push({ e, offset: p.offset });
  }
  const needed = [...blobs.values()].filter((b) => b.targets.length > 0);

  // Descriptors of the files being restored: opened here (the files created ahead, in the thread
  // pool), written through by the workers, closed by finalize — or in between, for a file whose
  // blobs are spread out, when many are open. At most `fdBudget` at once; the soft RLIMIT_NOFILE is
  // raised to the hard limit first, as Go programs (restic) do.
  const fdBudget = Math.max(16, Math.min(opts.maxOpenFiles ?? FD_BUDGET_MAX, raiseNoFileLimit() - 256));
  let openHandles = 0;
  let roomWaiters: Array<() => void> = [];
  const wakeRoom = (): void => {
    if (roomWaiters.length === 0) return;
    const w = roomWaiters;
    roomWaiters = [];
    for (const r of w) r();
  };
  // files open but not being written, waiting for their next blob (oldest first): closed when
  // the budget needs room, so that a wait for room only ever waits for writes under way
  const idle = new Set<Entry>();
  /**
   * Makes room for `n` more descriptors: closes idle files, then waits for writes under way to
   * finish (more than the budget: until none is open).
   */
  const room = async (n: number): Promise<void> => {
    for (;;) {
      for (const e of idle) {
        if (openHandles + n <= fdBudget) break;
        closeHandle(e);
      }
      if (openHandles === 0 || openHandles + n <= fdBudget) return;
      await new Promise<void>((r) => roomWaiters.push(r));
    }
  };
  const handle = async (e: Entry): Promise<number> => {
    // the inode is created in the thread pool (≈ 80 µs of kernel time per file, which on this
    // thread held up everything else), the file then opened here (a few µs)
    if (e.fd === undefined) await createAhead(e);
    if (e.fd === undefined) {
      e.fd = fs.openSync(e.tmp!, e.created ? O_EXISTING : O_NEW, 0o600);
      e.created = true;
      openHandles++;
    }
    return e.fd;
  };
  /**
   * A file about to be written (by a worker or here): counted as written to, so it is never
   * closed under its writer (room closes idle files only), and open — again, if it was closed
   * to make room between two of its blobs. null when it can't be opened: the file has failed.
   * The caller decrements `writers` when the write is done.
   */
  const beginWrite = async (e: Entry): Promise<number | null> => {
    e.writers = (e.writers ?? 0) + 1;
    idle.delete(e);
    try {
      return await handle(e);
    } catch (err) {
      e.writers--;
      fail(e, `${e.path}: ${fsErrorText(err)}`);
      return null;
    }
  };
  const closeHandle = (e: Entry): void => {
    if (e.fd === undefined) return;
    const fd = e.fd;
    e.fd = undefined;
    idle.delete(e);
    openHandles--;
    wakeRoom();
    fs.closeSync(fd);
  };
  /**
   * Creates the file (empty, O_EXCL) in the thread pool and closes it, unless that is done or
   * under way: creating an inode costs ≈ 100 µs of kernel time (ext4), which on this thread was
   * the largest part of its work; opening the file again later costs a few µs. An error is left
   * for the real open to report.
   */
  const createAhead = (e: Entry): Promise<void> => {
    if (e.created || e.fd !== undefined) return Promise.resolve();
    e.creating ??= new Promise<void>((resolve) => {
      fs.open(e.tmp!, O_NEW, 0o600, (err, fd) => {
        if (err) return resolve();
        e.created = true;
        fs.close(fd, () => resolve());
      });
    });
    return e.creating;
  };
  const finalize = async (e: Entry): Promise<void> => {
    if (e.creating) await e.creating;
    try {
      if (!e.failed) {
        // an empty file is created here; holes at the end of a sparse file were never written
        if (!e.created || e.node.sparse) {
          const fd = await handle(e);
          if (e.node.sparse) fs.ftruncateSync(fd, e.total!);
        }
        closeHandle(e);
        applyMetadataSync(e.tmp!, e.node, e.path, meta);
        fs.renameSync(e.tmp!, e.dest);
        result.filesRestored++;
        result.bytesRestored += e.total!;
        opts.onItem?.('restore', e.path, e.node);
      }
    } catch (err) {
      fail(e, `${e.path}: ${fsErrorText(err)}`);
    }
    if (e.fd !== undefined) {
      try {
        closeHandle(e);
      } catch {
        // already failed
      }
    }
    if (e.failed && e.created) fs.rmSync(e.tmp!, { force: true });
    e.finished = true;
    progress.filesDone++;
    report();
    e.resolveDone!();
  };
  /**
   * Creates the files ahead of their first write (createAhead), in the order the ranges will be
   * fetched, a few at once. Returns a function that stops it and waits for those under way.
   */
  const precreate = (order: FetchRange[], targets: (b: BlobRef) => Entry[]): (() => Promise<void>) => {
    const queue: Entry[] = [];
    const queued = new Set<Entry>();
    for (const r of order) {
      for (const b of r.blobs) {
        for (const e of targets(b)) {
          if (queued.has(e)) continue;
          queued.add(e);
          queue.push(e);
        }
      }
    }
    queued.clear();
    let next = 0;
    let stopped = false;
    const lane = async (): Promise<void> => {
      while (!stopped && next < queue.length) {
        const e = queue[next++]!;
        if (!e.failed) await createAhead(e);
      }
    };
    const lanes = Promise.all(Array.from({ length: PRECREATE_LANES }, lane));
    return async () => {
      stopped = true;
      await lanes;
    };
  };
  const finishedOne = (e: Entry): void => {
    e.remaining!--;
    if (e.remaining === 0) void finalize(e);
    else if (!e.writers && e.fd !== undefined) {
      if (openHandles > (fdBudget >> 1) + (fdBudget >> 2)) closeHandle(e);
      else {
        idle.add(e);
        wakeRoom();
      }
    }
  };

  for (const e of work) if (e.remaining === 0) void finalize(e);
  const ranges = planRanges(needed);
  const stopCreating = precreate(ranges, (b) => blobs.get(b.id)!.targets.map((t) => t.e));
  const stats = { requests: 0, bytesDownloaded: 0 };
  let restoreBytes = 0;
  for (const b of needed) restoreBytes += b.rawLength;
  // workers pay off for real restores; a small one (a single file) opens its blobs inline
  // workers at normal priority: here the calling thread only reads and writes, the workers do
  // the CPU work (a niced worker starves when other processes keep the cores busy)
  const pool = await SealPool.create(repo.keys, { workers: opts.workers ?? (restoreBytes >= POOL_MIN_BYTES ? undefined : 0), workerNice: 0 });
  // Blobs are written by the workers that open them, through descriptors opened here: the
  // plaintext never comes back to this thread (≈ 2 GB less crossing threads in the bench's
  // restore, and no write calls here). `sent` remembers, per blob, which files it was given to.
  const sent = new Map<string, Entry[]>();
  const writer: BlobWriter = {
    // a range whose blobs go to more files than half the descriptor budget (tiny files, or one
    // blob in thousands of files) is written here instead, file by file (onBlob)
    accepts: (range) => {
      const files = new Set<Entry>();
      for (const b of range) {
        for (const { e } of blobs.get(b.id)!.targets) {
          files.add(e);
          if (files.size > fdBudget >> 1) return false;
        }
      }
      return true;
    },
    prepare: async (group) => {
      // every file of the group open before it goes, within the budget
      const need = new Set<Entry>();
      for (const b of group) {
        for (const { e } of blobs.get(b.id)!.targets) {
          idle.delete(e); // needed now: not to be closed to make room
          if (!e.failed && e.fd === undefined) need.add(e);
        }
      }
      await room(need.size);
      // the group's files are created at once, in the thread pool
      await Promise.all([...need].map(createAhead));
      const all: WriteTarget[][] = [];
      for (const b of group) {
        const targets: WriteTarget[] = [];
        const to: Entry[] = [];
        for (const { e, offset } of blobs.get(b.id)!.targets) {
          if (e.failed) continue;
          const fd = await beginWrite(e);
          if (fd === null) continue;
          targets.push({ fd, offset, sparse: !!e.node.sparse });
          to.push(e);
        }
        sent.set(b.id, to);
        all.push(targets);
      }
      return all;
    },
    written: (group, openErrors, writeErrors) => {
      for (let i = 0; i < group.length; i++) {
        const b = group[i]!;
        const to = sent.get(b.id) ?? [];
        sent.delete(b.id);
        for (let j = 0; j < to.length; j++) {
          const e = to[j]!;
          e.writers!--;
          if (openErrors[i] !== null) continue;
          const err = writeErrors[i]?.[j] ?? null;
          if (err !== null) fail(e, `${e.path}: ${err}`);
          else progress.bytesDone += b.rawLength;
        }
        // a blob that could not be opened is retried through onBlob, which finishes its files
        if (openErrors[i] !== null) continue;
        result.blobsFetched++;
        for (const { e } of blobs.get(b.id)!.targets) finishedOne(e);
      }
      report();
    },
  };
  try {
    await fetchRanges(
      repo,
      ranges,
      { concurrency: opts.concurrency ?? 4, maxBytesInFlight: MAX_BYTES_IN_FLIGHT, pool, writer },
      async (b, data) => {
        result.blobsFetched++;
        const ref = blobs.get(b.id)!;
        for (const { e, offset } of ref.targets) {
          const fd = e.failed ? null : await beginWrite(e);
          if (fd !== null) {
            try {
              writeTargetSync({ fd, offset, sparse: !!e.node.sparse }, data);
              progress.bytesDone += data.length;
            } catch (err) {
              fail(e, `${e.path}: ${fsErrorText(err)}`);
            } finally {
              e.writers!--;
            }
          }
          finishedOne(e);
        }
        report();
      },
      (b, err) => {
        for (const { e } of blobs.get(b.id)!.targets) {
          if (!e.failed) fail(e, `${e.path}: blob ${b.id}: ${err.message}`);
          finishedOne(e);
        }
      },
      stats,
    );
  } catch (err) {
    // nothing more will be written: no temporary file may stay behind
    await stopCreating();
    for (const e of work) {
      if (e.finished || !e.created) continue;
      try {
        closeHandle(e);
      } catch {
        // closing is all that is left to do with it
      }
      fs.rmSync(e.tmp!, { force: true });
    }
    throw err;
  } finally {
    await stopCreating();
    await pool.close();
  }
  await Promise.all(work.map((e) => e.done));
  result.requests = stats.requests;
  result.bytesDownloaded = stats.bytesDownloaded;

  // ---------------------------------------------------------------- links and special files
  for (const e of plan) {
    if (e.kind === 'dir' || e.kind === 'file') continue;
    if (parentFailed(e)) {
      fail(e, `${e.path}: not restored (its directory could not be created)`);
      continue;
    }
    if (await shouldSkip(e, overwrite)) {
      if (e.kind === 'hardlink') result.filesSkipped++;
      opts.onItem?.('skip', e.path, e.node);
      continue;
    }
    const tmp = tmpName(e.dir);
    try {
      switch (e.kind) {
        case 'hardlink': {
          const first = e.linkTo!;
          if (first.failed) throw new Error(`its first link ${first.path} was not restored`);
          await fsp.link(first.dest, tmp);
          result.hardlinks++;
          result.filesRestored++;
          break;
        }
        case 'symlink':
          await fsp.symlink(e.node.target ?? Buffer.alloc(0), tmp);
          await applyMetadata(tmp, e.node, e.path, meta);
          result.symlinks++;
          break;
        case 'fifo':
          mkfifo(tmp, 0o600);
          await applyMetadata(tmp, e.node, e.path, meta);
          result.specials++;
          break;
        case 'dev':
          if (!IS_ROOT) {
            result.refused.push(`${e.path}: refused a device node (restored only as root)`);
            warn(`refusing ${e.path}: a device node (restored only as root)`);
            continue;
          }
          mknod(tmp, (e.node.mode & ~0o7777) | 0o600, e.node.rdev ?? 0);
          await applyMetadata(tmp, e.node, e.path, meta);
          result.specials++;
          break;
      }
      await fsp.rename(tmp, e.dest);
      opts.onItem?.('restore', e.path, e.node);
    } catch (err) {
      await fsp.unlink(tmp).catch(() => {});
      fail(e, `${e.path}: ${fsErrorText(err)}`);
    }
  }

  // ---------------------------------------------------------------- directories' metadata, deepest first
  for (let i = plan.length - 1; i >= 0; i--) {
    const e = plan[i]!;
    if (e.kind !== 'dir' || e.failed) continue;
    await applyMetadata(e.dest, e.node, e.path, meta, false);
  }
  // times last: setting a child's metadata changes nothing in the parent, but renames did
  for (let i = plan.length - 1; i >= 0; i--) {
    const e = plan[i]!;
    if (e.kind === 'dir' && !e.failed) setTimes(e.dest, e.node, e.path, meta);
  }

  if (opts.verify) {
    for (const e of work) {
      if (e.failed) continue;
      try {
        await verifyFile(repo, e.dest, e.node.content ?? [], (id) => blobs.get(id)!.rawLength);
        result.filesVerified++;
      } catch (err) {
        fail(e, `${e.path}: verification failed: ${(err as Error).message}`);
      }
    }
  }
  result.durationMs = Date.now() - started;
  return result;
}




/** Creates a directory, or checks that an existing one is a real directory (never a symlink). */
async function ensureDir(dest: Buffer, overwrite: OverwritePolicy): Promise<void> {
  try {
    await fsp.mkdir(dest, 0o700);
    return;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new Error(fsErrorText(e));
  }
  const st = await fsp.lstat(dest);
  if (st.isDirectory()) return;
  if (overwrite === 'never') throw new Error('exists and is not a directory (--overwrite never)');
  // a file or a symlink where the snapshot has a directory: replace it, never follow it
  await fsp.unlink(dest);
  await fsp.mkdir(dest, 0o700);
}

/** Whether an existing destination is kept as it is under the overwrite policy. */
async function shouldSkip(e: Entry, overwrite: OverwritePolicy): Promise<boolean> {
  if (overwrite === 'always') return false;
  let st: fs.BigIntStats;
  try {
    st = await fsp.lstat(e.dest, { bigint: true });
  } catch {
    return false;
  }
  switch (overwrite) {
    case 'never':
      return true;
    case 'if-newer':
      return st.mtimeNs >= e.node.mtimeNs;
    case 'if-changed':
      if (e.kind === 'file') return st.isFile() && Number(st.size) === e.total && st.mtimeNs === e.node.mtimeNs;
      return false;
  }
  return false;
}

/** Re-reads a restored file and checks each chunk against its blob id. */
export async function verifyFile(repo: Repository, p: Buffer, content: string[], rawLength: (id: string) => number): Promise<void> {
  const fh = await fsp.open(p, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    let pos = 0;
    for (const id of content) {
      const len = rawLength(id);
      const buf = Buffer.allocUnsafe(len);
      let got = 0;
      while (got < len) {
        const { bytesRead } = await fh.read(buf, got, len - got, pos + got);
        if (bytesRead === 0) throw new Error(`file is shorter than its content (at byte ${pos + got})`);
        got += bytesRead;
      }
      if (toHex(blobId(repo.keys.blobId, buf)) !== id) throw new Error(`bytes ${pos}..${pos + len} do not match blob ${id.slice(0, 12)}`);
      pos += len;
    }
    const st = await fh.stat();
    if (st.size !== pos) throw new Error(`file is ${st.size} bytes, expected ${pos}`);
  } finally {
    await fh.close();
  }
}

