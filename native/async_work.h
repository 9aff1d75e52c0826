#ifndef LIFEBOAT_ASYNC_WORK_H
#define LIFEBOAT_ASYNC_WORK_H
#include <node_api.h>

/* Creates a promise and queues `execute` (libuv's thread pool) then `complete` (the JS thread,
   which settles `*deferred`) for `data`. napi_ok, or the first failing call's status: the caller
   then still owns `data` and throws. */
static inline napi_status queue_promise_work(napi_env env, const char *name, napi_async_execute_callback execute,
                                             napi_async_complete_callback complete, void *data, napi_async_work *work,
                                             napi_deferred *deferred, napi_value *promise) {
  napi_value resource_name;
  napi_status s;
  if ((s = napi_create_promise(env, deferred, promise)) != napi_ok) return s;
  if ((s = napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resource_name)) != napi_ok) return s;
  if ((s = napi_create_async_work(env, NULL, resource_name, execute, complete, data, work)) != napi_ok) return s;
  if ((s = napi_queue_async_work(env, *work)) != napi_ok) {
    napi_delete_async_work(env, *work);
    return s;
  }
  return napi_ok;
}

#endif
