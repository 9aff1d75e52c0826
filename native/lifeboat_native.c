/*
 * lifeboat's small native helpers: what Node's fs lacks for exact restores and full backups.
 *   utimesNs(path, atimeSec, atimeNsec, mtimeSec, mtimeNsec)  utimensat(AT_SYMLINK_NOFOLLOW)
 *   listXattrs(path) -> Buffer (NUL-separated names)         llistxattr
 *   getXattr(path, name) -> Buffer                            lgetxattr
 *   setXattr(path, name, value)                               lsetxattr
 *   mknod(path, mode, rdevMajor, rdevMinor)                   mknod (FIFOs, devices)
 *   argon2idAvailable(), argon2id(...)                        libsodium's Argon2id (kdf.c)
 *   cdcScan(...)                                              the chunker's gear scan (cdc.c)
 *   blobNativeAvailable(), sealBlob(...), openBlob(...)       one blob sealed / opened (blob.c)
 * Paths are Buffers (raw bytes, NUL-terminated here) or strings. Errors are thrown as Error
 * objects with code (e.g. "ENOENT"), errno and syscall, like Node's own fs errors.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <node_api.h>
#include "async_work.h"
#include "blob.h"
#include "cdc.h"
#include "kdf.h"

#define CHECK(call)                                                     \
  do {                                                                  \
    if ((call) != napi_ok) {                                            \
      napi_throw_error(env, NULL, "lifeboat_native: N-API call failed"); \
      return NULL;                                                      \
    }                                                                   \
  } while (0)

static const char *errno_code(int e) {
  switch (e) {
    case ENOENT: return "ENOENT";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case EEXIST: return "EEXIST";
    case ENOTDIR: return "ENOTDIR";
    case EISDIR: return "EISDIR";
    case EINVAL: return "EINVAL";
    case ENOTSUP: return "ENOTSUP";
    case ENODATA: return "ENODATA";
    case ERANGE: return "ERANGE";
    case ENOSPC: return "ENOSPC";
    case E2BIG: return "E2BIG";
    case EROFS: return "EROFS";
    case ELOOP: return "ELOOP";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case EIO: return "EIO";
    case EDQUOT: return "EDQUOT";
    case EBADF: return "EBADF";
    case ENOMEM: return "ENOMEM";
    default: return "EUNKNOWN";
  }
}

static napi_value throw_errno(napi_env env, int e, const char *syscall, const char *path) {
  char msg[512];
  snprintf(msg, sizeof msg, "%s, %s '%s'", errno_code(e), syscall, path ? path : "");
  napi_value code, message, err, num, sc;
  if (napi_create_string_utf8(env, errno_code(e), NAPI_AUTO_LENGTH, &code) != napi_ok) return NULL;
  if (napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &message) != napi_ok) return NULL;
  if (napi_create_error(env, code, message, &err) != napi_ok) return NULL;
  napi_create_int32(env, -e, &num);
  napi_set_named_property(env, err, "errno", num);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &sc);
  napi_set_named_property(env, err, "syscall", sc);
  napi_throw(env, err);
  return NULL;
}

/* Copies a Buffer or string argument into a new NUL-terminated C string (caller frees). */
static char *get_cstr(napi_env env, napi_value v, const char *what) {
  bool is_buf = false;
  napi_is_buffer(env, v, &is_buf);
  if (is_buf) {
    void *data;
    size_t len;
    if (napi_get_buffer_info(env, v, &data, &len) != napi_ok) return NULL;
    if (memchr(data, 0, len) != NULL) {
      napi_throw_type_error(env, NULL, "lifeboat_native: argument contains a NUL byte");
      return NULL;
    }
    char *s = malloc(len + 1);
    if (!s) return NULL;
    memcpy(s, data, len);
    s[len] = 0;
    return s;
  }
  napi_valuetype t;
  napi_typeof(env, v, &t);
  if (t != napi_string) {
    char msg[128];
    snprintf(msg, sizeof msg, "lifeboat_native: %s must be a Buffer or a string", what);
    napi_throw_type_error(env, NULL, msg);
    return NULL;
  }
  size_t len;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return NULL;
  char *s = malloc(len + 1);
  if (!s) return NULL;
  napi_get_value_string_utf8(env, v, s, len + 1, &len);
  if (strlen(s) != len) {
    free(s);
    napi_throw_type_error(env, NULL, "lifeboat_native: argument contains a NUL byte");
    return NULL;
  }
  return s;
}

static int get_i64(napi_env env, napi_value v, int64_t *out) {
  return napi_get_value_int64(env, v, out) == napi_ok ? 0 : -1;
}

static napi_value utimes_ns(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 5) {
    napi_throw_type_error(env, NULL, "utimesNs(path, aSec, aNsec, mSec, mNsec)");
    return NULL;
  }
  int64_t as, an, ms, mn;
  if (get_i64(env, argv[1], &as) || get_i64(env, argv[2], &an) || get_i64(env, argv[3], &ms) || get_i64(env, argv[4], &mn)) {
    napi_throw_type_error(env, NULL, "utimesNs: times must be numbers");
    return NULL;
  }
  char *p = get_cstr(env, argv[0], "path");
  if (!p) return NULL;
  struct timespec ts[2];
  ts[0].tv_sec = (time_t)as;
  ts[0].tv_nsec = (long)an;
  ts[1].tv_sec = (time_t)ms;
  ts[1].tv_nsec = (long)mn;
  int r = utimensat(AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW);
  if (r != 0) {
    int e = errno;
    napi_value ret = throw_errno(env, e, "utimensat", p);
    free(p);
    return ret;
  }
  free(p);
  return NULL;
}

/* llistxattr (name == NULL) or lgetxattr, never following a symlink. */
static ssize_t xattr_call(const char *p, const char *name, char *buf, size_t size) {
  return name ? lgetxattr(p, name, buf, size) : llistxattr(p, buf, size);
}

/* Asks for the size, reads, and asks again if the value grew in between; a Buffer or a throw. */
static napi_value xattr_read(napi_env env, const char *p, const char *name) {
  const char *syscall = name ? "lgetxattr" : "llistxattr";
  for (int attempt = 0; attempt < 8; attempt++) {
    ssize_t n = xattr_call(p, name, NULL, 0);
    if (n < 0) return throw_errno(env, errno, syscall, p);
    char *buf = malloc(n > 0 ? (size_t)n : 1);
    if (!buf) return throw_errno(env, ENOMEM, syscall, p);
    ssize_t m = n > 0 ? xattr_call(p, name, buf, (size_t)n) : 0;
    int e = errno;
    if (m < 0) {
      free(buf);
      if (e == ERANGE) continue; /* grew in between */
      return throw_errno(env, e, syscall, p);
    }
    napi_value out = NULL;
    void *dst;
    if (napi_create_buffer_copy(env, (size_t)m, buf, &dst, &out) != napi_ok) out = NULL;
    free(buf);
    return out;
  }
  return throw_errno(env, ERANGE, syscall, p);
}

/* The single path argument of a call, as a C string to free(); NULL with an exception pending. */
static char *path_arg(napi_env env, napi_callback_info info, const char *usage) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) {
    napi_throw_type_error(env, NULL, usage);
    return NULL;
  }
  return get_cstr(env, argv[0], "path");
}

/* The single integer argument of a call into *out: 0, or -1 with an exception pending. */
static int i64_arg(napi_env env, napi_callback_info info, const char *usage, int64_t *out) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) {
    napi_throw_error(env, NULL, "lifeboat_native: N-API call failed");
    return -1;
  }
  if (argc < 1 || get_i64(env, argv[0], out)) {
    napi_throw_type_error(env, NULL, usage);
    return -1;
  }
  return 0;
}

static napi_value list_xattrs(napi_env env, napi_callback_info info) {
  char *p = path_arg(env, info, "listXattrs(path)");
  if (!p) return NULL;
  napi_value result = xattr_read(env, p, NULL);
  free(p);
  return result;
}

static napi_value get_xattr(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) {
    napi_throw_type_error(env, NULL, "getXattr(path, name)");
    return NULL;
  }
  char *p = get_cstr(env, argv[0], "path");
  if (!p) return NULL;
  char *name = get_cstr(env, argv[1], "name");
  if (!name) {
    free(p);
    return NULL;
  }
  napi_value result = xattr_read(env, p, name);
  free(p);
  free(name);
  return result;
}

static napi_value set_xattr(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3) {
    napi_throw_type_error(env, NULL, "setXattr(path, name, value)");
    return NULL;
  }
  bool is_buf = false;
  napi_is_buffer(env, argv[2], &is_buf);
  if (!is_buf) {
    napi_throw_type_error(env, NULL, "setXattr: value must be a Buffer");
    return NULL;
  }
  void *data;
  size_t len;
  CHECK(napi_get_buffer_info(env, argv[2], &data, &len));
  char *p = get_cstr(env, argv[0], "path");
  if (!p) return NULL;
  char *name = get_cstr(env, argv[1], "name");
  if (!name) {
    free(p);
    return NULL;
  }
  napi_value result = NULL;
  if (lsetxattr(p, name, len ? data : "", len, 0) != 0) result = throw_errno(env, errno, "lsetxattr", p);
  free(p);
  free(name);
  return result;
}

static napi_value do_mknod(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 4) {
    napi_throw_type_error(env, NULL, "mknod(path, mode, major, minor)");
    return NULL;
  }
  int64_t mode, maj, min;
  if (get_i64(env, argv[1], &mode) || get_i64(env, argv[2], &maj) || get_i64(env, argv[3], &min)) {
    napi_throw_type_error(env, NULL, "mknod: mode and device numbers must be numbers");
    return NULL;
  }
  char *p = get_cstr(env, argv[0], "path");
  if (!p) return NULL;
  napi_value result = NULL;
  if (mknod(p, (mode_t)mode, makedev((unsigned)maj, (unsigned)min)) != 0) result = throw_errno(env, errno, "mknod", p);
  free(p);
  return result;
}

static napi_value dev_split(napi_env env, napi_callback_info info) {
  /* devSplit(rdev) -> [major, minor] with glibc's encoding */
  int64_t rdev;
  if (i64_arg(env, info, "devSplit(rdev)", &rdev)) return NULL;
  napi_value arr, a, b;
  CHECK(napi_create_array_with_length(env, 2, &arr));
  CHECK(napi_create_uint32(env, major((dev_t)rdev), &a));
  CHECK(napi_create_uint32(env, minor((dev_t)rdev), &b));
  napi_set_element(env, arr, 0, a);
  napi_set_element(env, arr, 1, b);
  return arr;
}

static napi_value tune_malloc(napi_env env, napi_callback_info info) {
  /* tuneMalloc(mmapThreshold, arenaMax) -> true when applied (glibc), false elsewhere.
     A fixed mmap threshold turns off glibc's dynamic one, which after the first large buffer is
     freed serves every later buffer up to that size (32 MiB at most) from the heap arenas, where
     freed memory stays resident; fewer arenas bound the same retention per thread. */
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int64_t threshold, arenas;
  if (argc < 2 || get_i64(env, argv[0], &threshold) || get_i64(env, argv[1], &arenas)) {
    napi_throw_type_error(env, NULL, "tuneMalloc(mmapThreshold, arenaMax)");
    return NULL;
  }
  int ok = 0;
#ifdef __GLIBC__
  ok = 1;
  if (threshold > 0 && !mallopt(M_MMAP_THRESHOLD, (int)threshold)) ok = 0;
  if (arenas > 0 && !mallopt(M_ARENA_MAX, (int)arenas)) ok = 0;
#endif
  napi_value result;
  CHECK(napi_get_boolean(env, ok, &result));
  return result;
}

static napi_value will_need(napi_env env, napi_callback_info info) {
  /* willNeed(path): asks the kernel to start reading the whole file into the page cache
     (posix_fadvise WILLNEED) and returns at once; false when the file can't be opened. */
  char *p = path_arg(env, info, "willNeed(path)");
  if (!p) return NULL;
  int ok = 0;
  int fd = open(p, O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    ok = posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED) == 0;
    close(fd);
  }
  free(p);
  napi_value result;
  CHECK(napi_get_boolean(env, ok, &result));
  return result;
}

/* willNeedMany(paths: Array<Buffer | string>) -> Promise<number>: willNeed for each path, in
   libuv's thread pool (opening a file and queueing its readahead can wait on the disk): the
   backup's walk asks for the small files it is about to hand to the workers, so that their reads
   find the page cache filled instead of each waiting a disk round trip. Resolves with how many
   files were advised; paths that can't be opened are skipped. O_NONBLOCK: a path that became a
   FIFO since it was stat'ed must not block the thread; O_NOFOLLOW: nor lead elsewhere. */
typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  char **paths;
  size_t n;
  double advised;
} readahead_job;

static void readahead_free(readahead_job *job) {
  for (size_t i = 0; i < job->n; i++) free(job->paths[i]);
  free(job->paths);
  free(job);
}

static void readahead_execute(napi_env env, void *data) {
  readahead_job *job = data;
  for (size_t i = 0; i < job->n; i++) {
    int fd = open(job->paths[i], O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) continue;
    if (posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED) == 0) job->advised++;
    close(fd);
  }
}

static void readahead_complete(napi_env env, napi_status status, void *data) {
  readahead_job *job = data;
  napi_value n;
  if (napi_create_double(env, job->advised, &n) == napi_ok) napi_resolve_deferred(env, job->deferred, n);
  napi_delete_async_work(env, job->work);
  readahead_free(job);
}

static napi_value will_need_many(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  bool is_array = false;
  uint32_t n = 0;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || napi_is_array(env, argv[0], &is_array) != napi_ok || !is_array ||
      napi_get_array_length(env, argv[0], &n) != napi_ok) {
    napi_throw_type_error(env, NULL, "willNeedMany(paths)");
    return NULL;
  }
  readahead_job *job = calloc(1, sizeof *job);
  if (!job || !(job->paths = calloc(n ? n : 1, sizeof(char *)))) {
    free(job);
    napi_throw_error(env, NULL, "willNeedMany: out of memory");
    return NULL;
  }
  for (uint32_t i = 0; i < n; i++) {
    napi_value v;
    if (napi_get_element(env, argv[0], i, &v) != napi_ok || !(job->paths[i] = get_cstr(env, v, "path"))) {
      readahead_free(job);
      return NULL;
    }
    job->n = i + 1;
  }
  napi_value promise;
  if (queue_promise_work(env, "lifeboat:willNeedMany", readahead_execute, readahead_complete, job, &job->work,
                         &job->deferred, &promise) != napi_ok) {
    readahead_free(job);
    napi_throw_error(env, NULL, "willNeedMany: N-API call failed");
    return NULL;
  }
  return promise;
}

static napi_value raise_nofile(napi_env env, napi_callback_info info) {
  /* raiseNoFileLimit(max) -> the soft RLIMIT_NOFILE after raising it to the hard limit (at most
     max), as Go programs do at start; the unchanged soft limit when it can't be raised. */
  int64_t cap;
  if (i64_arg(env, info, "raiseNoFileLimit(max)", &cap)) return NULL;
  struct rlimit rl;
  double soft = -1;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    soft = rl.rlim_cur == RLIM_INFINITY ? (double)cap : (double)rl.rlim_cur;
    rlim_t want = rl.rlim_max;
    if (cap > 0 && (want == RLIM_INFINITY || want > (rlim_t)cap)) want = (rlim_t)cap;
    if (rl.rlim_cur != RLIM_INFINITY && want > rl.rlim_cur) {
      rl.rlim_cur = want;
      if (setrlimit(RLIMIT_NOFILE, &rl) == 0) soft = (double)want;
    }
  }
  napi_value result;
  CHECK(napi_create_double(env, soft, &result));
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"utimesNs", NULL, utimes_ns, NULL, NULL, NULL, napi_default, NULL},
    {"listXattrs", NULL, list_xattrs, NULL, NULL, NULL, napi_default, NULL},
    {"getXattr", NULL, get_xattr, NULL, NULL, NULL, napi_default, NULL},
    {"setXattr", NULL, set_xattr, NULL, NULL, NULL, napi_default, NULL},
    {"mknod", NULL, do_mknod, NULL, NULL, NULL, napi_default, NULL},
    {"devSplit", NULL, dev_split, NULL, NULL, NULL, napi_default, NULL},
    {"tuneMalloc", NULL, tune_malloc, NULL, NULL, NULL, napi_default, NULL},
    {"willNeed", NULL, will_need, NULL, NULL, NULL, napi_default, NULL},
    {"willNeedMany", NULL, will_need_many, NULL, NULL, NULL, napi_default, NULL},
    {"raiseNoFileLimit", NULL, raise_nofile, NULL, NULL, NULL, napi_default, NULL},
    {"argon2idAvailable", NULL, kdf_argon2id_available, NULL, NULL, NULL, napi_default, NULL},
    {"argon2id", NULL, kdf_argon2id, NULL, NULL, NULL, napi_default, NULL},
    {"cdcScan", NULL, cdc_scan, NULL, NULL, NULL, napi_default, NULL},
    {"blobNativeAvailable", NULL, blob_native_available, NULL, NULL, NULL, napi_default, NULL},
    {"sealBlob", NULL, blob_seal, NULL, NULL, NULL, napi_default, NULL},
    {"openBlob", NULL, blob_open, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
