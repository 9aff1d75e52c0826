import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Storage } from '../storage/types.js';
import { StorageError } from '../storage/errors.js';
import { IndexDb } from '../cache/index-db.js';
import { toHex, isHexId } from '../util/hex.js';
import { deriveSubkeys, gearTable } from './keys-derive.js';
import { createKeyFile, type KeyFile } from './keyfile.js';
import { readKeyFiles, unlockMasterKey, type StoredKey } from './key-store.js';
import type { KdfParams } from './kdf.js';
import {
  FORMAT_VERSION,
  configSchema,
  indexFileSchema,
  snapshotSchema,
  type IndexFile,
  type IndexPack,
  type RepoConfig,
  type Snapshot,
} from './formats.js';
import { AppendOnlyError, IntegrityError, NoRepositoryError, RepositoryExistsError, UnsupportedVersionError } from './errors.js';
import { openJson, sealJson } from './sealed.js';
import { checkShape } from '../util/json-shape.js';
import { sha256Hex } from './hash.js';
import { openBlob, sealBlob, type BlobType, type SealedBlob } from './blob.js';
import { PACK_TARGET_SIZE, PACK_TAIL_GUESS, PackWriter, parsePackTail, type FinishedPack, type PackEntry } from './pack.js';
import { CHUNKER_AVG, CHUNKER_MAX, CHUNKER_MIN } from './chunker.js';
import { RepoLock, type LockOptions } from './lock.js';
import { cleanSpool, SpooledPackWriter, type SpooledPack } from './pack-spool.js';
import { defaultCacheDir } from './cache-dir.js';
import { mapLimit, WeightedGate } from '../util/concurrency.js';
import { crashPoint } from '../util/crash-point.js';
import { listObjects } from './listing.js';
import { splitIndexPacks } from './index-split.js';
import { TreeCache } from './tree-cache.js';

/** Most blob ids preloadBlobs keeps in memory (≈ 100 bytes each). */
const KNOWN_BLOBS_MAX = 500_000;

export interface OpenOptions {
  /** Root of all caches; the repository's own lives in <cacheDir>/<repo id>. */
  cacheDir?: string;
  /** Concurrent pack uploads. */
  uploadConcurrency?: number;
  /** Bring the cache's index and snapshot list up to date while opening (default true). */
  sync?: boolean;
  /** Told about problems that do not stop the command (an unreadable index file). */
  warn?: (message: string) => void;
}

export interface InitOptions extends OpenOptions {
  kdf?: KdfParams;
}

export interface SubKeys {
  encryption: Buffer;
  blobId: Buffer;
  chunker: Buffer;
}

/** Index checkpoints during long writes (format §7). */
const CHECKPOINT_BLOBS = 25_000;
const CHECKPOINT_MS = 10 * 60 * 1000;
/** Stored bytes of index files read at once while syncing the cache. */
const INDEX_SYNC_BYTES = 4 * 1024 * 1024;
const TYPE_CODE = { data: 0, tree: 1 } as const;

export function packName(id: string): string {
  return `data/${id.slice(0, 2)}/${id}`;
}

/**
 * An open repository: keys, config, the local index cache, and the blob/pack/index/snapshot
 * read and write paths of format v1 (docs/repository-format.md).
 */
export class Repository {
  readonly keys: SubKeys;
  private gear: Int32Array | null = null;
  private readonly packers: Record<BlobType, PackWriter | SpooledPackWriter | null> = { data: null, tree: null };
  /**
   * Where packs are written as they fill (pack-spool.ts) when the storage can upload a file
   * (Storage.putFile): the storage's spoolDir, else <cache>/spool. null: packs are built in
   * memory (LIFEBOAT_PACK_SPOOL=0, or a storage without putFile).
   */
  private readonly spool: string | null;
  private spoolCleaned = false;
  /** Blobs written in this session whose index file is not written yet: hex id → where. */
  private readonly pending = new Map<string, { type: BlobType; pack: string | null; entry?: PackEntry }>();
  /** Sealed tree blobs on local disk (tree-cache.ts). */
  private readonly treeCache: TreeCache;
  /** Read trees from the repository even when cached (check and repair: they judge the repository). */
  bypassTreeCache = false;
  private readonly uploads = new Set<Promise<void>>();
  /** Indexed blob ids (hex) looked up ahead by preloadBlobs, each dropped when asked about. */
  private readonly knownBlobs = new Set<string>();
  /** Pack writers being finished or waiting for an upload slot (not yet in `uploads`). */
  private starting = 0;
  private unindexed: IndexPack[] = [];
  private unindexedBlobs = 0;
  private lastCheckpoint = Date.now();
  private writeFailure: Error | null = null;
  /** See holdWritesUntil. */
  private writeGate: Promise<void> = Promise.resolve();
  private indexWrite: Promise<void> = Promise.resolve();
  /** Why writing to the repository failed in this session (every later write fails with it), or null. */
  get writeError(): Error | null {
    return this.writeFailure;
  }

  /** Bytes of packs uploaded in this session. */
  uploadedBytes = 0;
  /** Index files that could not be read at the last sync, with the reason (repair index mends them). */
  readonly unreadableIndex = new Map<string, string>();
  /**
   * Append-only client: nothing but locks is ever deleted (forget, prune, repair and key removal
   * refuse), for VMs whose storage credentials may not delete. A trusted host does maintenance.
   */
  appendOnly = false;
  /** The KDF parameters and salt of the key file that opened this repository (null when created here). */
  keyKdf: KeyFile['kdf'] | null = null;
  /** Snapshots that could not be read at the last sync, with the reason. */
  readonly unreadableSnapshots = new Map<string, string>();
  /** Longest time between index checkpoints while writing (LIFEBOAT_CHECKPOINT_INTERVAL). */
  checkpointMs = CHECKPOINT_MS;
  /**
   * Joins a finished pack's parts and returns the bytes with their hex SHA-256, off this thread
   * (SealPool.assemblePack). May take ownership of the parts' memory. null: done here.
   */
  packAssembler: ((parts: Buffer[], size: number) => Promise<{ bytes: Buffer; id: string }>) | null = null;
  /** Told when a pack's bytes are uploaded and no longer used here, so they can be reused. */
  packReleaser: ((bytes: Buffer) => void) | null = null;
  /** Told when a sealed blob's bytes were written to a spooled pack, so its buffer can be reused. */
  sealedReleaser: ((sealed: Buffer) => void) | null = null;

  private constructor(
    readonly storage: Storage,
    readonly config: RepoConfig,
    private readonly master: Buffer,
    readonly keyId: string,
    readonly cache: IndexDb,
    readonly cacheDir: string,
    private readonly uploadConcurrency: number,
    private readonly warn: (message: string) => void,
  ) {
    this.keys = deriveSubkeys(master);
    this.treeCache = new TreeCache(path.join(cacheDir, 'trees'));
    this.spool = storage.putFile && process.env.LIFEBOAT_PACK_SPOOL !== '0' ? storage.spoolDir ?? path.join(cacheDir, 'spool') : null;
  }

  get id(): string {
    return this.config.id;
  }

  get location(): string {
    return this.storage.location;
  }

  /** The chunker's gear table, derived from K_chunk (format §5). */
  gearTable(): Int32Array {
    this.gear ??= gearTable(this.keys.chunker);
    return this.gear;
  }

  // ------------------------------------------------------------------ init / open

  static async init(storage: Storage, password: string, opts: InitOptions = {}): Promise<Repository> {
    checkPassword(password);
    if (!(await storage.exists())) await storage.create();
    if ((await storage.stat('config')) !== null) throw new RepositoryExistsError(storage.location);
    for await (const o of storage.list('keys/')) {
      void o;
      throw new RepositoryExistsError(storage.location);
    }
    const master = randomBytes(32);
    const config: RepoConfig = {
      version: FORMAT_VERSION,
      id: randomBytes(32).toString('hex'),
      created: new Date().toISOString(),
      chunker: { algorithm: 'fastcdc-gear32-v1', min: CHUNKER_MIN, avg: CHUNKER_AVG, max: CHUNKER_MAX },
      pack_size: PACK_TARGET_SIZE,
    };
    const key = await createKeyFile(master, password, opts.kdf);
    const { encryption } = deriveSubkeys(master);
    // the key first: a config without a key could never be opened, a key without a config is inert
    await storage.ready?.();
    await storage.put(`keys/${key.id}`, key.bytes, { ifNoneMatch: storage.supportsConditionalPut });
    try {
      await storage.put('config', sealJson(encryption, 'config', config), { ifNoneMatch: storage.supportsConditionalPut });
    } catch (e) {
      if (e instanceof StorageError && e.code === 'already-exists') {
        await storage.delete(`keys/${key.id}`);
        throw new RepositoryExistsError(storage.location);
      }
      throw e;
    }
    return Repository.fromMaster(storage, config, master, key.id, opts);
  }

  static async open(storage: Storage, password: string, opts: OpenOptions = {}): Promise<Repository> {
    checkPassword(password);
    // the config, the key files and (to sync the cache) the listings are fetched at once: on S3
    // each is a round trip, and the listings overlap the key derivation
    const configRead = storage.get('config');
    configRead.catch(() => undefined);
    const sync = opts.sync ?? true;
    const listings = sync ? { index: listObjects(storage, 'index'), snapshots: listObjects(storage, 'snapshots') } : null;
    listings?.index.catch(() => undefined);
    listings?.snapshots.catch(() => undefined);
    const unlocking = unlockMasterKey(storage, password);
    unlocking.catch(() => undefined);
    let configBytes: Buffer;
    try {
      configBytes = await configRead;
    } catch (e) {
      if (e instanceof StorageError && (e.code === 'not-found' || e.code === 'no-bucket')) {
        throw new NoRepositoryError(storage.location, e.code === 'no-bucket' ? e.message : undefined);
      }
      throw e;
    }
    const { key, master } = await unlocking;
    const { encryption } = deriveSubkeys(master);
    const config = openJson(encryption, 'config', 'config', configBytes, configSchema);
    if (config.version !== FORMAT_VERSION) throw new UnsupportedVersionError('the repository', config.version);
    const repo = Repository.fromMaster(storage, config, master, key.id, opts);
    repo.keyKdf = key.file.kdf;
    if (listings !== null) {
      try {
        await Promise.all([repo.syncIndex(listings.index), repo.syncSnapshots(listings.snapshots)]);
      } catch (e) {
        await repo.close();
        throw e;
      }
    }
    return repo;
  }

  private static fromMaster(
    storage: Storage,
    config: RepoConfig,
    master: Buffer,
    keyId: string,
    opts: OpenOptions,
  ): Repository {
    const cacheRoot = defaultCacheDir(opts.cacheDir);
    const dir = path.join(cacheRoot, config.id);
    const cache = IndexDb.open(dir);
    return new Repository(storage, config, master, keyId, cache, dir, opts.uploadConcurrency ?? 4, opts.warn ?? (() => undefined));
  }

  async close(): Promise<void> {
    for (const type of ['data', 'tree'] as const) {
      const packer = this.packers[type];
      this.packers[type] = null;
      if (packer instanceof SpooledPackWriter) packer.discard();
    }
    this.master.fill(0);
    this.cache.close();
  }

  private assertMayDelete(what: string): void {
    if (this.appendOnly) throw new AppendOnlyError(what);
  }

  // ------------------------------------------------------------------ keys

  async listKeys(): Promise<StoredKey[]> {
    return (await readKeyFiles(this.storage)).keys;
  }

  /** Adds a key file for another password; returns its id. */
  async addKey(password: string, kdf?: KdfParams): Promise<string> {
    checkPassword(password);
    const key = await createKeyFile(this.master, password, kdf);
    await this.writable();
    await this.storage.put(`keys/${key.id}`, key.bytes);
    return key.id;
  }

  /** Removes a key file; never the one in use, never the last one. */
  async removeKey(id: string): Promise<void> {
    this.assertMayDelete('remove keys');
    const keys = await this.listKeys();
    const match = keys.filter((k) => k.id.startsWith(id));
    if (match.length === 0) throw new Error(`no key file ${id}`);
    if (match.length > 1) throw new Error(`key id prefix ${id} is ambiguous`);
    const target = match[0]!;
    if (target.id === this.keyId) throw new Error('refusing to remove the key in use; open the repository with another password');
    if (keys.length <= 1) throw new Error('refusing to remove the last key');
    await this.writable();
    await this.storage.delete(`keys/${target.id}`);
  }

  /** Replaces the current password: writes the new key file, then removes the old one. */
  async changePassword(newPassword: string, kdf?: KdfParams): Promise<string> {
    this.assertMayDelete('replace a key');
    const newId = await this.addKey(newPassword, kdf);
    await this.storage.delete(`keys/${this.keyId}`);
    return newId;
  }

  // ------------------------------------------------------------------ objects

  /** Reads a content-named object and checks its bytes against its name. */
  async getVerified(name: string): Promise<Buffer> {
    const bytes = await this.storage.get(name);
    const id = name.slice(name.lastIndexOf('/') + 1);
    if (sha256Hex(bytes) !== id) throw new IntegrityError(name, 'content does not match its name (SHA-256)');
    return bytes;
  }

  /** Resolves an id prefix among the objects under a folder (index/, snapshots/, keys/, data/). */
  async resolveId(folder: 'index' | 'snapshots' | 'keys' | 'data', prefix: string): Promise<string> {
    if (!/^[0-9a-f]{1,64}$/.test(prefix)) throw new Error(`not a valid id: ${prefix}`);
    if (isHexId(prefix)) return prefix;
    const found: string[] = [];
    for await (const o of this.storage.list(`${folder}/`)) {
      const id = o.name.slice(o.name.lastIndexOf('/') + 1);
      if (isHexId(id) && id.startsWith(prefix)) found.push(id);
    }
    if (found.length === 0) throw new Error(`no ${folder} object matches ${prefix}`);
    if (found.length > 1) throw new Error(`id prefix ${prefix} is ambiguous in ${folder}/ (${found.length} matches)`);
    return found[0]!;
  }

  async loadIndexFile(id: string): Promise<IndexFile> {
    const name = `index/${id}`;
    const file = openJson(this.keys.encryption, 'index', name, await this.getVerified(name), indexFileSchema);
    if (file.version !== 1) throw new UnsupportedVersionError(name, file.version);
    return file;
  }

  async loadSnapshot(id: string): Promise<Snapshot> {
    const cached = this.cache.snapshotJson(id);
    if (cached) return checkShape(snapshotSchema, JSON.parse(cached));
    const name = `snapshots/${id}`;
    const snap = openJson(this.keys.encryption, 'snapshot', name, await this.getVerified(name), snapshotSchema);
    if (snap.version !== 1) throw new UnsupportedVersionError(name, snap.version);
    return snap;
  }

  /** Writes a snapshot (after flush(): every blob it names must be indexed). */
  async saveSnapshot(snap: Snapshot): Promise<string> {
    const bytes = sealJson(this.keys.encryption, 'snapshot', snap);
    const id = sha256Hex(bytes);
    crashPoint('before-snapshot');
    await this.writable();
    await this.storage.put(`snapshots/${id}`, bytes);
    this.cache.applySnapshotChanges([{ id, time: snap.time, json: JSON.stringify(snap) }], []);
    return id;
  }

  /**
   * Deletes a snapshot object (forget). Only the snapshot goes: the data it referenced stays
   * until prune (format §12). A snapshot already gone counts as deleted.
   */
  async deleteSnapshot(id: string): Promise<void> {
    this.assertMayDelete('remove snapshots');
    if (!isHexId(id)) throw new Error(`not a snapshot id: ${id}`);
    await this.writable();
    await this.storage.delete(`snapshots/${id}`);
    this.cache.applySnapshotChanges([], [id]);
  }

  /** Every snapshot, oldest first, after syncing the cache. */
  async listSnapshots(): Promise<Array<{ id: string; snapshot: Snapshot }>> {
    await this.syncSnapshots();
    return this.cache.allSnapshots().map((r) => ({ id: r.id, snapshot: checkShape(snapshotSchema, JSON.parse(r.json)) }));
  }

  // ------------------------------------------------------------------ cache sync

  /** Ids under folder/ that the cache lacks, and cached ids the repository no longer has. */
  private async listingChanges(
    folder: 'index' | 'snapshots',
    known: Set<string>,
    listed?: Promise<Array<{ id: string; size: number }>>,
  ): Promise<{ toFetch: string[]; removed: string[]; sizes: Map<string, number> }> {
    const sizes = new Map((await (listed ?? listObjects(this.storage, folder))).map((o) => [o.id, o.size]));
    return {
      toFetch: [...sizes.keys()].filter((id) => !known.has(id)),
      removed: [...known].filter((id) => !sizes.has(id)),
      sizes,
    };
  }

  /**
   * Brings the cache's copy of the index up to date: fetch new index files, drop vanished ones.
   * An index file that cannot be read (damaged, truncated) is skipped with a warning and listed
   * in `unreadableIndex`: reads go on with the rest, and prune refuses to run until
   * `repair index` has mended it.
   */
  async syncIndex(listed?: Promise<Array<{ id: string; size: number }>>): Promise<{ added: number; removed: number }> {
    const { toFetch, removed, sizes } = await this.listingChanges('index', this.cache.indexIds(), listed);
    this.unreadableIndex.clear();
    // each file goes into the cache as soon as it is read, at most ~4 MiB of them (stored) in flight:
    // a large index never sits in memory whole
    const gate = new WeightedGate(INDEX_SYNC_BYTES);
    let added = 0;
    this.cache.applyIndexChanges([], removed);
    await mapLimit(toFetch, 8, (id) =>
      gate.run(sizes.get(id) ?? 0, async () => {
        try {
          const file = await this.loadIndexFile(id);
          this.cache.applyIndexChanges([{ id, file }], []);
          added++;
        } catch (e) {
          if (!(e instanceof IntegrityError || e instanceof UnsupportedVersionError)) throw e;
          this.unreadableIndex.set(id, e.message);
          this.warn(`skipping index/${id}: ${e.message} (run "lifeboat repair index")`);
        }
      }),
    );
    return { added, removed: removed.length };
  }

  /** Like syncIndex for snapshots: an unreadable one is skipped with a warning (prune then refuses). */
  async syncSnapshots(listed?: Promise<Array<{ id: string; size: number }>>): Promise<{ added: number; removed: number }> {
    const { toFetch, removed } = await this.listingChanges('snapshots', this.cache.snapshotIds(), listed);
    this.unreadableSnapshots.clear();
    const loaded = await mapLimit(toFetch, 8, async (id) => {
      const name = `snapshots/${id}`;
      try {
        const snap = openJson(this.keys.encryption, 'snapshot', name, await this.getVerified(name), snapshotSchema);
        if (snap.version !== 1) throw new UnsupportedVersionError(name, snap.version);
        return { id, time: snap.time, json: JSON.stringify(snap) };
      } catch (e) {
        if (!(e instanceof IntegrityError || e instanceof UnsupportedVersionError)) throw e;
        this.unreadableSnapshots.set(id, e.message);
        this.warn(`skipping ${name}: ${e.message}`);
        return null;
      }
    });
    const added = loaded.filter((a): a is { id: string; time: string; json: string } => a !== null);
    this.cache.applySnapshotChanges(added, removed);
    return { added: added.length, removed: removed.length };
  }

  // ------------------------------------------------------------------ blobs: write path

  /** True if the repository (or this session's unwritten packs) already holds the blob. */
  hasBlob(id: Buffer): boolean {
    return this.knownInMemory(toHex(id)) || this.cache.has(id);
  }

  /** {@link hasBlob} for an id in hex. */
  hasBlobHex(hex: string): boolean {
    return this.knownInMemory(hex) || this.cache.has(Buffer.from(hex, 'hex'));
  }

  /** Stored by this session, or preloaded (each preloaded answer is used once). */
  private knownInMemory(hex: string): boolean {
    return this.pending.has(hex) || this.knownBlobs.delete(hex);
  }

  /**
   * Looks these blob ids (hex) up in the index in one query, so that the hasBlob calls about to
   * follow for them answer from memory (once each) instead of one index query per blob: a
   * backup asks about every blob of every unchanged file, and one query per directory instead
   * took a no-change backup of 20,000 files from ≈ 190 to ≈ 30 ms of lookups. Ids not asked
   * about are held until the set reaches KNOWN_BLOBS_MAX; then nothing more is preloaded.
   */
  preloadBlobs(hexIds: string[]): void {
    if (hexIds.length === 0 || this.knownBlobs.size + hexIds.length > KNOWN_BLOBS_MAX) return;
    for (const hex of this.cache.hasMany(hexIds)) this.knownBlobs.add(hex);
  }

  /** Seals and stores a blob unless it is already there; returns its id and whether it was new. */
  async saveBlob(type: BlobType, data: Buffer): Promise<{ id: Buffer; added: boolean }> {
    const blob = sealBlob(this.keys, type, data);
    return { id: blob.id, added: await this.addSealedBlob(blob) };
  }

  /**
   * Adds an already sealed blob (from a worker pool); false if it was a duplicate. The
   * repository owns `blob.sealed` afterwards (a packAssembler may transfer its memory).
   */
  async addSealedBlob(blob: SealedBlob): Promise<boolean> {
    if (this.writeFailure) throw this.writeFailure;
    if (this.hasBlob(blob.id)) return false;
    await this.addToPack(blob);
    return true;
  }

  /**
   * Prune's repacking: stores a blob again even though the index already holds it (the old copy's
   * pack is about to go). Only this session's own writes deduplicate it.
   */
  async repackBlob(blob: SealedBlob): Promise<boolean> {
    if (this.writeFailure) throw this.writeFailure;
    if (this.pending.has(toHex(blob.id))) return false;
    await this.addToPack(blob);
    return true;
  }

  private async addToPack(blob: SealedBlob): Promise<void> {
    // before anything else: a pack assembler may take over the sealed bytes' memory
    if (blob.type === 'tree') this.treeCache.put(toHex(blob.id), blob.sealed);
    // All bookkeeping happens before the first await, so concurrent callers (several files
    // stored at once) never see a half-updated packer; only the uploads are awaited.
    const limit = this.config.pack_size;
    let packer = this.packers[blob.type];
    const full: Array<PackWriter | SpooledPackWriter> = [];
    if (packer && packer.count > 0 && packer.sizeWith(blob.sealed.length) > limit) {
      full.push(packer);
      packer = null;
    }
    if (!packer) packer = this.newPacker(blob.type);
    if (packer instanceof SpooledPackWriter) {
      try {
        packer.add(blob);
      } catch (e) {
        // the pack's file is unusable: give it up; its blobs were never indexed, and no snapshot
        // may name them (every later write and flush fails with this)
        packer.discard();
        this.packers[blob.type] = null;
        this.failWrites(e);
        throw e;
      }
      this.sealedReleaser?.(blob.sealed);
    } else {
      packer.add(blob);
    }
    this.pending.set(toHex(blob.id), { type: blob.type, pack: null });
    if (packer.size >= limit) {
      full.push(packer);
      this.packers[blob.type] = null;
    } else {
      this.packers[blob.type] = packer;
    }
    for (const p of full) await this.uploadPackWriter(p);
  }

  private newPacker(type: BlobType): PackWriter | SpooledPackWriter {
    if (this.spool === null) return new PackWriter(type, this.keys.encryption);
    if (!this.spoolCleaned) {
      this.spoolCleaned = true;
      cleanSpool(this.spool);
    }
    const cacheSpool = this.storage.spoolDir === undefined;
    const mapError = (e: unknown, file: string): Error => {
      const code = (e as NodeJS.ErrnoException | null)?.code;
      const why = e instanceof Error ? e.message : String(e);
      if (cacheSpool) {
        return new Error(`cannot write a pack to the local spool ${file}: ${why}; free space there or use --cache-dir elsewhere; the repository is unharmed`, { cause: e });
      }
      const kind = code === 'ENOSPC' || code === 'EDQUOT' ? 'no-space' : code === 'EACCES' || code === 'EPERM' ? 'access-denied' : 'invalid';
      return new StorageError(kind, `${this.storage.location}: cannot write pack ${file}: ${why}`, false, { cause: e });
    };
    try {
      return SpooledPackWriter.create(this.spool, type, this.keys.encryption, mapError);
    } catch (e) {
      this.failWrites(e); // no pack can be written: that is the command's error
      throw e;
    }
  }

  private async finishPack(type: BlobType): Promise<void> {
    const packer = this.packers[type];
    this.packers[type] = null;
    if (packer) await this.uploadPackWriter(packer);
  }

  /** Finishes a detached pack writer and starts its upload (waiting for a free upload slot). */
  private async uploadPackWriter(packer: PackWriter | SpooledPackWriter): Promise<void> {
    if (packer.count === 0) return;
    this.starting++;
    try {
      await this.startUpload(packer);
    } finally {
      this.starting--;
    }
  }

  private async startUpload(packer: PackWriter | SpooledPackWriter): Promise<void> {
    if (packer instanceof SpooledPackWriter) return this.startSpooledUpload(packer);
    const type = packer.type;
    const assembler = this.packAssembler;
    // with an assembler, joining and hashing happen off this thread as part of the upload
    const parts = assembler ? packer.finishParts() : null;
    const finished = parts ? null : packer.finish();
    const located = (pack: FinishedPack): FinishedPack => {
      for (const e of pack.entries) this.pending.set(toHex(e.id), { type, pack: pack.id, entry: e });
      return pack;
    };
    if (finished) located(finished);
    while (this.uploads.size >= this.uploadConcurrency) await Promise.race(this.uploads);
    if (this.writeFailure) throw this.writeFailure;
    const upload = finished
      ? this.uploadPack(finished)
      : assembler!(parts!.parts, parts!.size).then(({ bytes, id }) =>
        this.uploadPack(located({ id, type, bytes, entries: parts!.entries })));
    this.track(upload);
  }

  /** Counts an upload under way until it settles; its failure fails every later write. */
  private track(upload: Promise<void>): void {
    const p: Promise<void> = upload.then(
      () => void this.uploads.delete(p),
      (e: unknown) => {
        this.uploads.delete(p);
        this.failWrites(e);
      },
    );
    this.uploads.add(p);
  }

  private failWrites(e: unknown): void {
    this.writeFailure ??= e instanceof Error ? e : new Error(String(e));
  }

  private async uploadPack(pack: FinishedPack): Promise<void> {
    await this.writable();
    await this.storage.put(packName(pack.id), pack.bytes);
    crashPoint('pack-uploaded');
    this.packReleaser?.(pack.bytes);
    await this.uploaded(pack.id, pack.type, pack.bytes.length, pack.entries);
  }

  /** startUpload for a spooled pack: its file is finished and named, then uploaded from disk. */
  private async startSpooledUpload(packer: SpooledPackWriter): Promise<void> {
    let pack: SpooledPack;
    try {
      pack = packer.finish();
    } catch (e) {
      packer.discard();
      this.failWrites(e);
      throw e;
    }
    for (const e of pack.entries) this.pending.set(toHex(e.id), { type: pack.type, pack: pack.id, entry: e });
    try {
      while (this.uploads.size >= this.uploadConcurrency) await Promise.race(this.uploads);
      if (this.writeFailure) throw this.writeFailure;
    } catch (e) {
      packer.discard();
      throw e;
    }
    this.track(this.uploadSpooled(pack).finally(() => packer.discard()));
  }

  private async uploadSpooled(pack: SpooledPack): Promise<void> {
    await this.writable();
    await this.storage.putFile!(packName(pack.id), pack.file, pack.size);
    crashPoint('pack-uploaded');
    await this.uploaded(pack.id, pack.type, pack.size, pack.entries);
  }

  /** Bookkeeping once a pack is stored: it joins the next index checkpoint. */
  private async uploaded(id: string, type: BlobType, size: number, entries: PackEntry[]): Promise<void> {
    this.uploadedBytes += size;
    this.unindexed.push({
      id,
      type,
      size,
      blobs: entries.map((e) => ({ id: toHex(e.id), offset: e.offset, length: e.length, raw_length: e.rawLength })),
    });
    this.unindexedBlobs += entries.length;
    if (this.unindexedBlobs >= CHECKPOINT_BLOBS || Date.now() - this.lastCheckpoint >= this.checkpointMs) {
      await this.writeIndexCheckpoint();
    }
  }

  /** Writes an index file naming every uploaded pack not yet indexed (serialised). */
  private writeIndexCheckpoint(): Promise<void> {
    const run = async () => {
      if (this.unindexed.length === 0) return;
      const packs = this.unindexed;
      this.unindexed = [];
      this.unindexedBlobs = 0;
      this.lastCheckpoint = Date.now();
      try {
        for (const part of splitIndexPacks(packs)) await this.saveIndexFile({ version: 1, supersedes: [], packs: part });
      } catch (e) {
        this.unindexed = packs.concat(this.unindexed);
        throw e;
      }
      for (const p of packs) for (const b of p.blobs) this.pending.delete(b.id);
    };
    this.indexWrite = this.indexWrite.then(run, run);
    return this.indexWrite;
  }

  /** Writes one index file and adds it to the cache; returns its id. */
  async saveIndexFile(file: IndexFile): Promise<string> {
    const bytes = sealJson(this.keys.encryption, 'index', file);
    const id = sha256Hex(bytes);
    await this.writable();
    await this.storage.put(`index/${id}`, bytes);
    crashPoint('index-written');
    this.cache.applyIndexChanges([{ id, file }], []);
    return id;
  }

  /** Deletes index files (prune, repair index: only after their replacements are written). */
  async deleteIndexFiles(ids: Iterable<string>): Promise<void> {
    this.assertMayDelete('delete index files');
    await this.writable();
    const list = [...ids];
    await mapLimit(list, 8, async (id) => {
      await this.storage.delete(`index/${id}`);
      crashPoint('index-deleted');
    });
    this.cache.applyIndexChanges([], list);
  }

  /** Deletes packs (prune: only once no index file names them). */
  async deletePacks(ids: Iterable<string>, onDeleted?: (id: string) => void): Promise<void> {
    this.assertMayDelete('delete packs');
    await this.writable();
    await mapLimit([...ids], 8, async (id) => {
      await this.storage.delete(packName(id));
      crashPoint('pack-deleted');
      onDeleted?.(id);
    });
  }

  /** Finishes open packs, waits for uploads, writes the index: after it, every saved blob is durable. */
  async flush(): Promise<void> {
    await this.finishPack('data');
    await this.finishPack('tree');
    while (this.uploads.size > 0 || this.starting > 0) {
      if (this.uploads.size > 0) await Promise.race(this.uploads);
      else await new Promise<void>((r) => setImmediate(r));
    }
    if (this.writeFailure) throw this.writeFailure;
    await this.writeIndexCheckpoint();
  }


  // ------------------------------------------------------------------ blobs: read path

  /** Drops cached trees that no index names any more (after prune); returns how many. */
  pruneTreeCache(): number {
    return this.treeCache.retainOnly((hex) => this.cache.has(Buffer.from(hex, 'hex')));
  }

  /** Loads and verifies a blob's plaintext. */
  async loadBlob(id: Buffer): Promise<Buffer> {
    const hex = toHex(id);
    const p = this.pending.get(hex);
    if (p && p.pack === null) await this.flush();
    const pending = this.pending.get(hex);
    const indexed = pending?.entry && pending.pack ? null : this.cache.lookup(id);
    const locations = indexed ?? [{ packId: pending!.pack!, offset: pending!.entry!.offset, length: pending!.entry!.length }];
    if (locations.length === 0) throw new Error(`blob ${hex} is not in the index`);
    const tree = indexed === null ? pending!.type === 'tree' : indexed[0]!.type === TYPE_CODE.tree;
    if (tree && !this.bypassTreeCache) {
      const cached = this.treeCache.get(hex);
      if (cached !== null) {
        try {
          return openBlob(this.keys, id, cached, 'the tree cache');
        } catch {
          this.treeCache.drop(hex);
        }
      }
    }
    let lastError: unknown;
    for (const loc of locations) {
      const name = packName(loc.packId);
      try {
        const sealed = await this.storage.get(name, { offset: loc.offset, length: loc.length });
        if (sealed.length !== loc.length) throw new IntegrityError(name, `short read of blob ${hex}`);
        const plain = openBlob(this.keys, id, sealed, name);
        if (tree) this.treeCache.put(hex, sealed);
        return plain;
      } catch (e) {
        lastError = e;
      }
    }
    throw lastError;
  }

  /** Reads and authenticates a pack's header from its trailing bytes (format §6). */
  async readPackHeader(packId: string): Promise<PackEntry[]> {
    const name = packName(packId);
    const st = await this.storage.stat(name);
    if (!st) throw new StorageError('not-found', `pack ${name} does not exist at ${this.location}`);
    let tail = await this.storage.get(name, { suffix: Math.min(PACK_TAIL_GUESS, st.size) });
    let r = parsePackTail(name, this.keys.encryption, tail, st.size);
    if ('need' in r) {
      tail = await this.storage.get(name, { suffix: r.need });
      r = parsePackTail(name, this.keys.encryption, tail, st.size);
      if ('need' in r) throw new IntegrityError(name, 'pack header could not be read');
    }
    return r;
  }

  /** The cache's blob type code for a blob type. */
  static typeCode(t: BlobType): 0 | 1 {
    return TYPE_CODE[t];
  }

  // ------------------------------------------------------------------ locks

  lock(opts: LockOptions): Promise<RepoLock> {
    return RepoLock.acquire(this.storage, this.keys.encryption, opts);
  }

  /**
   * Nothing is written to or deleted from the repository before `gate` resolves, and every write
   * fails with its rejection: a lock whose conflict check is still under way
   * (LockOptions.deferCheck, RepoLock.confirmed).
   */
  holdWritesUntil(gate: Promise<void>): void {
    this.writeGate = gate;
  }

  private async writable(): Promise<void> {
    await this.writeGate;
  }
}

function checkPassword(password: string): void {
  if (password.length === 0) throw new Error('an empty password is not allowed');
}
