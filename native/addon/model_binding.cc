#include "registry.h"
namespace farm::addon {
void RegisterModel(Napi::Env, Napi::Object) {}
}  // namespace farm::addon
