/**
 * Throughput of the repo/ primitives on this machine (one thread, 1 MiB buffers, 256 MiB per
 * measurement, best of 3 runs). MB = 10^6 bytes.
 *
 *   npx tsc -p tsconfig.json --outDir .tmp/benchbuild && node .tmp/benchbuild/bench/primitives.js [--kdf]
 */
import { createCipheriv, randomBytes, randomFillSync } from 'node:crypto';
import binding from 'zstd-napi/binding.js';
import { compress as zstdCompress, Compressor } from 'zstd-napi';
import { open, seal, sealParts } from '../src/repo/aead.js';
import { Chunker, findCut } from '../src/repo/chunker.js';
import { decodePayload, encodePayload, encodePayloadParts } from '../src/repo/compress.js';
import { deriveKeyFromPassword } from '../src/repo/kdf.js';
import { blobId, deriveSubkeys, gearTable } from '../src/repo/keys-derive.js';
import { getSodium } from '../src/repo/sodium.js';

const MiB = 1024 * 1024;
const TOTAL = 256 * MiB;

function sqlText(bytes: number): Buffer {
  const out = Buffer.allocUnsafe(bytes);
  let pos = 0;
  let x = 12345;
  const names = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace', 'heidi'];
  while (pos < bytes) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    const id = x % 10_000_000;
    const name = names[x % names.length] as string;
    const line = `INSERT INTO public.orders (id, customer, email, amount, created_at) VALUES (${id}, '${name}', '${name}${x % 977}@example.org', ${(x % 100000) / 100}, '2026-11-${10 + (x % 18)} 1${x % 10}:2${x % 10}:0${x % 10}+00');\n`;
    pos += out.write(line, pos);
  }
  return out;
}

function measure(label: string, bytesPerRun: number, fn: () => void): number {
  let best = Infinity;
  for (let r = 0; r < 3; r++) {
    const t0 = process.hrtime.bigint();
    fn();
    const dt = Number(process.hrtime.bigint() - t0) / 1e9;
    if (dt < best) best = dt;
  }
  const mbps = bytesPerRun / best / 1e6;
  console.log(`${label.padEnd(58)} ${mbps.toFixed(0).padStart(6)} MB/s`);
  return mbps;
}

function pieces(data: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < data.length; i += size) out.push(data.subarray(i, Math.min(i + size, data.length)));
  return out;
}

async function main(): Promise<void> {
  const sodium = await getSodium();
  const master = randomBytes(32);
  const keys = deriveSubkeys(master);
  const gear = gearTable(keys.chunker);
  const ad = randomBytes(32);

  const random = randomBytes(TOTAL);
  const text = sqlText(TOTAL);
  const rnd1 = pieces(random, MiB);
  const txt1 = pieces(text, MiB);
  const key = keys.encryption;

  console.log(`node ${process.version}, ${TOTAL / MiB} MiB per run, best of 3\n`);

  // --- AEAD ---
  measure('aead seal (update + set into one buffer)', TOTAL, () => { for (const b of rnd1) seal(key, b, ad); });
  measure('aead seal, variant Buffer.concat([nonce, update, tag])', TOTAL, () => {
    for (const b of rnd1) {
      const nonce = randomFillSync(Buffer.allocUnsafe(24));
      const sub = sodium.crypto_core_hchacha20(nonce.subarray(0, 16), key, null);
      const iv = Buffer.alloc(12); iv.set(nonce.subarray(16), 4);
      const c = createCipheriv('chacha20-poly1305', sub, iv, { authTagLength: 16 });
      c.setAAD(ad, { plaintextLength: b.length });
      const ct = c.update(b); c.final();
      Buffer.concat([nonce, ct, c.getAuthTag()]);
    }
  });
  measure('aead sealParts (no join)', TOTAL, () => { for (const b of rnd1) sealParts(key, b, ad); });
  const sealed = rnd1.map((b) => seal(key, b, ad));
  measure('aead open', TOTAL, () => { for (const s of sealed) open(key, s, ad); });
  const nonce = randomBytes(24);
  measure('libsodium xchacha20poly1305_ietf_encrypt (WASM), reference', TOTAL, () => {
    for (const b of rnd1) sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(b, ad, null, nonce, key);
  });
  {
    const n = 200_000;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) sodium.crypto_core_hchacha20(nonce.subarray(0, 16), key, null);
    const us = Number(process.hrtime.bigint() - t0) / 1e3 / n;
    console.log(`${'hchacha20 via libsodium, per call'.padEnd(58)} ${us.toFixed(2).padStart(6)} µs`);
    const small = randomBytes(300);
    const t1 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) seal(key, small, ad);
    const us2 = Number(process.hrtime.bigint() - t1) / 1e3 / n;
    console.log(`${'aead seal of 300 bytes, per call'.padEnd(58)} ${us2.toFixed(2).padStart(6)} µs`);
  }

  // --- blob id ---
  measure('blobId HMAC-SHA-256 (node:crypto)', TOTAL, () => { for (const b of rnd1) blobId(keys.blobId, b); });

  // --- zstd ---
  const cmp = new Compressor();
  cmp.setParameters({ compressionLevel: 3 });
  let encText = 0;
  measure('zstd-3 text: encodePayload (binding CCtx, reused)', TOTAL, () => { encText = 0; for (const b of txt1) encText += encodePayload(b).length; });
  console.log(`${'  ratio on text'.padEnd(58)} ${(TOTAL / encText).toFixed(2).padStart(6)}`);
  measure('zstd-3 text: zstd-napi compress() one-shot', TOTAL, () => { for (const b of txt1) zstdCompress(b, { compressionLevel: 3 }); });
  measure('zstd-3 text: zstd-napi Compressor.compress()', TOTAL, () => { for (const b of txt1) cmp.compress(b); });
  measure('zstd-1 text: encodePayload', TOTAL, () => { for (const b of txt1) encodePayload(b, 1); });
  measure('zstd-3 random: encodePayload (→ raw copy)', TOTAL, () => { for (const b of rnd1) encodePayload(b); });
  measure('zstd-3 random: encodePayloadParts (→ raw, no copy)', TOTAL, () => { for (const b of rnd1) encodePayloadParts(b); });
  measure('zstd-3 random: zstd-napi compress() one-shot', TOTAL, () => { for (const b of rnd1) zstdCompress(b, { compressionLevel: 3 }); });
  {
    // Pre-check idea: compress the first 64 KiB at level 1 and store raw if ratio > 0.97.
    const cctx = new binding.CCtx();
    const scratch = Buffer.allocUnsafe(binding.compressBound(64 * 1024));
    const precheck = (b: Buffer): boolean => cctx.compress(scratch, b.subarray(0, 64 * 1024), 1) > 0.97 * Math.min(b.length, 64 * 1024);
    measure('  pre-check only (64 KiB at level 1), random', TOTAL, () => { for (const b of rnd1) precheck(b); });
    measure('  pre-check only (64 KiB at level 1), text', TOTAL, () => { for (const b of txt1) precheck(b); });
  }
  const encT = txt1.map((b) => encodePayload(b));
  const encR = rnd1.map((b) => encodePayload(b));
  measure('decodePayload text (zstd)', TOTAL, () => { for (const e of encT) decodePayload(e); });
  measure('decodePayload random (raw view)', TOTAL, () => { for (const e of encR) decodePayload(e); });

  // --- chunker ---
  let chunks = 0;
  measure('chunker findCut over one 256 MiB buffer (random)', TOTAL, () => {
    chunks = 0;
    for (let s = 0; s < random.length;) { s += findCut(random, s, random.length, gear); chunks++; }
  });
  console.log(`${'  chunks, mean size'.padEnd(58)} ${chunks} × ${(TOTAL / chunks / MiB).toFixed(2)} MiB`);
  measure('chunker findCut over text', TOTAL, () => { for (let s = 0; s < text.length;) s += findCut(text, s, text.length, gear); });
  const rnd64k = pieces(random, 64 * 1024);
  measure('Chunker.push, 64 KiB pushes (random)', TOTAL, () => {
    const c = new Chunker(gear);
    for (const b of rnd64k) c.push(b);
    c.finish();
  });
  measure('Chunker.push, 1 MiB pushes (random)', TOTAL, () => {
    const c = new Chunker(gear);
    for (const b of rnd1) c.push(b);
    c.finish();
  });

  // --- pipeline estimate, one thread ---
  const pipeline = (data: Buffer): void => {
    const c = new Chunker(gear);
    const handle = (ch: Buffer): void => {
      const id = blobId(keys.blobId, ch);
      seal(key, encodePayloadParts(ch), id);
    };
    for (const b of pieces(data, 64 * 1024)) for (const ch of c.push(b)) handle(ch);
    for (const ch of c.finish()) handle(ch);
  };
  measure('pipeline chunk → id → zstd-3 → seal, text', TOTAL, () => pipeline(text));
  measure('pipeline chunk → id → zstd-3 → seal, random', TOTAL, () => pipeline(random));

  if (process.argv.includes('--kdf')) {
    const salt = randomBytes(16);
    for (const opslimit of [2, 4, 8, 10]) {
      const times: number[] = [];
      for (let r = 0; r < 5; r++) {
        const t0 = process.hrtime.bigint();
        await deriveKeyFromPassword('benchmark', { opslimit, memlimit: 64 * MiB, salt });
        times.push(Number(process.hrtime.bigint() - t0) / 1e9);
      }
      times.sort((a, b) => a - b);
      console.log(`argon2id 64 MiB opslimit ${opslimit}: min ${times[0]!.toFixed(3)} s, median ${times[2]!.toFixed(3)} s`);
    }
  }
}

await main();
