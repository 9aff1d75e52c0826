#ifndef LIFEBOAT_CDC_H
#define LIFEBOAT_CDC_H
#include <node_api.h>

napi_value cdc_scan(napi_env env, napi_callback_info info);

#endif
