import { createHash } from 'node:crypto';
import { open as aeadOpen, seal } from './aead.js';
import { decodePayload, encodePayload } from './compress.js';
import { IntegrityError } from './errors.js';
import { objectAd } from './object-types.js';
import type { BlobType, SealedBlob } from './blob.js';

/** Format §6. */
export const PACK_TARGET_SIZE = 16 * 1024 * 1024;
const HEADER_VERSION = 1;
const ENTRY_SIZE = 1 + 4 + 4 + 32;

/** Bytes a pack of `blobBytes` sealed blobs and `count` entries is estimated to have (header included). */
function packSizeEstimate(blobBytes: number, count: number): number {
  return blobBytes + count * ENTRY_SIZE + 64;
}
const TYPE_CODE: Record<BlobType, number> = { data: 0, tree: 1 };

export interface PackEntry {
  id: Buffer;
  type: BlobType;
  offset: number;
  length: number;
  rawLength: number;
}

export interface FinishedPack {
  id: string;
  type: BlobType;
  bytes: Buffer;
  entries: PackEntry[];
}

/**
 * The entries of a pack being filled (blobs of one type, in order), whatever holds its bytes:
 * PackWriter (memory) or SpooledPackWriter (a file).
 */
export abstract class PackEntries {
  protected readonly entries: PackEntry[] = [];
  protected bytes = 0;

  constructor(readonly type: BlobType) {}

  get size(): number {
    return this.bytes;
  }

  get count(): number {
    return this.entries.length;
  }

  /** Bytes the pack would have after adding a blob of this sealed length (header estimate included). */
  sizeWith(sealedLength: number): number {
    return packSizeEstimate(this.bytes + sealedLength, this.entries.length + 1);
  }

  /** Checks the blob's type; call `record` once its bytes are stored. */
  protected check(blob: SealedBlob): void {
    if (blob.type !== this.type) throw new Error(`cannot add a ${blob.type} blob to a ${this.type} pack`);
  }

  protected record(blob: SealedBlob): void {
    this.entries.push({ id: blob.id, type: blob.type, offset: this.bytes, length: blob.sealed.length, rawLength: blob.rawLength });
    this.bytes += blob.sealed.length;
  }
}

/** Collects sealed blobs of one type and produces a pack: blobs ‖ sealed header ‖ header length. */
export class PackWriter extends PackEntries {
  private readonly parts: Buffer[] = [];

  constructor(
    type: BlobType,
    private readonly encryptionKey: Uint8Array,
  ) {
    super(type);
  }

  add(blob: SealedBlob): void {
    this.check(blob);
    this.parts.push(blob.sealed);
    this.record(blob);
  }

  finish(): FinishedPack {
    const { parts, size, entries } = this.finishParts();
    const bytes = Buffer.concat(parts, size);
    const id = createHash('sha256').update(bytes).digest('hex');
    return { id, type: this.type, bytes, entries };
  }

  /**
   * The pack as pieces (blobs ‖ sealed header ‖ header length), not yet joined or hashed: for
   * callers that do both off the main thread (Repository.packAssembler). Joined in order, the
   * parts are exactly `finish().bytes`.
   */
  finishParts(): { type: BlobType; parts: Buffer[]; size: number; entries: PackEntry[] } {
    if (this.entries.length === 0) throw new Error('cannot write an empty pack');
    const tail = packTail(this.encryptionKey, this.entries);
    const parts = [...this.parts, tail];
    return { type: this.type, parts, size: this.bytes + tail.length, entries: this.entries.slice() };
  }
}

/** What follows a pack's blobs (format §6): sealed_header ‖ header_length. */
export function packTail(encryptionKey: Uint8Array, entries: PackEntry[]): Buffer {
  const sealedHeader = seal(encryptionKey, encodePayload(encodeHeader(entries)), objectAd('pack-header'));
  const tail = Buffer.allocUnsafe(sealedHeader.length + 4);
  sealedHeader.copy(tail, 0);
  tail.writeUInt32LE(sealedHeader.length, sealedHeader.length);
  return tail;
}

export function encodeHeader(entries: PackEntry[]): Buffer {
  const out = Buffer.allocUnsafe(1 + entries.length * ENTRY_SIZE);
  out[0] = HEADER_VERSION;
  let p = 1;
  for (const e of entries) {
    out[p] = TYPE_CODE[e.type];
    out.writeUInt32LE(e.length, p + 1);
    out.writeUInt32LE(e.rawLength, p + 5);
    e.id.copy(out, p + 9);
    p += ENTRY_SIZE;
  }
  return out;
}

export function decodeHeader(name: string, header: Buffer): PackEntry[] {
  if (header.length < 1 || header[0] !== HEADER_VERSION) {
    throw new IntegrityError(name, `unknown pack header version ${header[0] ?? 'none'}`);
  }
  if ((header.length - 1) % ENTRY_SIZE !== 0 || header.length === 1) {
    throw new IntegrityError(name, 'pack header has a malformed length');
  }
  const entries: PackEntry[] = [];
  let offset = 0;
  for (let p = 1; p < header.length; p += ENTRY_SIZE) {
    const code = header[p];
    if (code !== 0 && code !== 1) throw new IntegrityError(name, `unknown blob type ${code} in pack header`);
    const length = header.readUInt32LE(p + 1);
    entries.push({
      id: Buffer.from(header.subarray(p + 9, p + 9 + 32)),
      type: code === 0 ? 'data' : 'tree',
      offset,
      length,
      rawLength: header.readUInt32LE(p + 5),
    });
    offset += length;
  }
  return entries;
}

/** How many trailing bytes to read first; enough for packs of a few thousand blobs. */
export const PACK_TAIL_GUESS = 64 * 1024;

/**
 * Parses a pack's header from its last bytes. `tail` holds the last tail.length bytes of a pack of
 * `packSize` bytes. Returns the entries, or the number of trailing bytes needed if tail is too short.
 */
export function parsePackTail(
  name: string,
  encryptionKey: Uint8Array,
  tail: Buffer,
  packSize: number,
): PackEntry[] | { need: number } {
  if (packSize < 4 || tail.length < 4) throw new IntegrityError(name, 'pack is too short to hold a header');
  const headerLen = tail.readUInt32LE(tail.length - 4);
  if (headerLen + 4 > packSize) throw new IntegrityError(name, 'pack header length exceeds the pack');
  if (headerLen + 4 > tail.length) return { need: headerLen + 4 };
  const sealed = tail.subarray(tail.length - 4 - headerLen, tail.length - 4);
  let header: Buffer;
  try {
    header = decodePayload(aeadOpen(encryptionKey, sealed, objectAd('pack-header')));
  } catch {
    throw new IntegrityError(name, 'pack header fails authentication');
  }
  const entries = decodeHeader(name, header);
  const last = entries[entries.length - 1]!;
  if (last.offset + last.length + headerLen + 4 !== packSize) {
    throw new IntegrityError(name, 'pack size does not match its header');
  }
  return entries;
}

/** Checks that a whole pack's bytes hash to its id (format §6). */
export function verifyPackBytes(name: string, expectedId: string, bytes: Buffer): void {
  const actual = createHash('sha256').update(bytes).digest('hex');
  if (actual !== expectedId) throw new IntegrityError(name, 'content does not match its name (SHA-256)');
}
