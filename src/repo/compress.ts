/**
 * Payload encoding (docs/repository-format.md §4): 1 encoding byte ‖ body.
 *   0x00 raw: body is the data itself
 *   0x01 zstd: body is exactly one zstd frame that decompresses to the data
 *
 * Uses zstd-napi's low-level binding with one reusable compression and decompression context
 * per thread, compressing straight into the output buffer after the flag byte (no copy of
 * the compressed frame, no per-call context allocation).
 */
import binding from 'zstd-napi/binding.js';
import type { CCtx, DCtx } from 'zstd-napi/binding.js';

export const ENCODING_RAW = 0x00;
export const ENCODING_ZSTD = 0x01;
export const DEFAULT_LEVEL = 3;
/** Largest size a payload may decompress to unless the caller says otherwise. */
export const DEFAULT_MAX_SIZE = 64 * 1024 * 1024;

/** A payload that can't be decoded: unknown encoding, corrupt frame, or too large. */
export class PayloadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PayloadError';
  }
}

let cctx: CCtx | null = null;
let dctx: DCtx | null = null;

/**
 * Incompressible-data pre-check. zstd-3 spends ~0.25–0.6 ms per MiB of random data before
 * giving up; compressing PRECHECK_SAMPLES samples of PRECHECK_SAMPLE bytes spread evenly over
 * the input (first and last included) at level 1 costs ~0.04 ms per MiB. When every sample
 * stays above PRECHECK_RATIO the data is stored raw without running zstd on all of it.
 * Measured here on 1 MiB blobs (shared, noisy machine; best of 3): random 1.7–3.8 GB/s for
 * full zstd-3 → ~28 GB/s with the pre-check; SQL text 431 → 408–453 MB/s (within noise) at an
 * unchanged ratio; 64 KiB stripes of text/random unchanged ratio (0.583); 900 KiB random +
 * 124 KiB text unchanged ratio (0.900), where a single 64 KiB prefix sample would have stored
 * it raw. Limitation: compressible regions that miss all four samples (under ~1/4 of the blob,
 * between sample points), or repeats of random data within one blob, are stored raw.
 */
const PRECHECK_MIN_INPUT = 128 * 1024;
const PRECHECK_SAMPLES = 4;
const PRECHECK_SAMPLE = 16 * 1024;
const PRECHECK_RATIO = 0.97;
let precheckScratch: Buffer | null = null;
/** Output of transient encodePayloadParts calls. */
let compressScratch: Buffer | null = null;

/** True when the samples say `data` won't compress (so it should be stored raw). */
export function looksIncompressible(data: Uint8Array): boolean {
  const len = data.length;
  if (len < PRECHECK_MIN_INPUT) return false;
  if (cctx === null) cctx = new binding.CCtx();
  if (precheckScratch === null) precheckScratch = Buffer.allocUnsafe(binding.compressBound(PRECHECK_SAMPLE));
  const step = Math.floor((len - PRECHECK_SAMPLE) / (PRECHECK_SAMPLES - 1));
  const limit = PRECHECK_RATIO * PRECHECK_SAMPLE;
  for (let k = 0; k < PRECHECK_SAMPLES; k++) {
    const off = k * step;
    if (cctx.compress(precheckScratch, data.subarray(off, off + PRECHECK_SAMPLE), 1) <= limit) return false;
  }
  return true;
}

const RAW_HEADER = Buffer.from([ENCODING_RAW]);
const ZSTD_HEADER = Buffer.from([ENCODING_ZSTD]);

/**
 * Compresses `data` and returns the payload as two parts, header (1 byte) and body, so that a
 * caller able to consume parts (aead `seal` accepts an array) doesn't copy raw data at all.
 * The body is `data` itself (not a copy) when stored raw.
 *
 * With `transient`, a compressed body is written into this thread's scratch buffer (reused,
 * grown to the largest compressBound seen) instead of a fresh one: no allocation and no page
 * faults per call, but the body is only valid until the next transient call in this thread —
 * for callers that consume it at once (sealBlob encrypts it into its own output).
 */
export function encodePayloadParts(data: Uint8Array, level: number = DEFAULT_LEVEL, transient = false): [Buffer, Buffer] {
  const len = data.length;
  const body = Buffer.from(data.buffer, data.byteOffset, len);
  if (len === 0 || looksIncompressible(data)) return [RAW_HEADER, body];
  if (cctx === null) cctx = new binding.CCtx();
  const bound = binding.compressBound(len);
  let dst: Buffer;
  if (transient) {
    if (compressScratch === null || compressScratch.length < bound) compressScratch = Buffer.allocUnsafe(bound);
    dst = compressScratch;
  } else {
    dst = Buffer.allocUnsafe(bound);
  }
  const n = cctx.compress(dst, data, level);
  if (n >= len) return [RAW_HEADER, body];
  return [ZSTD_HEADER, dst.subarray(0, n)];
}

/** Compresses `data` (zstd at `level`, raw if that doesn't make it smaller) into one payload buffer. */
export function encodePayload(data: Uint8Array, level: number = DEFAULT_LEVEL): Buffer {
  const len = data.length;
  if (len === 0) return Buffer.from(RAW_HEADER);
  if (!looksIncompressible(data)) {
    if (cctx === null) cctx = new binding.CCtx();
    const out = Buffer.allocUnsafe(1 + binding.compressBound(len));
    const n = cctx.compress(out.subarray(1), data, level);
    if (n < len) {
      out[0] = ENCODING_ZSTD;
      return out.subarray(0, 1 + n);
    }
  }
  const raw = Buffer.allocUnsafe(1 + len);
  raw[0] = ENCODING_RAW;
  raw.set(data, 1);
  return raw;
}

function zstdMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Decodes a payload. Raw bodies are returned without copying (a view into `buf`). Throws
 * {@link PayloadError} on an empty payload, unknown encoding, corrupt or trailing zstd data,
 * or a frame that would decompress to more than `maxSize` bytes.
 */
export function decodePayload(buf: Uint8Array, maxSize: number = DEFAULT_MAX_SIZE): Buffer {
  if (buf.length === 0) throw new PayloadError('empty payload: missing encoding byte');
  const encoding = buf[0];
  const body = Buffer.from(buf.buffer, buf.byteOffset + 1, buf.length - 1);
  if (encoding === ENCODING_RAW) return body;
  if (encoding !== ENCODING_ZSTD) {
    throw new PayloadError(`unknown payload encoding 0x${(encoding ?? 0).toString(16).padStart(2, '0')}`);
  }
  let frameLen: number;
  let contentSize: number | null;
  try {
    frameLen = binding.findFrameCompressedSize(body);
    contentSize = binding.getFrameContentSize(body);
  } catch (err) {
    throw new PayloadError(`corrupt zstd payload: ${zstdMessage(err)}`);
  }
  if (frameLen !== body.length) {
    throw new PayloadError(`corrupt zstd payload: ${body.length - frameLen} bytes after the frame`);
  }
  if (dctx === null) dctx = new binding.DCtx();
  if (contentSize !== null) {
    if (contentSize > maxSize) {
      throw new PayloadError(`zstd payload declares ${contentSize} bytes, more than the limit of ${maxSize}`);
    }
    const out = Buffer.allocUnsafe(contentSize);
    let n: number;
    try {
      n = dctx.decompress(out, body);
    } catch (err) {
      throw new PayloadError(`corrupt zstd payload: ${zstdMessage(err)}`);
    }
    if (n !== contentSize) throw new PayloadError(`corrupt zstd payload: ${n} bytes decoded, header says ${contentSize}`);
    return out;
  }
  return decompressUnknownSize(dctx, body, maxSize);
}

/** Frames without a content size (streaming writers): decode in pieces, bounded by maxSize. */
function decompressUnknownSize(ctx: DCtx, body: Buffer, maxSize: number): Buffer {
  const pieces: Buffer[] = [];
  let total = 0;
  let input = body;
  ctx.reset(binding.ResetDirective.sessionOnly);
  try {
    for (;;) {
      const room = Math.min(Math.max(binding.dStreamOutSize(), input.length * 4), maxSize + 1 - total);
      const piece = Buffer.allocUnsafe(Math.max(room, 1));
      const [remaining, produced, consumed] = ctx.decompressStream(piece, input);
      input = input.subarray(consumed);
      if (produced > 0) {
        pieces.push(piece.subarray(0, produced));
        total += produced;
        if (total > maxSize) throw new PayloadError(`zstd payload decompresses to more than the limit of ${maxSize} bytes`);
      }
      if (remaining === 0) break;
      if (input.length === 0 && produced === 0) throw new PayloadError('corrupt zstd payload: truncated frame');
    }
  } catch (err) {
    ctx.reset(binding.ResetDirective.sessionOnly);
    if (err instanceof PayloadError) throw err;
    throw new PayloadError(`corrupt zstd payload: ${zstdMessage(err)}`);
  }
  return pieces.length === 1 ? (pieces[0] as Buffer) : Buffer.concat(pieces, total);
}

/**
 * Decodes a payload into `out`, which must be exactly the plaintext's length (the index
 * records it): a raw body is copied, a zstd frame decompressed straight into it. Throws
 * {@link PayloadError} like {@link decodePayload}, and when the data is not exactly
 * `out.length` bytes long.
 */
export function decodePayloadInto(buf: Uint8Array, out: Uint8Array): void {
  if (buf.length === 0) throw new PayloadError('empty payload: missing encoding byte');
  const encoding = buf[0];
  const body = Buffer.from(buf.buffer, buf.byteOffset + 1, buf.length - 1);
  if (encoding === ENCODING_RAW) {
    if (body.length !== out.length) throw new PayloadError(`raw payload holds ${body.length} bytes, expected ${out.length}`);
    out.set(body);
    return;
  }
  if (encoding !== ENCODING_ZSTD) {
    throw new PayloadError(`unknown payload encoding 0x${(encoding ?? 0).toString(16).padStart(2, '0')}`);
  }
  let frameLen: number;
  let contentSize: number | null;
  try {
    frameLen = binding.findFrameCompressedSize(body);
    contentSize = binding.getFrameContentSize(body);
  } catch (err) {
    throw new PayloadError(`corrupt zstd payload: ${zstdMessage(err)}`);
  }
  if (frameLen !== body.length) {
    throw new PayloadError(`corrupt zstd payload: ${body.length - frameLen} bytes after the frame`);
  }
  if (contentSize === null) {
    const data = decodePayload(buf, out.length);
    if (data.length !== out.length) throw new PayloadError(`payload decodes to ${data.length} bytes, expected ${out.length}`);
    out.set(data);
    return;
  }
  if (contentSize !== out.length) throw new PayloadError(`zstd payload declares ${contentSize} bytes, expected ${out.length}`);
  if (dctx === null) dctx = new binding.DCtx();
  let n: number;
  try {
    n = dctx.decompress(out, body);
  } catch (err) {
    throw new PayloadError(`corrupt zstd payload: ${zstdMessage(err)}`);
  }
  if (n !== contentSize) throw new PayloadError(`corrupt zstd payload: ${n} bytes decoded, header says ${contentSize}`);
}
