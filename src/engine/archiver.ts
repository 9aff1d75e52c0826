/**
 * Backup of file trees (format §8, §9): walks the given absolute paths, stores file contents
 * through the SealPool + storeStream write path, writes one tree blob per directory bottom-up
 * and finally the snapshot.
 *
 * - The snapshot's root tree is the absolute hierarchy: "/" → "home" → "user" → …; the
 *   directories between "/" and a backed-up path are nodes with their real metadata whose
 *   trees list only the backed-up children.
 * - Change detection: the parent snapshot's trees are loaded lazily alongside the walk; a file
 *   whose type, size, inode, device, mtime and ctime equal the parent's node (and whose blobs
 *   are all still indexed) reuses the parent's content without being read (unless `force`).
 * - Concurrency: the walk runs ahead while up to `fileConcurrency` files are read and stored
 *   at once (at most `streamConcurrency` of them larger files, streamed through a read buffer),
 *   all sharing one seal pool, so reads, sealing (worker threads) and uploads overlap; the walk
 *   waits for a free slot, which bounds memory.
 * - Errors on single entries (vanished, unreadable) are reported through `onError`, the entry is
 *   left out, and the summary says `incomplete`; the snapshot is still written.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { BigIntStats } from 'node:fs';
import type { Repository } from '../repo/repository.js';
import { SealPool } from '../repo/seal-pool.js';
import { storeStream } from '../repo/write-path.js';
import { sealBlob } from '../repo/blob.js';
import { blobId } from '../repo/keys-derive.js';
import { Chunker } from '../repo/chunker.js';
import type { Snapshot } from '../repo/formats.js';
import { toHex } from '../util/hex.js';
import { rfc3339Nanos } from '../util/time.js';
import { programVersion } from '../util/version.js';
import { decodeTree, encodeTree, type TreeNode } from './tree.js';
import { Excluder, type ExcludeOptions } from './excludes.js';
import { filterSnapshots } from './snapshot-select.js';
import { errorReason, joinPath, lstat, lstatSync, nodeFromStat, nodeType, pathText, readdirRaw, readlinkRaw, unchangedSince } from './walk.js';
import { readFile, SYNC_READ_MAX, type ContentSink, type ReadResult, type SinkResult } from './file-reader.js';
import { SmallFiles, WORKER_READ_MAX } from './small-files.js';
import { ReadAhead, readAheadWorthy } from './read-ahead.js';
import { readXattrs } from './xattrs.js';

export interface BackupOptions {
  hostname?: string;
  tags?: string[];
  /** Parent snapshot id (full); default: the latest snapshot with the same host and paths. */
  parent?: string;
  /** Don't use a parent: read every file. */
  force?: boolean;
  dryRun?: boolean;
  excludes?: ExcludeOptions;
  oneFileSystem?: boolean;
  /** Files read and stored at once (default 16). */
  fileConcurrency?: number;
  /**
   * Of those, files larger than SYNC_READ_MAX streamed at once (default 4). Each holds a read
   * buffer of up to 8 MiB and its chunks in flight; four streams keep two workers busy, and the
   * other slots go on with small files. With 16 streams (one per slot) the backup of the bench's
   * 2.1 GB tree peaked at ≈ 540 MiB RSS for no gain in speed.
   */
  streamConcurrency?: number;
  /** Seal pool worker threads (default: the cores). */
  workers?: number;
  /** A non-fatal problem with one path (it is left out of the snapshot, or kept as read). */
  onError?: (path: string, reason: string) => void;
  /** The snapshot's time (default now). */
  time?: Date;
  /**
   * A watcher journal's verdict: false for a directory in which nothing changed since the parent
   * snapshot. Such a directory, when its own metadata is also unchanged, keeps the parent's subtree
   * without being read (the agent's journal-driven backups); default: every directory is read.
   */
  scope?: (dirPath: string) => boolean;
}

export interface BackupProgress {
  filesDone: number;
  dirsDone: number;
  bytesDone: number;
  /** Files and bytes found by the walk so far (the walk runs ahead). */
  filesSeen: number;
  bytesSeen: number;
  errors: number;
  currentFiles: Set<string>;
  startedAt: number;
}

export interface BackupSummary {
  filesNew: number;
  filesChanged: number;
  filesUnmodified: number;
  dirsNew: number;
  dirsChanged: number;
  dirsUnmodified: number;
  dataBlobs: number;
  treeBlobs: number;
  /** Plaintext bytes of new blobs. */
  dataAdded: number;
  /** Sealed (compressed, encrypted) bytes of new blobs. */
  dataAddedPacked: number;
  totalFilesProcessed: number;
  totalBytesProcessed: number;
  totalDurationMs: number;
  /** Files whose contents were actually read (the rest reused the parent's). */
  filesRead: number;
  bytesRead: number;
  errors: number;
  incomplete: boolean;
}

export interface BackupResult {
  /** null for a dry run. */
  snapshotId: string | null;
  snapshot: Snapshot;
  parentId?: string;
  summary: BackupSummary;
}

/** A directory in the selection: the root "/", an intermediate directory, or a backed-up path. */
interface Sel {
  name: Buffer;
  path: Buffer;
  /** A path given on the command line: back it up whole. */
  whole: boolean;
  children: Map<string, Sel>;
}

const EMPTY_TREE = encodeTree({ nodes: [] });

function emptySummary(): BackupSummary {
  return {
    filesNew: 0, filesChanged: 0, filesUnmodified: 0, dirsNew: 0, dirsChanged: 0, dirsUnmodified: 0,
    dataBlobs: 0, treeBlobs: 0, dataAdded: 0, dataAddedPacked: 0, totalFilesProcessed: 0,
    totalBytesProcessed: 0, totalDurationMs: 0, filesRead: 0, bytesRead: 0, errors: 0, incomplete: false,
  };
}

/** Normalises command-line paths: absolute, no trailing slash, no duplicates, sorted. */
export function normalizePaths(paths: string[]): string[] {
  const abs = paths.map((p) => {
    const r = path.resolve(p);
    return r.length > 1 ? r.replace(/\/+$/, '') : r;
  });
  return [...new Set(abs)].sort();
}

class Semaphore {
  private free: number;
  private waiters: Array<() => void> = [];
  constructor(n: number) {
    this.free = n;
  }
  async acquire(): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return;
    }
    await new Promise<void>((r) => this.waiters.push(r));
  }
  release(): void {
    const w = this.waiters.shift();
    if (w) w();
    else this.free++;
  }
}

export class Archiver {
  readonly progress: BackupProgress = {
    filesDone: 0, dirsDone: 0, bytesDone: 0, filesSeen: 0, bytesSeen: 0, errors: 0,
    currentFiles: new Set(), startedAt: Date.now(),
  };
  readonly summary = emptySummary();
  /** The pool being started (at the first file that must be read: a no-change backup never starts it). */
  private poolStart: Promise<SealPool> | null = null;
  private readonly excluder: Excluder;
  private readonly slots: Semaphore;
  private readonly streamSlots: Semaphore;
  private topDevice = 0n;
  /** Subdirectories that may still be walked concurrently with their parent's entries. */
  private dirSlots = 8;
  /** The parent snapshot's trees, loaded on demand (name bytes as latin1 → node). */
  private readonly parentTrees = new Map<string, Promise<Map<string, TreeNode>>>();
  private readonly dryRunSeen = new Set<string>();
  private readonly smallFiles: SmallFiles;

  constructor(readonly repo: Repository, readonly opts: BackupOptions = {}) {
    this.smallFiles = new SmallFiles(repo);
    this.excluder = new Excluder(opts.excludes ?? {});
    this.slots = new Semaphore(Math.max(1, opts.fileConcurrency ?? 16));
    this.streamSlots = new Semaphore(Math.max(1, opts.streamConcurrency ?? 4));
  }

  private report(p: Buffer | string, reason: string): void {
    // once the repository cannot be written (a pack upload failed, its disk is full) no file can
    // be saved: that is the backup's one error, not one per file
    const fatal = this.repo.writeError;
    if (fatal) throw fatal;
    this.summary.errors++;
    this.progress.errors++;
    this.summary.incomplete = true;
    this.opts.onError?.(typeof p === 'string' ? p : pathText(p), reason);
  }

  /** Finds the parent snapshot: the given id, else the latest with the same host and paths. */
  async findParent(paths: string[], hostname: string): Promise<{ id: string; snapshot: Snapshot } | undefined> {
    if (this.opts.force) return undefined;
    if (this.opts.parent) return { id: this.opts.parent, snapshot: await this.repo.loadSnapshot(this.opts.parent) };
    const list = filterSnapshots(await this.repo.listSnapshots(), { hosts: [hostname], paths });
    return list[list.length - 1];
  }

  async backup(rawPaths: string[]): Promise<BackupResult> {
    if (rawPaths.length === 0) throw new Error('no paths to back up');
    const started = Date.now();
    this.progress.startedAt = started;
    const paths = normalizePaths(rawPaths);
    const hostname = this.opts.hostname ?? os.hostname();
    const parent = await this.findParent(paths, hostname);

    // the selection hierarchy: paths under another given path are covered by it
    const root: Sel = { name: Buffer.from('/'), path: Buffer.from('/'), whole: false, children: new Map() };
    for (const p of paths) {
      let cur = root;
      const parts = p.split('/').filter(Boolean);
      if (parts.length === 0) {
        root.whole = true;
        continue;
      }
      for (const part of parts) {
        if (cur.whole) break;
        const name = Buffer.from(part, 'utf8');
        let next = cur.children.get(part);
        if (!next) {
          next = { name, path: joinPath(cur.path, name), whole: false, children: new Map() };
          cur.children.set(part, next);
        }
        cur = next;
      }
      cur.whole = true;
    }

    let treeId: string;
    try {
      const parentRoot = parent ? await this.loadParentTree(parent.snapshot.tree) : undefined;
      if (root.whole) {
        const st = await lstat(root.path);
        this.topDevice = st.dev;
        treeId = await this.dirTree(root.path, parentRoot, false);
      } else {
        const r = await this.selectionTree(root, parentRoot);
        if (r === null) throw new Error('none of the given paths could be read');
        treeId = r;
      }
      // workers that could not start fail the backup (not each file that needed them)
      if (this.poolStart) await this.poolStart;
      if (!this.opts.dryRun) await this.repo.flush();
    } finally {
      const pool = this.poolStart ? await this.poolStart.catch(() => null) : null;
      await pool?.close();
      this.poolStart = null;
    }

    const s = this.summary;
    s.totalDurationMs = Date.now() - started;
    const snapshot: Snapshot = {
      version: 1,
      time: rfc3339Nanos(BigInt((this.opts.time ?? new Date(started)).getTime()) * 1_000_000n),
      tree: treeId,
      paths,
      hostname,
      username: os.userInfo().username,
      uid: process.getuid?.() ?? 0,
      gid: process.getgid?.() ?? 0,
      tags: this.opts.tags ?? [],
      source: { type: 'files' },
      summary: summaryRecord(s),
      program_version: `lifeboat ${programVersion()}`,
    };
    if (parent) snapshot.parent = parent.id;
    const snapshotId = this.opts.dryRun ? null : await this.repo.saveSnapshot(snapshot);
    return { snapshotId, snapshot, parentId: parent?.id, summary: s };
  }

  /** The tree of an intermediate directory (only its selected children); null if none could be read. */
  private async selectionTree(sel: Sel, parentTree: Map<string, TreeNode> | undefined): Promise<string | null> {
    const nodes: TreeNode[] = [];
    for (const child of sel.children.values()) {
      const old = parentTree?.get(child.name.toString('latin1'));
      let st: BigIntStats;
      try {
        st = await lstat(child.path);
      } catch (e) {
        this.report(child.path, errorReason(e));
        continue;
      }
      if (child.whole) {
        this.topDevice = st.dev;
        const n = await this.entry(child.path, child.name, st, old);
        if (n) nodes.push(n);
        continue;
      }
      // an intermediate directory (may be a symlink to one: record the directory it leads to)
      if (!st.isDirectory()) {
        try {
          st = await fs.promises.stat(child.path, { bigint: true });
        } catch (e) {
          this.report(child.path, errorReason(e));
          continue;
        }
      }
      const sub = await this.selectionTree(child, old?.subtree ? await this.loadParentTree(old.subtree) : undefined);
      if (sub === null) continue;
      const node = nodeFromStat(child.name, 'dir', st);
      node.subtree = sub;
      nodes.push(node);
    }
    if (nodes.length === 0 && sel.children.size > 0) return null;
    return this.saveTree(nodes);
  }

  private loadParentTree(id: string): Promise<Map<string, TreeNode>> {
    let p = this.parentTrees.get(id);
    if (!p) {
      p = this.repo.loadBlob(Buffer.from(id, 'hex')).then((b) => {
        const m = new Map<string, TreeNode>();
        const content: string[] = [];
        for (const n of decodeTree(b).nodes) {
          m.set(n.name.toString('latin1'), n);
          if (n.content) for (const c of n.content) content.push(c);
        }
        // the unchanged files among them will ask whether their blobs are still indexed
        if (!this.opts.force) this.repo.preloadBlobs(content);
        return m;
      });
      p.catch(() => undefined);
      this.parentTrees.set(id, p);
      // parent trees are needed once each: keep the map small
      if (this.parentTrees.size > 256) this.parentTrees.delete(this.parentTrees.keys().next().value!);
    }
    return p;
  }

  /** One directory entry (already lstat'ed) → its node, or null when skipped. */
  private async entry(p: Buffer, name: Buffer, st: BigIntStats, old: TreeNode | undefined): Promise<TreeNode | null> {
    const type = nodeType(st);
    if (type === null) return null;
    if (type === 'dir') {
      const node = nodeFromStat(name, 'dir', st);
      await this.addXattrs(p, node);
      const crosses = this.opts.oneFileSystem && st.dev !== this.topDevice;
      if (!crosses && this.opts.scope && old?.type === 'dir' && old.subtree && old.mtimeNs === st.mtimeNs && old.ctimeNs === st.ctimeNs && !this.opts.scope(pathText(p))) {
        node.subtree = old.subtree;
        this.summary.dirsUnmodified++;
        this.progress.dirsDone++;
        return node;
      }
      const parentSub = old?.type === 'dir' && old.subtree ? await this.loadParentTree(old.subtree).catch(() => undefined) : undefined;
      node.subtree = crosses ? await this.saveTree([]) : await this.dirTree(p, parentSub, await this.excluder.isCacheDir(p));
      if (!old || old.type !== 'dir') this.summary.dirsNew++;
      else if (old.subtree !== node.subtree) this.summary.dirsChanged++;
      else this.summary.dirsUnmodified++;
      this.progress.dirsDone++;
      return node;
    }
    if (type === 'file') return this.fileNode(p, name, st, old);
    const node = nodeFromStat(name, type, st);
    if (type === 'symlink') {
      try {
        node.target = await readlinkRaw(p);
      } catch (e) {
        this.report(p, errorReason(e));
        return null;
      }
    }
    await this.addXattrs(p, node);
    return node;
  }

  /** The tree of a directory backed up whole; returns its id. */
  private async dirTree(dir: Buffer, parentTree: Map<string, TreeNode> | undefined, cacheDir: boolean): Promise<string> {
    let names: Buffer[];
    try {
      names = await readdirRaw(dir);
    } catch (e) {
      this.report(dir, errorReason(e));
      return this.saveTree([]);
    }
    if (cacheDir) names = names.filter((n) => n.toString('latin1') === 'CACHEDIR.TAG');
    const stats: Array<{ name: Buffer; p: Buffer; st: BigIntStats }> = [];
    for (const name of names) {
      const p = joinPath(dir, name);
      if (this.excluder.active && this.excluder.matchesPath(pathText(p))) continue;
      try {
        stats.push({ name, p, st: lstatSync(p) });
      } catch (e) {
        this.report(p, errorReason(e));
      }
    }
    const nodes: TreeNode[] = [];
    const ahead = this.opts.dryRun ? null : new ReadAhead(stats.flatMap((e, at) => {
      const old = parentTree?.get(e.name.toString('latin1'));
      const unchanged = !this.opts.force && old !== undefined && unchangedSince(old, e.st);
      return readAheadWorthy(e.st, unchanged, SYNC_READ_MAX) && !this.excluder.tooLarge(Number(e.st.size)) ? [{ at, p: e.p }] : [];
    }));
    // files and (while dir slots are free) subdirectories run concurrently; the tree's node
    // order doesn't matter (encodeTree sorts)
    const tasks: Array<Promise<TreeNode | null>> = [];
    for (const [at, e] of stats.entries()) {
      const old = parentTree?.get(e.name.toString('latin1'));
      if (e.st.isFile()) {
        if (this.excluder.tooLarge(Number(e.st.size))) continue;
        ahead?.advance(at);
        this.progress.filesSeen++;
        this.progress.bytesSeen += Number(e.st.size);
        await this.slots.acquire();
        const task = this.fileNode(e.p, e.name, e.st, old).finally(() => this.slots.release());
        task.catch(() => undefined);
        tasks.push(task);
      } else if (e.st.isDirectory() && this.dirSlots > 0) {
        // a subdirectory walked alongside this one, so that the file slots don't drain at the
        // end of every directory; never waits for a dir slot (no deadlock: a full set of slots
        // means walking it here)
        this.dirSlots--;
        const task = this.entry(e.p, e.name, e.st, old).finally(() => this.dirSlots++);
        task.catch(() => undefined);
        tasks.push(task);
      } else {
        const n = await this.entry(e.p, e.name, e.st, old);
        if (n) nodes.push(n);
      }
    }
    const files = tasks;
    for (const n of await Promise.all(files)) if (n) nodes.push(n);
    return this.saveTree(nodes);
  }

  private async fileNode(p: Buffer, name: Buffer, st: BigIntStats, old: TreeNode | undefined): Promise<TreeNode | null> {
    const s = this.summary;
    if (!this.opts.force && old && old.content && unchangedSince(old, st) && old.content.every((id) => this.repo.hasBlobHex(id))) {
      const node = nodeFromStat(name, 'file', st);
      node.content = old.content;
      await this.addXattrs(p, node);
      s.filesUnmodified++;
      s.totalFilesProcessed++;
      s.totalBytesProcessed += Number(st.size);
      this.progress.filesDone++;
      this.progress.bytesDone += Number(st.size);
      return node;
    }
    const label = pathText(p);
    this.progress.currentFiles.add(label);
    try {
      const onRead = (n: number) => {
        this.progress.bytesDone += n;
        s.bytesRead += n;
      };
      const size = Number(st.size);
      const inWorker = !this.opts.dryRun && this.smallFiles.wants(size)
        ? await this.smallFiles.read(await this.sealPool(), p, size, onRead)
        : null;
      if (inWorker) this.summary.dataBlobs += inWorker.newBlobs;
      // both sinks are done with a piece when they ask for the next: one read buffer per file
      let r: ReadResult;
      if (inWorker) r = inWorker;
      else if (size <= SYNC_READ_MAX) r = await readFile(p, this.sink(), onRead, size, true);
      else {
        await this.streamSlots.acquire();
        try {
          r = await readFile(p, this.sink(), onRead, size, true);
        } finally {
          this.streamSlots.release();
        }
      }
      if (!inWorker && size <= WORKER_READ_MAX && r.size > 0) this.smallFiles.saw(r.newBytes === 0);
      if (r.changedWhileReading) this.report(p, 'file changed while being read');
      const node = nodeFromStat(name, 'file', r.stat);
      node.size = r.size;
      node.content = r.ids.map(toHex);
      await this.addXattrs(p, node);
      if (old && old.type === 'file') s.filesChanged++;
      else s.filesNew++;
      s.filesRead++;
      s.totalFilesProcessed++;
      s.totalBytesProcessed += r.size;
      s.dataAdded += r.newBytes;
      s.dataAddedPacked += r.storedBytes;
      this.progress.filesDone++;
      return node;
    } catch (e) {
      this.report(p, errorReason(e));
      return null;
    } finally {
      this.progress.currentFiles.delete(label);
    }
  }

  /** Where file bytes go: the repository, or (dry run) a hasher that only counts new bytes. */
  sink(): ContentSink {
    if (!this.opts.dryRun) {
      return async (source) => {
        const pool = await this.sealPool();
        const r = await storeStream(this.repo, pool, source);
        this.summary.dataBlobs += r.newChunks;
        return r;
      };
    }
    return async (source): Promise<SinkResult> => {
      const chunker = new Chunker(this.repo.gearTable());
      const r: SinkResult = { ids: [], size: 0, newBytes: 0, storedBytes: 0 };
      const take = (c: Buffer) => {
        const id = blobId(this.repo.keys.blobId, c);
        r.ids.push(id);
        const hex = toHex(id);
        if (!this.dryRunSeen.has(hex) && !this.repo.hasBlob(id)) {
          this.dryRunSeen.add(hex);
          r.newBytes += c.length;
        }
      };
      for await (const piece of source) {
        r.size += piece.length;
        for (const c of chunker.push(piece)) take(c);
        chunker.detach();
      }
      for (const c of chunker.finish()) take(c);
      return r;
    };
  }

  /** The seal pool, started on first use (its workers cost start-up time and memory). */
  private sealPool(): Promise<SealPool> {
    this.poolStart ??= SealPool.create(
      { encryption: this.repo.keys.encryption, blobId: this.repo.keys.blobId },
      this.opts.workers === undefined ? {} : { workers: this.opts.workers },
    );
    return this.poolStart;
  }

  /** Encodes and stores a tree (a dry run only computes its id). */
  async saveTree(nodes: TreeNode[]): Promise<string> {
    const bytes = nodes.length === 0 ? EMPTY_TREE : encodeTree({ nodes });
    if (!this.opts.dryRun) {
      // an unchanged directory's tree is stored already: only its id is needed (no zstd, no AEAD)
      const id = blobId(this.repo.keys.blobId, bytes);
      if (this.repo.hasBlob(id)) return toHex(id);
      const blob = sealBlob(this.repo.keys, 'tree', bytes, id);
      const sealedLength = blob.sealed.length;
      if (await this.repo.addSealedBlob(blob)) {
        this.summary.treeBlobs++;
        this.summary.dataAdded += bytes.length;
        this.summary.dataAddedPacked += sealedLength;
      }
      return toHex(blob.id);
    }
    if (this.opts.dryRun) {
      const id = blobId(this.repo.keys.blobId, bytes);
      const hex = toHex(id);
      if (!this.dryRunSeen.has(hex) && !this.repo.hasBlob(id)) {
        this.dryRunSeen.add(hex);
        this.summary.treeBlobs++;
        this.summary.dataAdded += bytes.length;
      }
      return hex;
    }
    const blob = sealBlob(this.repo.keys, 'tree', bytes);
    const sealedLength = blob.sealed.length;
    if (await this.repo.addSealedBlob(blob)) {
      this.summary.treeBlobs++;
      this.summary.dataAdded += bytes.length;
      this.summary.dataAddedPacked += sealedLength;
    }
    return toHex(blob.id);
  }

  private async addXattrs(p: Buffer, node: TreeNode): Promise<void> {
    const x = await readXattrs(p).catch((e: unknown) => {
      this.report(p, `extended attributes: ${errorReason(e)}`);
      return undefined;
    });
    if (x && x.length > 0) node.xattrs = x;
  }
}

/** The snapshot's `summary` object (format §9) plus restic's counters. */
export function summaryRecord(s: BackupSummary): Record<string, unknown> {
  return {
    files: s.totalFilesProcessed,
    dirs: s.dirsNew + s.dirsChanged + s.dirsUnmodified,
    bytes: s.totalBytesProcessed,
    new_bytes: s.dataAdded,
    stored_bytes: s.dataAddedPacked,
    duration_ms: s.totalDurationMs,
    incomplete: s.incomplete,
    files_new: s.filesNew,
    files_changed: s.filesChanged,
    files_unmodified: s.filesUnmodified,
    dirs_new: s.dirsNew,
    dirs_changed: s.dirsChanged,
    dirs_unmodified: s.dirsUnmodified,
    errors: s.errors,
  };
}

/** Backs up the given paths; see Archiver. */
export function backup(repo: Repository, paths: string[], opts: BackupOptions = {}): Promise<BackupResult> {
  return new Archiver(repo, opts).backup(paths);
}
