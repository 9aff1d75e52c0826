/**
 * Native helpers for what Node's fs lacks (native/lifeboat_native.c, built by `npm ci` with
 * node-gyp into build/Release/): nanosecond times on symlinks and files without following
 * links, extended attributes (l*xattr: never follow symlinks), and mknod for FIFOs and device
 * nodes. Paths may be Buffers (raw bytes, for names that are not UTF-8) or strings.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export type PathLike = Buffer | string;

interface Binding {
  utimesNs(p: PathLike, aSec: number, aNsec: number, mSec: number, mNsec: number): void;
  listXattrs(p: PathLike): Buffer;
  getXattr(p: PathLike, name: PathLike): Buffer;
  setXattr(p: PathLike, name: PathLike, value: Buffer): void;
  mknod(p: PathLike, mode: number, major: number, minor: number): void;
  devSplit(rdev: number): [number, number];
  tuneMalloc(mmapThreshold: number, arenaMax: number): boolean;
  willNeed(p: PathLike): boolean;
  willNeedMany(paths: PathLike[]): Promise<number>;
  raiseNoFileLimit(max: number): number;
  argon2idAvailable(): boolean;
  argon2id(password: Buffer, salt: Buffer, opslimit: number, memlimit: number, keyBytes: number): Promise<Buffer>;
  cdcScan: CdcScan;
  blobNativeAvailable(): boolean;
  sealBlob(encKey: Uint8Array, idKey: Uint8Array, data: Uint8Array, id: Uint8Array | null, level: number,
           out: Uint8Array, idOut: Uint8Array): number;
  openBlob(encKey: Uint8Array, idKey: Uint8Array, sealed: Uint8Array, id: Uint8Array, out: Uint8Array): number;
}

/**
 * One blob sealed or opened in one native call (native/blob.c): HMAC id, zstd payload,
 * XChaCha20-Poly1305 — the same bytes as repo/blob.ts's TypeScript path.
 */
export interface NativeBlob {
  /** Seals `data` into `out` (room for data.length + 41 bytes); the id goes to `idOut`. Returns the sealed length. */
  seal(encKey: Uint8Array, idKey: Uint8Array, data: Uint8Array, id: Uint8Array | null, level: number,
       out: Uint8Array, idOut: Uint8Array): number;
  /** Opens `sealed` into `out` (its exact plaintext length): see {@link OPEN_RESULT}. */
  open(encKey: Uint8Array, idKey: Uint8Array, sealed: Uint8Array, id: Uint8Array, out: Uint8Array): number;
}

/** NativeBlob.open's results. */
export const OPEN_RESULT = { opened: 0, authFailed: 1, needsDecoder: 2, idMismatch: 3 } as const;

/**
 * The chunker's scan in C (native/cdc.c): the index just past the first cut in buf[i..end), or
 * -1 with state[0] = the gear hash at `end`; same arguments and results as repo/chunker.ts's scan.
 */
export type CdcScan = (buf: Uint8Array, i: number, end: number, base: number, h: number, gear: Int32Array,
                       min: number, avg: number, max: number, maskS: number, maskL: number, state: Int32Array) => number;

let binding: Binding | null = null;

function load(): Binding {
  if (binding) return binding;
  const here = path.dirname(fileURLToPath(import.meta.url));
  // src/native and dist/native are both two levels below the package root
  const file = path.resolve(here, '../../build/Release/lifeboat_native.node');
  try {
    binding = createRequire(import.meta.url)(file) as Binding;
  } catch (e) {
    throw new Error(`the native helper ${file} could not be loaded (run "npm ci" or "npm run install" to build it): ${(e as Error).message}`);
  }
  return binding;
}

/** True when the native helper is built and loads. */
export function nativeAvailable(): boolean {
  try {
    load();
    return true;
  } catch {
    return false;
  }
}

const NS = 1_000_000_000n;

function splitNs(ns: bigint): [number, number] {
  // floor division so times before 1970 get a non-negative nanosecond part
  let sec = ns / NS;
  let nsec = ns % NS;
  if (nsec < 0n) {
    nsec += NS;
    sec -= 1n;
  }
  return [Number(sec), Number(nsec)];
}

/** Sets atime and mtime (ns since the epoch) with utimensat(AT_SYMLINK_NOFOLLOW): a symlink's own times. */
export function utimesNs(p: PathLike, atimeNs: bigint, mtimeNs: bigint): void {
  const [as, an] = splitNs(atimeNs);
  const [ms, mn] = splitNs(mtimeNs);
  load().utimesNs(p, as, an, ms, mn);
}

/** Names of the extended attributes of p (llistxattr; a symlink's own), in the kernel's order. */
export function listXattrs(p: PathLike): string[] {
  const raw = load().listXattrs(p);
  const names: string[] = [];
  let start = 0;
  for (let i = 0; i < raw.length; i++) {
    if (raw[i] === 0) {
      if (i > start) names.push(raw.subarray(start, i).toString('utf8'));
      start = i + 1;
    }
  }
  if (start < raw.length) names.push(raw.subarray(start).toString('utf8'));
  return names;
}

/** The value of one extended attribute (lgetxattr). Throws with code ENODATA when absent. */
export function getXattr(p: PathLike, name: string): Buffer {
  return load().getXattr(p, name);
}

/** Creates or replaces an extended attribute (lsetxattr). */
export function setXattr(p: PathLike, name: string, value: Buffer): void {
  load().setXattr(p, name, value);
}

/** Creates a FIFO with the given permission bits (mknod S_IFIFO). */
export function mkfifo(p: PathLike, mode: number): void {
  load().mknod(p, (mode & 0o7777) | 0o010000, 0, 0);
}

/** Creates a node (mode includes the type bits: S_IFCHR, S_IFBLK, S_IFIFO) with device number rdev as stat reports it. */
export function mknod(p: PathLike, mode: number, rdev: number): void {
  const b = load();
  const [maj, min] = b.devSplit(rdev);
  b.mknod(p, mode, maj, min);
}

/** Major and minor numbers of a device number as stat reports it (glibc encoding). */
export function devSplit(rdev: number): { major: number; minor: number } {
  const [major, minor] = load().devSplit(rdev);
  return { major, minor };
}

/**
 * glibc's allocator, for a process that moves many MiB-sized buffers between threads (backup,
 * restore, check): a fixed mmap threshold of 128 KiB, so every buffer at least that large is its
 * own mapping and goes back to the kernel when freed, and at most 2 malloc arenas. Left alone,
 * glibc raises the threshold to the size of each large buffer freed (up to 32 MiB), after which
 * such buffers come from per-thread arenas whose freed memory stays resident: the backup of the
 * bench's 2.1 GB tree peaked at ≈ 450 MiB RSS instead of ≈ 330 (docs/performance.md).
 * LIFEBOAT_MALLOC_TUNE=0 leaves it alone; no effect without the native helper or glibc.
 * Returns whether the settings were applied.
 */
let mallocTuned = false;
export function tuneMalloc(): boolean {
  if (mallocTuned || process.env.LIFEBOAT_MALLOC_TUNE === '0') return mallocTuned;
  try {
    mallocTuned = load().tuneMalloc(128 * 1024, 2);
  } catch {
    // the helper is missing: only memory use differs
  }
  return mallocTuned;
}

/**
 * Asks the kernel to read all of `p` into the page cache in the background (posix_fadvise
 * WILLNEED) and returns at once: for a file about to be read at many random places, such as the
 * index cache's SQLite database, whose B-tree probes otherwise each wait for the disk when the
 * cache is cold. False when it could not be done (no helper, no file); never throws.
 */
export function willNeed(p: PathLike): boolean {
  try {
    return load().willNeed(p);
  } catch {
    return false;
  }
}

/**
 * willNeed for each path, in libuv's thread pool: resolves with how many files were advised (0
 * without the native helper). Paths that can't be opened, and symlinks, are skipped.
 */
export function willNeedMany(paths: PathLike[]): Promise<number> {
  try {
    return load().willNeedMany(paths);
  } catch {
    return Promise.resolve(0);
  }
}

/**
 * Raises this process's soft limit on open files to its hard limit (at most `max`), as Go
 * programs such as restic do at start, and returns the soft limit now in force (1024 when it
 * can't be read: the usual default). For a restore that keeps many files open at once.
 */
export function raiseNoFileLimit(max = 1 << 20): number {
  try {
    const n = load().raiseNoFileLimit(max);
    return n > 0 ? n : 1024;
  } catch {
    return 1024;
  }
}

/**
 * Argon2id v1.3 (crypto_pwhash, ALG_ARGON2ID13) through the system's libsodium, derived in libuv's
 * thread pool: the same function as libsodium-wrappers-sumo's WASM build, about 2.5× faster.
 * null when the native helper or a libsodium to load (Debian: libsodium23) is missing, or with
 * LIFEBOAT_NATIVE_KDF=0 (the WASM build then derives: the tests compare the two).
 */
export function nativeArgon2id(password: Buffer, salt: Uint8Array, opslimit: number, memlimit: number, keyBytes: number): Promise<Buffer> | null {
  const b = argon2idBinding();
  return b === null ? null : b.argon2id(password, Buffer.from(salt), opslimit, memlimit, keyBytes);
}

/** The helper when it can derive with the system's libsodium and LIFEBOAT_NATIVE_KDF is not 0, else null. */
function argon2idBinding(): Binding | null {
  const b = switchedOn('LIFEBOAT_NATIVE_KDF');
  return b !== null && b.argon2idAvailable() ? b : null;
}

/**
 * The helper, for a fast path the environment variable `name` has not switched off (`0`); null
 * then, or when the helper does not load. Each path's own checks come on top.
 */
function switchedOn(name: string): Binding | null {
  if (process.env[name] === '0') return null;
  try {
    return load();
  } catch {
    return null;
  }
}

/**
 * The native chunker scan, or null without the native helper (or with LIFEBOAT_NATIVE_CDC=0):
 * the chunker then runs its TypeScript scan, which finds the same cuts ≈ 6× slower.
 */
export function nativeCdcScan(): CdcScan | null {
  const b = switchedOn('LIFEBOAT_NATIVE_CDC');
  return b !== null && typeof b.cdcScan === 'function' ? b.cdcScan : null;
}

/**
 * The native blob sealer, or null without the native helper, the system's libzstd.so.1 or
 * OpenSSL in the process (or with LIFEBOAT_NATIVE_BLOB=0): blobs are then sealed in TypeScript.
 */
export function nativeBlob(): NativeBlob | null {
  const b = switchedOn('LIFEBOAT_NATIVE_BLOB');
  if (b === null || typeof b.blobNativeAvailable !== 'function' || !b.blobNativeAvailable()) return null;
  return { seal: b.sealBlob, open: b.openBlob };
}

/** Which of lifeboat's native fast paths this process uses (`lifeboat doctor` reports it). */
export interface NativeStatus {
  /** The helper (build/Release/lifeboat_native.node) loads. */
  helper: boolean;
  /** The chunker's scan runs in C. */
  chunker: boolean;
  /** Blobs are sealed and opened in C (the helper, libzstd.so.1 and OpenSSL are all there). */
  blobs: boolean;
  /** Argon2id runs in the system's libsodium. */
  argon2id: boolean;
}

export function nativeStatus(): NativeStatus {
  if (!nativeAvailable()) return { helper: false, chunker: false, blobs: false, argon2id: false };
  return {
    helper: true,
    chunker: nativeCdcScan() !== null,
    blobs: nativeBlob() !== null,
    argon2id: argon2idBinding() !== null,
  };
}
