/**
 * Password → key-encryption key, with Argon2id v1.3 (libsodium crypto_pwhash, ALG_ARGON2ID13,
 * parallelism 1). Parameters are stored in each key file (docs/repository-format.md §2.2).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { nativeArgon2id } from '../native/index.js';

export const KDF_ALGORITHM = 'argon2id13';
export const KDF_KEY_BYTES = 32;
export const KDF_SALT_BYTES = 16;

/**
 * libsodium's bounds for Argon2id (crypto_pwhash_argon2id_*_MIN/MAX). Spelled out because the
 * WASM build reports OPSLIMIT_MAX and MEMLIMIT_MAX as negative numbers (unsigned values
 * converted through int32), so its constants can't be compared with.
 */
export const OPSLIMIT_MIN = 1;
export const OPSLIMIT_MAX = 0xffffffff;
export const MEMLIMIT_MIN = 8192;
/** Our own ceiling, far below libsodium's (which is bounded by the 32-bit WASM address space). */
export const MEMLIMIT_MAX = 1024 * 1024 * 1024;

/**
 * Defaults for new key files: RFC 9106's second recommended setting (§4, for when 2 GiB is too
 * much memory): Argon2id, t = 3 passes over m = 64 MiB — a small VM can spare 64 MiB, and every
 * lifeboat command pays one derivation (≈ 0.09 s here with the system's libsodium, 0.17 s in
 * WASM; 8 passes, the earlier default, cost ≈ 0.5 s in WASM on every command for a margin the
 * RFC does not ask for). libsodium runs one lane
 * (p = 1; the RFC's p = 4 only spreads the same work over threads). Users who want more pass
 * `init --kdf-iterations N` (or `key add`). Measured on this project's 2-vCPU EPYC Zen 4 VM
 * (Node 20.20, libsodium-wrappers-sumo 0.8.4, WASM), 5 runs each at memlimit 64 MiB
 * (min / median): opslimit 2 → 0.105 / 0.107 s, 4 → 0.23 / 0.23 s, 8 → 0.46 / 0.58 s,
 * 9 → 0.50 / 0.52 s, 10 → 0.60 / 0.63 s — about 57 ms per pass, ±20 % noise on these shared
 * machines. Re-measure with bench/primitives.ts (--kdf).
 */
export const DEFAULT_OPSLIMIT = 3;
export const DEFAULT_MEMLIMIT = 64 * 1024 * 1024;

export interface KdfParams {
  opslimit: number;
  memlimit: number;
  salt: Uint8Array;
}

export function defaultKdfParams(): KdfParams {
  return { opslimit: DEFAULT_OPSLIMIT, memlimit: DEFAULT_MEMLIMIT, salt: randomBytes(KDF_SALT_BYTES) };
}

function isUint(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

/**
 * Checks parameters read from a (possibly hostile or corrupt) key file. Throws an Error naming
 * the bad field; returns the parameters unchanged otherwise.
 */
export function validateKdfParams(params: KdfParams): KdfParams {
  const { opslimit, memlimit, salt } = params;
  if (!isUint(opslimit) || opslimit < OPSLIMIT_MIN || opslimit > OPSLIMIT_MAX) {
    throw new Error(`invalid KDF parameter opslimit=${String(opslimit)}: must be an integer in [${OPSLIMIT_MIN}, ${OPSLIMIT_MAX}]`);
  }
  if (!isUint(memlimit) || memlimit < MEMLIMIT_MIN || memlimit > MEMLIMIT_MAX) {
    throw new Error(`invalid KDF parameter memlimit=${String(memlimit)}: must be an integer in [${MEMLIMIT_MIN}, ${MEMLIMIT_MAX}] bytes`);
  }
  if (!(salt instanceof Uint8Array) || salt.length !== KDF_SALT_BYTES) {
    throw new Error(`invalid KDF parameter salt: must be ${KDF_SALT_BYTES} bytes`);
  }
  return params;
}

/**
 * The worker that runs Argon2id: CommonJS (an eval'd worker), given the path of libsodium's
 * CommonJS build. It derives one key, posts it, and exits — with it goes its isolate and the
 * WASM linear memory that Argon2id grew to `memlimit` (WebAssembly memory never shrinks, so in
 * the main thread those 64 MiB would stay resident for the whole command and add to its peak).
 */
const KDF_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const sodium = require(workerData.lib);
sodium.ready.then(() => {
  const pw = Buffer.from(workerData.password, 'utf8');
  try {
    const key = sodium.crypto_pwhash(workerData.keyBytes, pw, workerData.salt, workerData.opslimit, workerData.memlimit,
      sodium.crypto_pwhash_ALG_ARGON2ID13);
    parentPort.postMessage({ key });
  } catch (e) {
    parentPort.postMessage({ error: e instanceof Error ? e.message : String(e) });
  } finally {
    pw.fill(0);
  }
}, (e) => parentPort.postMessage({ error: 'libsodium failed to load: ' + (e instanceof Error ? e.message : String(e)) }));
`;

function runKdfWorker(password: string, params: KdfParams, background = false, onWorker?: (w: Worker) => void): Promise<Uint8Array> {
  const lib = createRequire(import.meta.url).resolve('libsodium-wrappers-sumo');
  return new Promise<Uint8Array>((resolve, reject) => {
    let settled = false;
    const worker = new Worker(KDF_WORKER, {
      eval: true,
      name: 'lifeboat-kdf',
      workerData: {
        lib, password, keyBytes: KDF_KEY_BYTES, salt: Uint8Array.from(params.salt),
        opslimit: params.opslimit, memlimit: params.memlimit,
      },
    });
    // a speculative derivation (prefetchKey) keeps the process alive only once it is wanted
    if (background) worker.unref();
    onWorker?.(worker);
    worker.once('message', (m: { key?: Uint8Array; error?: string }) => {
      settled = true;
      if (m.key) resolve(m.key);
      else reject(new Error(`Argon2id failed: ${m.error ?? 'unknown error'}`));
      void worker.terminate();
    });
    worker.once('error', (e) => {
      if (!settled) reject(e);
      settled = true;
    });
    worker.once('exit', (code) => {
      if (!settled) reject(new Error(`Argon2id worker exited (code ${code}) without a result`));
      settled = true;
    });
  });
}

/**
 * One derivation: the system's libsodium through the native helper when it loads (≈ 0.09 s with
 * the defaults, in libuv's thread pool; its 64 MiB are freed when it returns), else the WASM
 * worker. LIFEBOAT_NATIVE_KDF=0 forces the WASM path (the tests compare the two).
 */
function runKdf(password: string, params: KdfParams, background = false, onWorker?: (w: Worker) => void): Promise<Uint8Array> {
  const pw = Buffer.from(password, 'utf8');
  try {
    const key = nativeArgon2id(pw, params.salt, params.opslimit, params.memlimit, KDF_KEY_BYTES);
    if (key) return key.catch((e: unknown) => Promise.reject(new Error(`Argon2id failed: ${(e as Error).message}`)));
  } finally {
    pw.fill(0);
  }
  return runKdfWorker(password, params, background, onWorker);
}

/**
 * Argon2id(password as UTF-8, no normalisation) → 32-byte key, about 0.09 s with the defaults
 * and the system's libsodium, 0.17 s in WASM. Never on the calling thread (see runKdf).
 */
export async function deriveKeyFromPassword(password: string, params: KdfParams): Promise<Buffer> {
  if (typeof password !== 'string' || password.length === 0) {
    throw new Error('empty password refused: a repository password must not be empty');
  }
  validateKdfParams(params);
  const tag = prefetchTag(password, params);
  const early = prefetched.get(tag);
  prefetched.delete(tag);
  let key: Uint8Array | null = null;
  if (early) {
    early.worker?.ref(); // awaited now: it must keep the event loop alive like any derivation
    key = await early.key.catch(() => null);
  }
  key ??= await runKdf(password, params);
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength);
}

/** Derivations started ahead of need (prefetchKey), by a hash of password and parameters. */
const prefetched = new Map<string, { key: Promise<Uint8Array>; worker: Worker | null }>();

function prefetchTag(password: string, params: KdfParams): string {
  return createHash('sha256')
    .update(`${params.opslimit}:${params.memlimit}:`).update(params.salt).update(':').update(password, 'utf8')
    .digest('hex');
}

/**
 * Starts deriving the key for `password` and `params` now, in the background (the CLI does it
 * while it is still loading its modules, from the key file it expects to need): a later
 * deriveKeyFromPassword with the same password and parameters takes the result instead of
 * deriving again. Nothing is trusted from it — it is the same function of the same inputs —
 * and an unused one is simply dropped (its worker does not hold the process open).
 */
export function prefetchKey(password: string, params: KdfParams): void {
  if (typeof password !== 'string' || password.length === 0) return;
  try {
    validateKdfParams(params);
  } catch {
    return;
  }
  const tag = prefetchTag(password, params);
  if (prefetched.has(tag)) return;
  const entry: { key: Promise<Uint8Array>; worker: Worker | null } = { key: Promise.resolve(new Uint8Array(0)), worker: null };
  entry.key = runKdf(password, params, true, (w) => (entry.worker = w));
  entry.key.catch(() => undefined);
  prefetched.set(tag, entry);
}

/** True when a derivation for exactly this password and these parameters was started ahead (for tests). */
export function hasPrefetched(password: string, params: KdfParams): boolean {
  return prefetched.has(prefetchTag(password, params));
}
