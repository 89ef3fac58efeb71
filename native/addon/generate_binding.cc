// Generation bindings (KV cache, batched sampling, forked caches): filled in by the generation work.
#include "registry.h"
namespace farm::addon {
void RegisterGenerate(Napi::Env, Napi::Object) {}
}  // namespace farm::addon
