/**
 * Packs written to a temporary file as their blobs arrive (the spool) instead of being held in
 * memory, as restic does: a sealed blob's buffer is free again as soon as it is written, and the
 * upload streams the finished file (Storage.putFile), which a local repository simply renames into
 * place. The pack id (SHA-256 of its bytes, format §6) is hashed on the way in.
 *
 * Spool files are named `pack.tmp-<16 hex>`; where the spool is the repository's own directory
 * (a local repository) that name is one readers ignore (format §1). Files a killed process left
 * behind are removed by the next writer once they are an hour old ({@link cleanSpool}).
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { BlobType, SealedBlob } from './blob.js';
import { PackEntries, packTail, type PackEntry } from './pack.js';

const SPOOL_NAME = /^pack\.tmp-[0-9a-f]{16}$/;
/** Spool files untouched for this long belong to no live writer (a pack is written in seconds). */
const STALE_MS = 60 * 60 * 1000;

/** A finished spooled pack, ready for Storage.putFile. */
export interface SpooledPack {
  id: string;
  type: BlobType;
  /** The temporary file holding the whole pack. */
  file: string;
  size: number;
  entries: PackEntry[];
}

/** Turns a failed file operation on the spool into the error the command reports. */
export type SpoolErrorMapper = (e: unknown, file: string) => Error;

/** Collects sealed blobs of one type into a pack file in the spool directory. */
export class SpooledPackWriter extends PackEntries {
  private readonly hash = createHash('sha256');
  private fd: number | null;

  private constructor(
    type: BlobType,
    private readonly encryptionKey: Uint8Array,
    readonly file: string,
    fd: number,
    private readonly mapError: SpoolErrorMapper,
  ) {
    super(type);
    this.fd = fd;
  }

  /** Creates the pack's file in `dir` (and `dir` itself if needed). */
  static create(dir: string, type: BlobType, encryptionKey: Uint8Array, mapError: SpoolErrorMapper): SpooledPackWriter {
    const file = path.join(dir, `pack.tmp-${randomBytes(8).toString('hex')}`);
    let fd: number;
    try {
      try {
        fd = fs.openSync(file, 'wx', 0o600);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
        fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
        fd = fs.openSync(file, 'wx', 0o600);
      }
    } catch (e) {
      throw mapError(e, file);
    }
    return new SpooledPackWriter(type, encryptionKey, file, fd, mapError);
  }

  /** Appends a sealed blob; its buffer is not referenced afterwards. */
  add(blob: SealedBlob): void {
    this.check(blob);
    this.append(blob.sealed);
    this.record(blob);
  }

  /** Writes the header and closes the file: the pack is complete and named. */
  finish(): SpooledPack {
    if (this.entries.length === 0) throw new Error('cannot write an empty pack');
    const tail = packTail(this.encryptionKey, this.entries);
    this.append(tail);
    this.closeFile();
    const id = this.hash.digest('hex');
    return { id, type: this.type, file: this.file, size: this.bytes + tail.length, entries: this.entries.slice() };
  }

  /** Gives the pack up: closes and removes its file. */
  discard(): void {
    try {
      this.closeFile();
    } catch {
      /* removed below either way */
    }
    fs.rmSync(this.file, { force: true });
  }

  private append(buf: Buffer): void {
    if (this.fd === null) throw new Error('the pack is already finished');
    try {
      for (let done = 0; done < buf.length;) done += fs.writeSync(this.fd, buf, done, buf.length - done);
    } catch (e) {
      throw this.mapError(e, this.file);
    }
    this.hash.update(buf);
  }

  private closeFile(): void {
    if (this.fd === null) return;
    const fd = this.fd;
    this.fd = null;
    try {
      fs.closeSync(fd);
    } catch (e) {
      throw this.mapError(e, this.file);
    }
  }
}

/**
 * Removes spool files no live writer can own (untouched for an hour: a pack is written in
 * seconds); returns how many went. Other files in `dir` are left alone.
 */
export function cleanSpool(dir: string, now = Date.now()): number {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return 0;
  }
  let removed = 0;
  for (const name of names) {
    if (!SPOOL_NAME.test(name)) continue;
    const file = path.join(dir, name);
    try {
      if (now - fs.statSync(file).mtimeMs < STALE_MS) continue;
      fs.rmSync(file, { force: true });
      removed++;
    } catch {
      /* gone meanwhile */
    }
  }
  return removed;
}
