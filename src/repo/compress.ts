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

const RAW_HEADER = Buffer.from([ENCODING_RAW]);
const ZSTD_HEADER = Buffer.from([ENCODING_ZSTD]);

/**
 * Compresses `data` and returns the payload as two parts, header (1 byte) and body, so that a
 * caller able to consume parts (aead `seal` accepts an array) doesn't copy raw data at all.
 * The body is `data` itself (not a copy) when stored raw.
 */
export function encodePayloadParts(data: Uint8Array, level: number = DEFAULT_LEVEL): [Buffer, Buffer] {
  const len = data.length;
  const body = Buffer.from(data.buffer, data.byteOffset, len);
  if (len === 0) return [RAW_HEADER, body];
  if (cctx === null) cctx = new binding.CCtx();
  const dst = Buffer.allocUnsafe(binding.compressBound(len));
  const n = cctx.compress(dst, data, level);
  if (n >= len) return [RAW_HEADER, body];
  return [ZSTD_HEADER, dst.subarray(0, n)];
}

/** Compresses `data` (zstd at `level`, raw if that doesn't make it smaller) into one payload buffer. */
export function encodePayload(data: Uint8Array, level: number = DEFAULT_LEVEL): Buffer {
  const len = data.length;
  if (len === 0) return Buffer.from(RAW_HEADER);
  if (cctx === null) cctx = new binding.CCtx();
  const out = Buffer.allocUnsafe(1 + binding.compressBound(len));
  const n = cctx.compress(out.subarray(1), data, level);
  if (n >= len) {
    const raw = Buffer.allocUnsafe(1 + len);
    raw[0] = ENCODING_RAW;
    raw.set(data, 1);
    return raw;
  }
  out[0] = ENCODING_ZSTD;
  return out.subarray(0, 1 + n);
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
