/**
 * libsodium (WASM, sumo build) loaded once per thread.
 *
 * The sumo build is required: the plain build lacks crypto_pwhash (Argon2id)
 * and crypto_core_hchacha20. libsodium-wrappers-sumo 0.8.x ships a real ESM
 * entry point (dist/modules-sumo-esm/*.mjs, selected through package.json
 * "exports"), and its default export is the wrapper object; under Node 20 ESM
 * a plain default import works (checked with 0.8.4), so no createRequire
 * fallback is needed.
 *
 * This module initialises libsodium with a top-level await, so any module that imports it
 * (aead.ts, kdf.ts) can use `sodiumSync()` as soon as it is loaded — in worker threads too.
 */
import sodiumModule from 'libsodium-wrappers-sumo';

export type Sodium = typeof sodiumModule;

let ready: Sodium | null = null;
let loading: Promise<Sodium> | null = null;

/** Resolves once libsodium is initialised; cheap to call repeatedly. */
export function getSodium(): Promise<Sodium> {
  if (ready !== null) return Promise.resolve(ready);
  if (loading === null) {
    loading = sodiumModule.ready.then(
      () => {
        ready = sodiumModule;
        return sodiumModule;
      },
      (err: unknown) => {
        loading = null;
        throw err;
      },
    );
  }
  return loading;
}

/** The initialised library; throws if `await getSodium()` has not completed yet. */
export function sodiumSync(): Sodium {
  if (ready === null) {
    throw new Error('libsodium is not initialised: await getSodium() before using it synchronously');
  }
  return ready;
}

/** True once libsodium is ready for synchronous use. */
export function sodiumReady(): boolean {
  return ready !== null;
}

// Top-level await: importers get a ready library (a few ms of WASM instantiation, once per thread).
await getSodium();
