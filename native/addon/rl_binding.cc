// RL kernels' bindings (GAE, whitening, KL, PPO/value/BT/DPO losses): filled in by the RL work.
#include "registry.h"
namespace farm::addon {
void RegisterRL(Napi::Env, Napi::Object) {}
}  // namespace farm::addon
