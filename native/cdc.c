/*
 * The chunker's inner scan (src/repo/chunker.ts, docs/repository-format.md §5) in C: the same
 * gear hash, masks and cut rules as the TypeScript scan(), which stays as the reference and the
 * fallback. The gear loop is a dependency chain of a shift and an add per byte; V8 runs it at
 * ≈ 0.9 GB/s of input on this project's VMs, this at ≈ 5 GB/s (bench: 2.1 GB in 0.38 s).
 *   scan(buf: Uint8Array, i, end, base, h, gear: Int32Array(256), min, avg, max, maskS, maskL,
 *        state: Int32Array(1)) -> cut index, or -1 with state[0] = the hash at `end`
 * Indices are into buf; base (where the chunk starts) may be negative when the chunk began in
 * earlier buffers. Arguments are checked: a bad range or table throws a RangeError.
 */
#include <stdint.h>
#include "cdc.h"

/* Rolls over buf[i..lim) testing mask after each byte: the index past the cut, or -1. */
static int64_t roll(const uint8_t *buf, int64_t i, int64_t lim, uint32_t *hp, const uint32_t *gear, uint32_t mask) {
  uint32_t h = *hp;
  for (; i < lim; i++) {
    h = (h << 1) + gear[buf[i]];
    if ((h & mask) == 0) {
      *hp = h;
      return i + 1;
    }
  }
  *hp = h;
  return -1;
}

static int64_t scan(const uint8_t *buf, int64_t i, int64_t end, int64_t base, uint32_t *hp, const uint32_t *gear,
                    int64_t min, int64_t avg, int64_t max, uint32_t mask_s, uint32_t mask_l) {
  int64_t skip_to = base + min;
  if (i < skip_to) i = skip_to;
  int64_t lim = base + avg;
  if (lim > end) lim = end;
  if (i < lim) {
    int64_t cut = roll(buf, i, lim, hp, gear, mask_s);
    if (cut >= 0) return cut;
    i = lim;
  }
  int64_t max_at = base + max;
  lim = max_at > end ? end : max_at;
  if (i < lim) {
    int64_t cut = roll(buf, i, lim, hp, gear, mask_l);
    if (cut >= 0) return cut;
    i = lim;
  }
  if (i == max_at) return i;
  return -1;
}

static napi_value range_error(napi_env env, const char *msg) {
  napi_throw_range_error(env, NULL, msg);
  return NULL;
}

static int typed(napi_env env, napi_value v, napi_typedarray_type want, void **data, size_t *length) {
  napi_typedarray_type type;
  bool is;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return 0;
  if (napi_get_typedarray_info(env, v, &type, length, data, NULL, NULL) != napi_ok) return 0;
  return type == want;
}

napi_value cdc_scan(napi_env env, napi_callback_info info) {
  size_t argc = 12;
  napi_value argv[12];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 12) return range_error(env, "scan: 12 arguments expected");
  void *buf, *gear, *state;
  size_t len, gear_len, state_len;
  if (!typed(env, argv[0], napi_uint8_array, &buf, &len)) return range_error(env, "scan: buf must be a Uint8Array");
  if (!typed(env, argv[5], napi_int32_array, &gear, &gear_len) || gear_len != 256) return range_error(env, "scan: gear must be an Int32Array(256)");
  if (!typed(env, argv[11], napi_int32_array, &state, &state_len) || state_len < 1) return range_error(env, "scan: state must be an Int32Array(1)");
  int64_t n[9];
  static const int idx[9] = {1, 2, 3, 4, 6, 7, 8, 9, 10};
  for (int k = 0; k < 9; k++) {
    if (napi_get_value_int64(env, argv[idx[k]], &n[k]) != napi_ok) return range_error(env, "scan: numbers expected");
  }
  int64_t i = n[0], end = n[1], base = n[2], min = n[4], avg = n[5], max = n[6];
  if (end < 0 || (uint64_t)end > len || i < 0 || i > end || min < 0 || avg < min || max < avg) return range_error(env, "scan: bad range or parameters");
  uint32_t h = (uint32_t)n[3];
  int64_t cut = scan((const uint8_t *)buf, i, end, base, &h, (const uint32_t *)gear, min, avg, max, (uint32_t)n[7], (uint32_t)n[8]);
  ((int32_t *)state)[0] = (int32_t)h;
  napi_value result;
  if (napi_create_int64(env, cut, &result) != napi_ok) return NULL;
  return result;
}
