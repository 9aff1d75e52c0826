#ifndef LIFEBOAT_KDF_H
#define LIFEBOAT_KDF_H
#include <node_api.h>

napi_value kdf_argon2id_available(napi_env env, napi_callback_info info);
napi_value kdf_argon2id(napi_env env, napi_callback_info info);

#endif
