{
  "targets": [
    {
      "target_name": "lifeboat_native",
      "sources": ["native/lifeboat_native.c", "native/kdf.c", "native/cdc.c", "native/blob.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "defines": ["NAPI_VERSION=8"],
      "libraries": ["-ldl"]
    }
  ]
}
