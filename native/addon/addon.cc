// Module entry and the core functions: build info, threads, direct GEMM access (tests, benches).
#include <napi.h>
#include "async.h"
#include "checks.h"
#include "registry.h"
#include "farm/gemm.h"

namespace farm::addon {

static Napi::Value BuildInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("version", "0.1.0");
  o.Set("gemm", gemm_impl_name(gemm_impl()));
  Napi::Array impls = Napi::Array::New(env);
  uint32_t k = 0;
  for (GemmImpl g : {GemmImpl::Portable, GemmImpl::Avx2, GemmImpl::Avx512, GemmImpl::Blas})
    if (gemm_impl_available(g)) impls.Set(k++, gemm_impl_name(g));
  o.Set("gemmImpls", impls);
#ifdef _OPENMP
  o.Set("openmp", true);
#else
  o.Set("openmp", false);
#endif
#if FARM_HAVE_CUDA
  o.Set("cuda", true);  // compiled in; cudaInfo() says whether a device can run it
#else
  o.Set("cuda", false);
#endif
  return o;
}

static Napi::Value SetGemmImpl(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw error(env, "setGemmImpl(name): name must be a string");
  std::string name = info[0].As<Napi::String>();
  for (GemmImpl g : {GemmImpl::Auto, GemmImpl::Portable, GemmImpl::Avx2, GemmImpl::Avx512, GemmImpl::Blas}) {
    if (name == gemm_impl_name(g)) {
      if (!gemm_impl_available(g)) throw error(env, "GEMM implementation '" + name + "' is not available in this build/CPU");
      set_gemm_impl(g);
      return env.Undefined();
    }
  }
  throw error(env, "unknown GEMM implementation '" + name + "' (auto, portable, avx2, avx512, blas)");
}

// sgemm({transA, transB, M, N, K, A, B, C, beta, threads}) — synchronous; for tests and benchmarks.
static Napi::Value Sgemm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = object_arg(info, 0, "sgemm options");
  bool ta = bool_field(o, "transA", false), tb = bool_field(o, "transB", false);
  int M = (int)int_field(o, "M", 0, true, 1, 1 << 24), N = (int)int_field(o, "N", 0, true, 1, 1 << 24),
      K = (int)int_field(o, "K", 0, true, 1, 1 << 24);
  float beta = (float)num_field(o, "beta", 0.0);
  if (beta != 0.f && beta != 1.f) throw error(env, "beta must be 0 or 1");
  int threads = (int)int_field(o, "threads", 1, false, 1, 1024);
  const float* A = f32(o.Get("A"), "A", (int64_t)M * K);
  const float* B = f32(o.Get("B"), "B", (int64_t)K * N);
  float* C = f32(o.Get("C"), "C", (int64_t)M * N);
  // On the native worker thread like every other job: one OpenMP pool in the process.
  NativeExecutor::get().run([&] {
    set_num_threads(threads);
    sgemm(ta, tb, M, N, K, A, ta ? M : K, B, tb ? K : N, beta, C, N);
  });
  return env.Undefined();
}

void RegisterCore(Napi::Env env, Napi::Object exports) {
  exports.Set("buildInfo", Napi::Function::New(env, BuildInfo));
  exports.Set("setGemmImpl", Napi::Function::New(env, SetGemmImpl));
  exports.Set("sgemm", Napi::Function::New(env, Sgemm));
}

}  // namespace farm::addon

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  farm::addon::RegisterCore(env, exports);
  farm::addon::RegisterModel(env, exports);
  farm::addon::RegisterRL(env, exports);
  farm::addon::RegisterGenerate(env, exports);
  farm::addon::RegisterKernels(env, exports);
  farm::addon::RegisterCuda(env, exports);
  farm::addon::RegisterProfile(env, exports);
  return exports;
}
NODE_API_MODULE(farm, Init)
