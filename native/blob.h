#ifndef LIFEBOAT_BLOB_H
#define LIFEBOAT_BLOB_H
#include <node_api.h>

napi_value blob_native_available(napi_env env, napi_callback_info info);
napi_value blob_seal(napi_env env, napi_callback_info info);
napi_value blob_open(napi_env env, napi_callback_info info);

#endif
