{
  "targets": [{
    "target_name": "farm",
    "sources": ["<!@(node scripts/native-sources.mjs)"],
    "include_dirs": ["<!@(node -p \"require('node-addon-api').include\")", "native/include", "native/src"],
    "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
    "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
    "cflags_cc": ["-std=c++17", "-O3", "-fexceptions", "-fno-math-errno", "-fno-trapping-math", "-fopenmp"],
    "ldflags": ["-fopenmp", "-Wl,-z,nodelete"]
  }]
}
