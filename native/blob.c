/*
 * Sealing and opening one blob (docs/repository-format.md §4–§5) in one native call, for the
 * seal pool's threads: the same bytes as repo/blob.ts's sealBlob/openBlobInto, which stay as the
 * reference and the fallback (test/repo/blob-native.test.ts checks each against the other).
 *
 *   id     = HMAC-SHA-256(K_id, data)                        (unless the caller has it)
 *   sealed = nonce(24) ‖ XChaCha20-Poly1305(K_enc, nonce, AD = id, payload) ‖ tag(16)
 *   payload = 0x01 ‖ zstd frame (level, content size set) when smaller than the data, else 0x00 ‖ data
 *
 * The zstd frame is compressed straight into the output and encrypted in place; nothing is
 * allocated per blob. What this saves against the TypeScript path, which calls the same
 * libraries: node:crypto's cipher and HMAC objects per blob, the cipher's two result buffers per
 * 64 KiB slice, and the copies between them.
 *
 * No link-time dependencies: OpenSSL's functions are found in the running process (node exports
 * its own OpenSSL), zstd is the system's libzstd.so.1 (Debian: libzstd1, which dpkg itself
 * needs), loaded with dlopen. blobNativeAvailable() is false when either is missing, and
 * lifeboat then seals in TypeScript.
 *
 *   blobNativeAvailable() -> boolean
 *   sealBlob(encKey(32), idKey(32), data, id(32) | null, level, out, idOut(32)) -> sealed length
 *       out needs data.length + 41 bytes; idOut receives the id
 *   openBlob(encKey(32), idKey(32), sealed, id(32), out) -> 0 opened and verified into out (the
 *       blob's exact plaintext length), 1 authentication failed (out zeroed), 2 the payload needs
 *       the TypeScript decoder (corrupt, unknown encoding, a frame without a content size: it
 *       gives the exact reason), 3 the plaintext does not hash to id
 * Per-thread state (zstd contexts, cipher context, scratch) is kept in thread-local storage and
 * freed when the thread ends.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <node_api.h>
#include "blob.h"

/* ---- the parts of OpenSSL and zstd used here, resolved at run time ---- */

typedef struct evp_cipher_ctx_st EVP_CIPHER_CTX;
typedef struct evp_cipher_st EVP_CIPHER;
typedef struct evp_md_st EVP_MD;
typedef struct engine_st ENGINE;
#define EVP_CTRL_AEAD_GET_TAG 0x10
#define EVP_CTRL_AEAD_SET_TAG 0x11

static struct {
  unsigned char *(*hmac)(const EVP_MD *, const void *, int, const unsigned char *, size_t, unsigned char *, unsigned int *);
  const EVP_MD *(*sha256)(void);
  const EVP_CIPHER *(*chacha20_poly1305)(void);
  EVP_CIPHER_CTX *(*ctx_new)(void);
  void (*ctx_free)(EVP_CIPHER_CTX *);
  int (*ctx_ctrl)(EVP_CIPHER_CTX *, int, int, void *);
  int (*enc_init)(EVP_CIPHER_CTX *, const EVP_CIPHER *, ENGINE *, const unsigned char *, const unsigned char *);
  int (*enc_update)(EVP_CIPHER_CTX *, unsigned char *, int *, const unsigned char *, int);
  int (*enc_final)(EVP_CIPHER_CTX *, unsigned char *, int *);
  int (*dec_init)(EVP_CIPHER_CTX *, const EVP_CIPHER *, ENGINE *, const unsigned char *, const unsigned char *);
  int (*dec_update)(EVP_CIPHER_CTX *, unsigned char *, int *, const unsigned char *, int);
  int (*dec_final)(EVP_CIPHER_CTX *, unsigned char *, int *);
  int (*rand_bytes)(unsigned char *, int);
  int (*memcmp_ct)(const void *, const void *, size_t);

  void *(*zstd_create_cctx)(void);
  size_t (*zstd_free_cctx)(void *);
  void *(*zstd_create_dctx)(void);
  size_t (*zstd_free_dctx)(void *);
  size_t (*zstd_compress_cctx)(void *, void *, size_t, const void *, size_t, int);
  size_t (*zstd_decompress_dctx)(void *, void *, size_t, const void *, size_t);
  size_t (*zstd_compress_bound)(size_t);
  unsigned (*zstd_is_error)(size_t);
  size_t (*zstd_find_frame_compressed_size)(const void *, size_t);
  unsigned long long (*zstd_get_frame_content_size)(const void *, size_t);
} L;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static pthread_key_t state_key;
static int available;

#define FIND(handle, field, name)                        \
  do {                                                   \
    *(void **)(&L.field) = dlsym(handle, name);          \
    if (L.field == NULL) return 0;                       \
  } while (0)

static int load_openssl(void) {
  void *h = RTLD_DEFAULT;
  FIND(h, hmac, "HMAC");
  FIND(h, sha256, "EVP_sha256");
  FIND(h, chacha20_poly1305, "EVP_chacha20_poly1305");
  FIND(h, ctx_new, "EVP_CIPHER_CTX_new");
  FIND(h, ctx_free, "EVP_CIPHER_CTX_free");
  FIND(h, ctx_ctrl, "EVP_CIPHER_CTX_ctrl");
  FIND(h, enc_init, "EVP_EncryptInit_ex");
  FIND(h, enc_update, "EVP_EncryptUpdate");
  FIND(h, enc_final, "EVP_EncryptFinal_ex");
  FIND(h, dec_init, "EVP_DecryptInit_ex");
  FIND(h, dec_update, "EVP_DecryptUpdate");
  FIND(h, dec_final, "EVP_DecryptFinal_ex");
  FIND(h, rand_bytes, "RAND_bytes");
  FIND(h, memcmp_ct, "CRYPTO_memcmp");
  return 1;
}

static int load_zstd(void) {
  void *h = dlopen("libzstd.so.1", RTLD_NOW | RTLD_LOCAL);
  if (h == NULL) return 0;
  FIND(h, zstd_create_cctx, "ZSTD_createCCtx");
  FIND(h, zstd_free_cctx, "ZSTD_freeCCtx");
  FIND(h, zstd_create_dctx, "ZSTD_createDCtx");
  FIND(h, zstd_free_dctx, "ZSTD_freeDCtx");
  FIND(h, zstd_compress_cctx, "ZSTD_compressCCtx");
  FIND(h, zstd_decompress_dctx, "ZSTD_decompressDCtx");
  FIND(h, zstd_compress_bound, "ZSTD_compressBound");
  FIND(h, zstd_is_error, "ZSTD_isError");
  FIND(h, zstd_find_frame_compressed_size, "ZSTD_findFrameCompressedSize");
  FIND(h, zstd_get_frame_content_size, "ZSTD_getFrameContentSize");
  return 1;
}

/* ---- per-thread state ---- */

/* Incompressible-data pre-check, as repo/compress.ts's looksIncompressible: 4 samples of 16 KiB
   spread over inputs of at least 128 KiB, compressed at level 1; all above 97 % → stored raw. */
#define PRECHECK_MIN_INPUT (128 * 1024)
#define PRECHECK_SAMPLES 4
#define PRECHECK_SAMPLE (16 * 1024)

typedef struct {
  void *cctx;
  void *dctx;
  EVP_CIPHER_CTX *cipher;
  uint8_t *scratch; /* decrypted zstd payloads */
  size_t scratch_len;
  uint8_t *sample_out; /* compressBound(PRECHECK_SAMPLE) */
} thread_state;

static void free_state(void *p) {
  thread_state *s = p;
  if (s == NULL) return;
  if (s->cctx) L.zstd_free_cctx(s->cctx);
  if (s->dctx) L.zstd_free_dctx(s->dctx);
  if (s->cipher) L.ctx_free(s->cipher);
  free(s->scratch);
  free(s->sample_out);
  free(s);
}

static void load(void) {
  if (!load_openssl() || !load_zstd()) return;
  if (pthread_key_create(&state_key, free_state) != 0) return;
  available = 1;
}

static thread_state *state(void) {
  thread_state *s = pthread_getspecific(state_key);
  if (s != NULL) return s;
  s = calloc(1, sizeof *s);
  if (s == NULL) return NULL;
  s->cctx = L.zstd_create_cctx();
  s->dctx = L.zstd_create_dctx();
  s->cipher = L.ctx_new();
  s->sample_out = malloc(L.zstd_compress_bound(PRECHECK_SAMPLE));
  if (!s->cctx || !s->dctx || !s->cipher || !s->sample_out || pthread_setspecific(state_key, s) != 0) {
    free_state(s);
    return NULL;
  }
  return s;
}

/* ---- HChaCha20 (draft-irtf-cfrg-xchacha §2.2), as repo/hchacha20.ts ---- */

#define ROTL(v, n) (((v) << (n)) | ((v) >> (32 - (n))))
#define QR(a, b, c, d)                  \
  a += b; d = ROTL(d ^ a, 16);          \
  c += d; b = ROTL(b ^ c, 12);          \
  a += b; d = ROTL(d ^ a, 8);           \
  c += d; b = ROTL(b ^ c, 7);

static uint32_t le32(const uint8_t *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static void put_le32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}

static void hchacha20(uint8_t out[32], const uint8_t key[32], const uint8_t nonce16[16]) {
  uint32_t x[16] = {0x61707865, 0x3320646e, 0x79622d32, 0x6b206574};
  for (int i = 0; i < 8; i++) x[4 + i] = le32(key + 4 * i);
  for (int i = 0; i < 4; i++) x[12 + i] = le32(nonce16 + 4 * i);
  for (int i = 0; i < 10; i++) {
    QR(x[0], x[4], x[8], x[12]);
    QR(x[1], x[5], x[9], x[13]);
    QR(x[2], x[6], x[10], x[14]);
    QR(x[3], x[7], x[11], x[15]);
    QR(x[0], x[5], x[10], x[15]);
    QR(x[1], x[6], x[11], x[12]);
    QR(x[2], x[7], x[8], x[13]);
    QR(x[3], x[4], x[9], x[14]);
  }
  for (int i = 0; i < 4; i++) put_le32(out + 4 * i, x[i]);
  for (int i = 0; i < 4; i++) put_le32(out + 16 + 4 * i, x[12 + i]);
  memset(x, 0, sizeof x);
}

/* The inner ChaCha20-Poly1305's key and 12-byte IV for a 24-byte nonce. */
static void inner_key_iv(uint8_t subkey[32], uint8_t iv[12], const uint8_t *key, const uint8_t *nonce) {
  hchacha20(subkey, key, nonce);
  memset(iv, 0, 4);
  memcpy(iv + 4, nonce + 16, 8);
}

/* ---- sealing and opening ---- */

#define NONCE_BYTES 24
#define TAG_BYTES 16
#define ID_BYTES 32
/* EVP update lengths are ints: feed large inputs in steps */
#define STEP (1 << 30)

static int looks_incompressible(thread_state *s, const uint8_t *data, size_t len) {
  if (len < PRECHECK_MIN_INPUT) return 0;
  size_t step = (len - PRECHECK_SAMPLE) / (PRECHECK_SAMPLES - 1);
  size_t bound = L.zstd_compress_bound(PRECHECK_SAMPLE);
  for (int k = 0; k < PRECHECK_SAMPLES; k++) {
    size_t n = L.zstd_compress_cctx(s->cctx, s->sample_out, bound, data + k * step, PRECHECK_SAMPLE, 1);
    if (L.zstd_is_error(n) || (double)n <= 0.97 * PRECHECK_SAMPLE) return 0;
  }
  return 1;
}

static int cipher_update(EVP_CIPHER_CTX *c, int enc, uint8_t *out, const uint8_t *in, size_t len) {
  while (len > 0) {
    int n = len > STEP ? STEP : (int)len, outl;
    if ((enc ? L.enc_update(c, out, &outl, in, n) : L.dec_update(c, out, &outl, in, n)) != 1) return 0;
    out += n;
    in += n;
    len -= (size_t)n;
  }
  return 1;
}

static void blob_id(const uint8_t *id_key, const uint8_t *data, size_t len, uint8_t out[ID_BYTES]) {
  unsigned int n = ID_BYTES;
  static const uint8_t empty[1] = {0};
  L.hmac(L.sha256(), id_key, 32, len > 0 ? data : empty, len, out, &n);
}

/* Seals `data` into out (room for len + 41 bytes). Returns the sealed length, or 0 on failure. */
static size_t seal(thread_state *s, const uint8_t *enc_key, const uint8_t *id, const uint8_t *data, size_t len,
                   int level, uint8_t *out) {
  uint8_t *nonce = out, *payload = out + NONCE_BYTES, flag = 0x00;
  const uint8_t *body = data;
  size_t body_len = len;
  if (L.rand_bytes(nonce, NONCE_BYTES) != 1) return 0;
  if (len > 1 && !looks_incompressible(s, data, len)) {
    /* room for one byte less than the data: a frame that doesn't fit is no smaller, stored raw */
    size_t z = L.zstd_compress_cctx(s->cctx, payload + 1, len - 1, data, len, level);
    if (!L.zstd_is_error(z) && z < len) {
      flag = 0x01;
      body = payload + 1; /* encrypted in place */
      body_len = z;
    }
  }
  uint8_t subkey[32], iv[12];
  int outl;
  inner_key_iv(subkey, iv, enc_key, nonce);
  int ok = L.enc_init(s->cipher, L.chacha20_poly1305(), NULL, subkey, iv) == 1 &&
           L.enc_update(s->cipher, NULL, &outl, id, ID_BYTES) == 1 &&
           L.enc_update(s->cipher, payload, &outl, &flag, 1) == 1 &&
           cipher_update(s->cipher, 1, payload + 1, body, body_len) &&
           L.enc_final(s->cipher, payload + 1 + body_len, &outl) == 1 &&
           L.ctx_ctrl(s->cipher, EVP_CTRL_AEAD_GET_TAG, TAG_BYTES, payload + 1 + body_len) == 1;
  memset(subkey, 0, sizeof subkey);
  return ok ? NONCE_BYTES + 1 + body_len + TAG_BYTES : 0;
}

enum { OPENED = 0, AUTH_FAILED = 1, NEEDS_DECODER = 2, ID_MISMATCH = 3 };

static int open_blob(thread_state *s, const uint8_t *enc_key, const uint8_t *id_key, const uint8_t *sealed, size_t slen,
                     const uint8_t *id, uint8_t *out, size_t raw_len) {
  if (slen < NONCE_BYTES + 1 + TAG_BYTES) return AUTH_FAILED;
  const uint8_t *nonce = sealed, *ct = sealed + NONCE_BYTES;
  size_t ct_len = slen - NONCE_BYTES - TAG_BYTES, body_len = ct_len - 1;
  uint8_t tag[TAG_BYTES], subkey[32], iv[12], flag;
  int outl;
  memcpy(tag, sealed + slen - TAG_BYTES, TAG_BYTES);
  inner_key_iv(subkey, iv, enc_key, nonce);
  int ok = L.dec_init(s->cipher, L.chacha20_poly1305(), NULL, subkey, iv) == 1 &&
           L.ctx_ctrl(s->cipher, EVP_CTRL_AEAD_SET_TAG, TAG_BYTES, tag) == 1 &&
           L.dec_update(s->cipher, NULL, &outl, id, ID_BYTES) == 1 &&
           L.dec_update(s->cipher, &flag, &outl, ct, 1) == 1;
  memset(subkey, 0, sizeof subkey);
  if (!ok) return AUTH_FAILED;
  if (flag == 0x00) {
    if (body_len != raw_len) return NEEDS_DECODER;
    if (!cipher_update(s->cipher, 0, out, ct + 1, body_len) || L.dec_final(s->cipher, out + body_len, &outl) != 1) {
      memset(out, 0, raw_len);
      return AUTH_FAILED;
    }
  } else if (flag == 0x01) {
    if (s->scratch_len < body_len || s->scratch == NULL) {
      size_t want = ((body_len >> 20) + 1) << 20; /* 1 MiB steps */
      uint8_t *p = realloc(s->scratch, want);
      if (p == NULL) return NEEDS_DECODER;
      s->scratch = p;
      s->scratch_len = want;
    }
    if (!cipher_update(s->cipher, 0, s->scratch, ct + 1, body_len) || L.dec_final(s->cipher, s->scratch + body_len, &outl) != 1) {
      return AUTH_FAILED;
    }
    size_t frame = L.zstd_find_frame_compressed_size(s->scratch, body_len);
    if (L.zstd_is_error(frame) || frame != body_len) return NEEDS_DECODER;
    if (L.zstd_get_frame_content_size(s->scratch, body_len) != (unsigned long long)raw_len) return NEEDS_DECODER;
    size_t n = L.zstd_decompress_dctx(s->dctx, out, raw_len, s->scratch, body_len);
    if (L.zstd_is_error(n) || n != raw_len) return NEEDS_DECODER;
  } else {
    return NEEDS_DECODER;
  }
  uint8_t actual[ID_BYTES];
  blob_id(id_key, out, raw_len, actual);
  return L.memcmp_ct(actual, id, ID_BYTES) == 0 ? OPENED : ID_MISMATCH;
}

/* ---- N-API ---- */

static napi_value fail(napi_env env, const char *msg) {
  napi_throw_range_error(env, NULL, msg);
  return NULL;
}

static int bytes_arg(napi_env env, napi_value v, uint8_t **data, size_t *len) {
  napi_typedarray_type type;
  bool is;
  void *p;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return 0;
  if (napi_get_typedarray_info(env, v, &type, len, &p, NULL, NULL) != napi_ok || type != napi_uint8_array) return 0;
  *data = p;
  return 1;
}

static int key_arg(napi_env env, napi_value v, uint8_t **data) {
  size_t len;
  return bytes_arg(env, v, data, &len) && len == 32;
}

napi_value blob_native_available(napi_env env, napi_callback_info info) {
  pthread_once(&load_once, load);
  napi_value result;
  if (napi_get_boolean(env, available, &result) != napi_ok) return NULL;
  return result;
}

/* True when [a, a + alen) and [b, b + blen) share a byte. */
static int overlap(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen) {
  return a < b + blen && b < a + alen;
}

/* What sealBlob and openBlob check first: the libraries, the argument count and the two keys
   (argv[0], argv[1]). 0 with a RangeError thrown when something is wrong. */
static int begin(napi_env env, napi_callback_info info, const char *fn, size_t want, napi_value *argv,
                 uint8_t **enc_key, uint8_t **id_key) {
  char msg[96];
  size_t argc = want;
  pthread_once(&load_once, load);
  if (!available) {
    snprintf(msg, sizeof msg, "%s: libzstd or OpenSSL is not available", fn);
  } else if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != want) {
    snprintf(msg, sizeof msg, "%s: %zu arguments expected", fn, want);
  } else if (!key_arg(env, argv[0], enc_key) || !key_arg(env, argv[1], id_key)) {
    snprintf(msg, sizeof msg, "%s: keys must be 32 bytes", fn);
  } else {
    return 1;
  }
  fail(env, msg);
  return 0;
}

napi_value blob_seal(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  uint8_t *enc_key, *id_key, *data, *id = NULL, *out, *id_out;
  size_t len, out_len, id_len, id_out_len;
  napi_valuetype t;
  int32_t level;
  if (!begin(env, info, "sealBlob", 7, argv, &enc_key, &id_key)) return NULL;
  if (!bytes_arg(env, argv[2], &data, &len)) return fail(env, "sealBlob: data must be a Uint8Array");
  if (napi_typeof(env, argv[3], &t) != napi_ok) return NULL;
  if (t != napi_null && (!bytes_arg(env, argv[3], &id, &id_len) || id_len != ID_BYTES)) return fail(env, "sealBlob: id must be 32 bytes or null");
  if (napi_get_value_int32(env, argv[4], &level) != napi_ok) return fail(env, "sealBlob: level must be a number");
  if (!bytes_arg(env, argv[5], &out, &out_len) || out_len < len + NONCE_BYTES + 1 + TAG_BYTES) return fail(env, "sealBlob: the output needs data.length + 41 bytes");
  if (!bytes_arg(env, argv[6], &id_out, &id_out_len) || id_out_len != ID_BYTES) return fail(env, "sealBlob: idOut must be 32 bytes");
  if (overlap(out, out_len, data, len)) return fail(env, "sealBlob: the output overlaps the data");
  if (overlap(out, out_len, id_out, ID_BYTES) || (id != NULL && overlap(out, out_len, id, ID_BYTES))) {
    return fail(env, "sealBlob: the output overlaps the id");
  }
  thread_state *s = state();
  if (s == NULL) return fail(env, "sealBlob: out of memory");
  uint8_t computed[ID_BYTES];
  if (id == NULL) {
    blob_id(id_key, data, len, computed);
    id = computed;
  }
  memmove(id_out, id, ID_BYTES);
  size_t n = seal(s, enc_key, id_out, data, len, level, out);
  if (n == 0) return fail(env, "sealBlob: encryption failed");
  napi_value result;
  if (napi_create_double(env, (double)n, &result) != napi_ok) return NULL;
  return result;
}

napi_value blob_open(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  uint8_t *enc_key, *id_key, *sealed, *id, *out;
  size_t slen, id_len, out_len;
  if (!begin(env, info, "openBlob", 5, argv, &enc_key, &id_key)) return NULL;
  if (!bytes_arg(env, argv[2], &sealed, &slen)) return fail(env, "openBlob: sealed must be a Uint8Array");
  if (!bytes_arg(env, argv[3], &id, &id_len) || id_len != ID_BYTES) return fail(env, "openBlob: id must be 32 bytes");
  if (!bytes_arg(env, argv[4], &out, &out_len)) return fail(env, "openBlob: out must be a Uint8Array");
  if (overlap(out, out_len, sealed, slen)) return fail(env, "openBlob: the output overlaps the input");
  thread_state *s = state();
  if (s == NULL) return fail(env, "openBlob: out of memory");
  uint8_t id_copy[ID_BYTES];
  memcpy(id_copy, id, ID_BYTES);
  int code = open_blob(s, enc_key, id_key, sealed, slen, id_copy, out, out_len);
  napi_value result;
  if (napi_create_int32(env, code, &result) != napi_ok) return NULL;
  return result;
}
