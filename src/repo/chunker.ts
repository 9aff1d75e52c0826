/**
 * Keyed FastCDC content-defined chunking (docs/repository-format.md §5): 32-bit gear hash,
 * normalized chunking level 2, masks on the top bits of the hash.
 *
 * For a chunk starting at s: bytes s .. s+min-1 are not hashed; from s+min on, with h = 0,
 * each byte b does h = (h << 1) + gear[b] (mod 2^32) and the chunk is cut right after it when
 * h & mask == 0, where mask = maskS (avg·4 → top 22 bits for 1 MiB) while the byte lies at
 * chunk offset < avg, and maskL (avg/4 → top 18 bits) at offsets avg .. max-1. A chunk that
 * reaches max bytes is cut there; the last chunk of a stream is whatever remains.
 * Hence every chunk but the last has min+1 .. max bytes.
 *
 * Bit k of h depends only on the last k+1 bytes, so the top bits cover a 32-byte window and
 * boundaries resynchronise within 32 bytes after an edit.
 *
 * The scan runs in C when the native helper is built (native/cdc.c: ≈ 6× faster than V8 here);
 * the TypeScript scan below is the reference it is tested against and the fallback.
 */
import { nativeCdcScan } from '../native/index.js';

export const CHUNKER_MIN = 512 * 1024;
export const CHUNKER_AVG = 1024 * 1024;
export const CHUNKER_MAX = 8 * 1024 * 1024;

export interface ChunkerParams {
  /** Bytes skipped (not hashed) at the start of every chunk. */
  readonly min: number;
  /** Target average; a power of two. Switches maskS → maskL. */
  readonly avg: number;
  /** Hard maximum chunk size. */
  readonly max: number;
}

/** Validated parameters with their masks (as int32). */
export interface ResolvedParams extends ChunkerParams {
  readonly maskS: number;
  readonly maskL: number;
}

/** Top `bits` bits of a 32-bit word set, as int32. */
function topBits(bits: number): number {
  return bits >= 32 ? -1 : ((0xffffffff << (32 - bits)) | 0);
}

export function resolveParams(p: ChunkerParams = DEFAULT_PARAMS): ResolvedParams {
  const { min, avg, max } = p;
  if (!Number.isSafeInteger(min) || !Number.isSafeInteger(avg) || !Number.isSafeInteger(max) ||
      min < 64 || !(min < avg && avg < max) || max > 0x40000000) {
    throw new RangeError(`bad chunker parameters min=${min} avg=${avg} max=${max}: need 64 <= min < avg < max <= 1 GiB`);
  }
  const bits = Math.log2(avg);
  if (!Number.isInteger(bits) || bits < 4 || bits > 28) throw new RangeError(`chunker avg must be a power of two, got ${avg}`);
  return { min, avg, max, maskS: topBits(bits + 2), maskL: topBits(bits - 2) };
}

export const DEFAULT_PARAMS: ChunkerParams = Object.freeze({ min: CHUNKER_MIN, avg: CHUNKER_AVG, max: CHUNKER_MAX });
const DEFAULT_RESOLVED = resolveParams(DEFAULT_PARAMS);

function resolved(p: ChunkerParams | undefined): ResolvedParams {
  if (p === undefined || p === DEFAULT_PARAMS) return DEFAULT_RESOLVED;
  if ('maskS' in p && 'maskL' in p) return p as ResolvedParams;
  return resolveParams(p);
}

/** Hash state left by the last roll()/scan() that found no cut (module-level: no allocation). */
let scanHash = 0;

/**
 * Rolls the gear hash over buf[i..lim) testing `mask` after every byte. Returns the index just
 * past the first byte where h & mask == 0, or -1 (then `scanHash` holds h at `lim`).
 * Unrolled by four: measured 1.5–1.7 GB/s against 1.0–1.2 GB/s for the plain loop (V8 11.3,
 * 256 MiB random, 12 rounds, no deopt slowdown seen in long runs).
 */
function roll(buf: Uint8Array, i: number, lim: number, h: number, gear: Int32Array, mask: number): number {
  const lim4 = lim - 3;
  for (; i < lim4; i += 4) {
    h = ((h << 1) + gear[buf[i]!]!) | 0;
    if ((h & mask) === 0) return i + 1;
    h = ((h << 1) + gear[buf[i + 1]!]!) | 0;
    if ((h & mask) === 0) return i + 2;
    h = ((h << 1) + gear[buf[i + 2]!]!) | 0;
    if ((h & mask) === 0) return i + 3;
    h = ((h << 1) + gear[buf[i + 3]!]!) | 0;
    if ((h & mask) === 0) return i + 4;
  }
  for (; i < lim; i++) {
    h = ((h << 1) + gear[buf[i]!]!) | 0;
    if ((h & mask) === 0) return i + 1;
  }
  scanHash = h;
  return -1;
}

/** The native scan, when available; its hash-out slot. */
const nativeScan = nativeCdcScan();
const nativeState = new Int32Array(1);

/**
 * Scans buf[i..end). `base` is the index in `buf` where the current chunk starts (negative
 * when earlier bytes of the chunk live in other buffers) and `h` the hash so far. Returns the
 * index just past the cut, or -1 when no cut lies in buf[..end) (then `scanHash` holds the
 * hash to resume with at `end`).
 */
function scan(buf: Uint8Array, i: number, end: number, base: number, h: number,
              gear: Int32Array, min: number, avg: number, max: number, maskS: number, maskL: number): number {
  if (nativeScan === null) return scanJs(buf, i, end, base, h, gear, min, avg, max, maskS, maskL);
  const cut = nativeScan(buf, i, end, base, h, gear, min, avg, max, maskS, maskL, nativeState);
  if (cut < 0) scanHash = nativeState[0]!;
  return cut;
}

/** {@link scan} in TypeScript: the reference for the native scan (see scanReference). */
function scanJs(buf: Uint8Array, i: number, end: number, base: number, h: number,
                       gear: Int32Array, min: number, avg: number, max: number, maskS: number, maskL: number): number {
  const skipTo = base + min;
  if (i < skipTo) i = skipTo;
  let lim = base + avg;
  if (lim > end) lim = end;
  if (i < lim) {
    const cut = roll(buf, i, lim, h, gear, maskS);
    if (cut >= 0) return cut;
    h = scanHash;
    i = lim;
  }
  const maxAt = base + max;
  lim = maxAt > end ? end : maxAt;
  if (i < lim) {
    const cut = roll(buf, i, lim, h, gear, maskL);
    if (cut >= 0) return cut;
    h = scanHash;
    i = lim;
  }
  if (i === maxAt) return i;
  scanHash = h;
  return -1;
}

/**
 * Length of the next chunk of buf[start..end). When `eof` is false (more data follows `end`),
 * returns 0 if the boundary can't be known yet. With `eof` true the remainder is always a chunk
 * (0 only when start === end).
 */
export function findCut(buf: Uint8Array, start: number, end: number, gear: Int32Array,
                        params?: ChunkerParams, eof = true): number {
  if (start < 0 || end > buf.length || start > end) throw new RangeError(`bad range [${start}, ${end}) of ${buf.length}`);
  if (gear.length !== 256) throw new RangeError('gear table must have 256 entries');
  const p = resolved(params);
  const cut = scan(buf, start, end, start, 0, gear, p.min, p.avg, p.max, p.maskS, p.maskL);
  if (cut >= 0) return cut - start;
  return eof ? end - start : 0;
}

/** Coalesce pending pieces once there are this many (bounds work for tiny pushes). */
const MAX_PENDING_PARTS = 256;
const SMALL_PART = 16 * 1024;

/**
 * Streaming chunker. Boundaries don't depend on how the input is split into pushes.
 *
 * Chunks that lie inside one pushed buffer are returned as views of it (no copy); only chunks
 * spanning pushes are copied. The chunker therefore keeps and returns views of pushed buffers:
 * don't modify a buffer after pushing it — unless `detach()` was called after the push, which
 * copies the (unfinished) tail it keeps, so that a reader can fill the same buffer again.
 */
export class Chunker {
  private readonly gear: Int32Array;
  private readonly min: number;
  private readonly avg: number;
  private readonly max: number;
  private readonly maskS: number;
  private readonly maskL: number;
  /** Unemitted bytes of the current chunk from earlier pushes, all already hashed. */
  private parts: Buffer[] = [];
  /** Pending parts that are the chunker's own copies (not views of a caller's buffer). */
  private readonly owned = new WeakSet<Buffer>();
  private pendingLen = 0;
  /** Gear hash after the last pending byte (0 while within the first min bytes). */
  private h = 0;

  constructor(gear: Int32Array, params?: ChunkerParams) {
    if (gear.length !== 256) throw new RangeError('gear table must have 256 entries');
    const p = resolved(params);
    this.gear = gear;
    this.min = p.min;
    this.avg = p.avg;
    this.max = p.max;
    this.maskS = p.maskS;
    this.maskL = p.maskL;
  }

  /** Feeds `data`; returns the chunks completed by it (possibly none). */
  push(data: Buffer): Buffer[] {
    const out: Buffer[] = [];
    const len = data.length;
    if (len === 0) return out;
    const gear = this.gear;
    const min = this.min, avg = this.avg, max = this.max, maskS = this.maskS, maskL = this.maskL;
    let base = -this.pendingLen;
    let h = this.h;
    let start = 0;
    for (;;) {
      const cut = scan(data, start, len, base, h, gear, min, avg, max, maskS, maskL);
      if (cut < 0) {
        h = scanHash;
        break;
      }
      if (this.pendingLen === 0) {
        out.push(data.subarray(start, cut));
      } else {
        this.parts.push(data.subarray(0, cut));
        out.push(Buffer.concat(this.parts, this.pendingLen + cut));
        this.parts = [];
        this.pendingLen = 0;
      }
      start = cut;
      base = cut;
      h = 0;
      if (start === len) break;
    }
    if (start < len) {
      this.parts.push(start === 0 ? data : data.subarray(start));
      this.pendingLen += len - start;
      if (this.parts.length > MAX_PENDING_PARTS) this.mergeSmallParts();
    }
    this.h = h;
    return out;
  }

  /**
   * Many tiny pushes: merge the trailing run of small parts into one. Merged parts stop being
   * merged once they reach SMALL_PART bytes, so copying stays linear in the input.
   */
  private mergeSmallParts(): void {
    const parts = this.parts;
    let from = parts.length;
    while (from > 0 && (parts[from - 1] as Buffer).length < SMALL_PART) from--;
    if (parts.length - from >= 2) {
      const merged = Buffer.concat(parts.splice(from));
      this.owned.add(merged);
      parts.push(merged);
    }
  }

  /**
   * Copies the pending bytes that are still views of pushed buffers: afterwards the chunker holds
   * no reference to any buffer pushed so far (chunks it returned are the caller's business), and
   * the caller may overwrite them. Each byte is copied at most once.
   */
  detach(): void {
    for (let i = 0; i < this.parts.length; i++) {
      const p = this.parts[i]!;
      if (this.owned.has(p)) continue;
      const copy = Buffer.allocUnsafe(p.length);
      p.copy(copy);
      this.owned.add(copy);
      this.parts[i] = copy;
    }
  }

  /** Ends the stream: returns the last chunk (if any bytes remain) and resets for reuse. */
  finish(): Buffer[] {
    if (this.pendingLen === 0) return [];
    const parts = this.parts;
    const last = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, this.pendingLen);
    this.parts = [];
    this.pendingLen = 0;
    this.h = 0;
    return [last];
  }
}

/**
 * Warm-up at module load (≈ 1 ms): runs roll/scan/Chunker.push over 32 KiB of pseudo-random
 * bytes with tiny parameters (min 64, avg 256, max 1024), in pieces of varied sizes, so that
 * every path of the hot loop — each of the four unrolled cut exits, the tail loop with and
 * without a cut, both masks, the max cut, chunks within one push and spanning pushes — has run
 * in the interpreter with realistic values (full 32-bit gear words, hashes outside the Smi
 * range) before TurboFan compiles it. Without this the first long scans are compiled with empty
 * feedback slots for the exits not taken yet, and each exit taken later is an "Insufficient
 * type feedback" deopt; bench/chunker.ts showed several in the first few hundred MiB (roll
 * de-optimised again at every avg boundary and piece end until V8 gave up on that code) and
 * the chunker at about half speed meanwhile. Output is discarded; no state is kept.
 * Exercised with Buffers, the type the write path pushes (a plain Uint8Array given to findCut
 * works too, merely with a polymorphic load).
 */
function warmUp(): void {
  let x = 0x2545f491;
  const next = (): number => {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    return x | 0;
  };
  const gear = new Int32Array(256);
  for (let i = 0; i < 256; i++) gear[i] = next();
  const params = resolveParams({ min: 64, avg: 256, max: 1024 });
  const data = Buffer.allocUnsafe(32 * 1024);
  for (let i = 0; i < data.length; i += 4) data.writeInt32LE(next(), i);
  // runs of one byte value never cut for most values: they reach max (the forced cut)
  data.fill(0x55, 8192, 8192 + 3000);
  const chunker = new Chunker(gear, params);
  for (let pos = 0; pos < data.length;) {
    const n = Math.min(data.length - pos, 1 + ((next() >>> 0) % 700));
    chunker.push(data.subarray(pos, pos + n));
    pos += n;
  }
  chunker.finish();
  for (let start = 0; start + 2048 <= data.length; start += 997) findCut(data, start, start + 2048, gear, params, false);
  // each exit of roll() on its own: with mask 1 and bit 0 of every gear word equal to bit 0 of
  // its byte, the hash's bit 0 is that of the last byte, so the first even byte is the cut
  for (let i = 0; i < 256; i++) gear[i] = (gear[i]! & ~1) | (i & 1);
  const probe = Buffer.alloc(16, 1);
  for (let round = 0; round < 4; round++) {
    for (let k = 0; k < 8; k++) {
      probe.fill(1);
      probe[k] = 0;
      roll(probe, 0, 8, next(), gear, 1);       // cut at k+1: an unrolled exit, or the tail
      roll(probe, 0, 8 - (k & 3), next(), gear, 1);
    }
    probe.fill(1);
    roll(probe, 0, 7, next(), gear, 1);         // no cut: main loop and tail run out
  }
  scanHash = 0;
}

if (nativeScan === null) warmUp();

/**
 * {@link scanJs}'s result as the native scan reports it (cut, and the hash when there is none),
 * for the tests that compare the two.
 */
export function scanReference(buf: Uint8Array, i: number, end: number, base: number, h: number,
                              gear: Int32Array, p: ResolvedParams): { cut: number; h: number } {
  const cut = scanJs(buf, i, end, base, h, gear, p.min, p.avg, p.max, p.maskS, p.maskL);
  return { cut, h: cut < 0 ? scanHash : 0 };
}

/** True when the chunker's scan runs in C. */
export const chunkerIsNative = nativeScan !== null;

/** Chunks an async stream of buffers (e.g. a fs.ReadStream or a dump's stdout). */
export async function* chunkStream(readable: AsyncIterable<Buffer>, gear: Int32Array,
                                   params?: ChunkerParams): AsyncGenerator<Buffer> {
  const chunker = new Chunker(gear, params);
  for await (const data of readable) {
    for (const chunk of chunker.push(data)) yield chunk;
  }
  for (const chunk of chunker.finish()) yield chunk;
}
