// Each binding file registers its functions on the module's exports.
#pragma once
#include <napi.h>

namespace farm::addon {
void RegisterCore(Napi::Env env, Napi::Object exports);   // addon.cc: version, threads, GEMM
void RegisterModel(Napi::Env env, Napi::Object exports);  // model_binding.cc: Model, Optimizer
void RegisterRL(Napi::Env env, Napi::Object exports);     // rl_binding.cc: GAE, PPO/DPO/BT losses, KL
void RegisterGenerate(Napi::Env env, Napi::Object exports);  // generate_binding.cc: KV cache, sampling
void RegisterKernels(Napi::Env env, Napi::Object exports);   // kernel_binding.cc: each kernel, for gradient checks
void RegisterCuda(Napi::Env env, Napi::Object exports);      // cuda_binding.cc: cudaInfo, CudaModel, CudaAdamW, ...
void RegisterProfile(Napi::Env env, Napi::Object exports);   // profile_binding.cc: kernel profiler, trace, peaks
}  // namespace farm::addon
