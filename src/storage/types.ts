/**
 * The one small interface every object store implements. Names are relative
 * to the repository root ("config", "keys/<id>", "data/ab/<id>", ...), always
 * with forward slashes and never starting with "/".
 */
export interface ObjectInfo {
  name: string;
  size: number;
  /** Last modification time in ms since the epoch (0 when the store does not say). */
  mtimeMs: number;
}

/**
 * A range past the end of the object is clamped to it (like a file read): `{offset: size+10}`
 * gives 0 bytes, `{suffix: size*2}` gives the whole object. Negative numbers are invalid.
 */
export type ByteRange =
  | { offset: number; length?: number } // bytes [offset, offset+length) (to the end without length)
  | { suffix: number }; // the last `suffix` bytes

/** [start, end) of `range` within an object of `size` bytes, clamped to the object. */
export function clampRange(size: number, range?: ByteRange): [number, number] {
  if (range === undefined) return [0, size];
  if ('suffix' in range) return [Math.max(0, size - range.suffix), size];
  const start = Math.min(range.offset, size);
  const end = range.length === undefined ? size : Math.min(size, range.offset + range.length);
  return [start, Math.max(start, end)];
}

/** False for negative or fractional numbers in a range. */
export function isValidRange(range: ByteRange): boolean {
  const ok = (n: number | undefined): boolean => n === undefined || (Number.isSafeInteger(n) && n >= 0);
  return 'suffix' in range ? ok(range.suffix) : ok(range.offset) && ok(range.length);
}

export interface PutOptions {
  /** Create only: fail with AlreadyExistsError if the object exists (If-None-Match: *). */
  ifNoneMatch?: boolean;
  /**
   * The object need not outlive a crash of this machine (a lock: whoever holds it dies with the
   * machine, and its lock is stale then anyway). Still written atomically, but a local store
   * skips its fsyncs — a directory fsync cost up to 200 ms per lock here, most of a no-change
   * backup's idle time.
   */
  transient?: boolean;
}

export interface Storage {
  /** Human-readable location for messages; never contains credentials. */
  readonly location: string;
  /** True when put({ifNoneMatch}) is atomic on this store (once ready() has resolved). */
  readonly supportsConditionalPut: boolean;
  /**
   * Optional: resolves once what the store supports is known (S3 probes conditional puts in the
   * background); rejects with the error the probe met. Read supportsConditionalPut after it.
   */
  ready?(): Promise<void>;
  /**
   * True when an object whose put has returned is in every later list (a local directory;
   * not assumed of S3-compatible stores). Taking a lock then needs no settling wait before its
   * check for rivals: of two lockers, the one that lists last sees the other.
   */
  readonly consistentListing?: boolean;
  /** Whole object or a byte range. Throws NotFoundError when absent. */
  get(name: string, range?: ByteRange): Promise<Buffer>;
  /**
   * Optional (local files, S3): reads up to `length` bytes at `offset` into `buf` from its start,
   * without allocating; returns the bytes read (fewer at the object's end). Lets a restore
   * reuse its read buffers.
   */
  getInto?(name: string, offset: number, length: number, buf: Uint8Array): Promise<number>;
  /** Writes the whole object atomically (readers see all of it or nothing). */
  put(name: string, data: Buffer, opts?: PutOptions): Promise<void>;
  /**
   * Optional (local files, S3): stores the finished local file `file` of `size` bytes as object
   * `name`, atomically, streaming it instead of holding it in memory (pack uploads). A local
   * store moves the file into place when it can; the caller removes whatever is left afterwards.
   */
  putFile?(name: string, file: string, size: number): Promise<void>;
  /**
   * Optional: the directory to write putFile's files in so they can be moved rather than copied
   * (a local store: inside its root, on the same filesystem). Default: the local cache.
   */
  readonly spoolDir?: string;
  /** Every object whose name starts with prefix (e.g. "index/"), in no particular order. */
  list(prefix: string): AsyncIterable<ObjectInfo>;
  /** Idempotent: deleting a missing object is not an error. */
  delete(name: string): Promise<void>;
  /** null when absent. */
  stat(name: string): Promise<ObjectInfo | null>;
  /** Checks that the store itself is there (bucket exists / directory exists). */
  exists(): Promise<boolean>;
  /** Creates the bucket/directory if needed (used by init). */
  create(): Promise<void>;
  close(): Promise<void>;
}
