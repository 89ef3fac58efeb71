// The CUDA model binding, shared by cuda_binding.cc (Model methods) and cuda_session_binding.cc (decoding over
// a CudaModel's device weights). Only in builds with the CUDA backend (FARM_HAVE_CUDA).
#pragma once
#include <napi.h>
#include <atomic>
#include <functional>
#include <memory>
#include <vector>
#include "cuda/model.h"

namespace farm::addon {

class CudaModelWrap : public Napi::ObjectWrap<CudaModelWrap> {
 public:
  static Napi::FunctionReference ctor;
  static Napi::Function Define(Napi::Env env);
  explicit CudaModelWrap(const Napi::CallbackInfo& info);

  std::shared_ptr<cuda::DeviceModel> model() const { return model_; }
  // Busy while an async call runs; a second call while busy throws.
  void acquire(Napi::Env env);
  std::function<void()> releaser();
  void check_idle(Napi::Env env) const;
  bool busy() const { return busy_->load(); }

 private:
  struct Batch {
    int B = 0, T = 0;
    std::vector<int32_t> tokens, targets;
    bool has_targets = false;
  };
  Batch parse_batch(Napi::Object o);
  Napi::Value views(Napi::Env env, const FloatBufferPtr& buf, Napi::Reference<Napi::ArrayBuffer>& cache);
  Napi::Value Config(const Napi::CallbackInfo& info);
  Napi::Value NumParams(const Napi::CallbackInfo& info);
  Napi::Value Parameters(const Napi::CallbackInfo& info);
  Napi::Value Gradients(const Napi::CallbackInfo& info);
  Napi::Value Forward(const Napi::CallbackInfo& info);
  Napi::Value Backward(const Napi::CallbackInfo& info);
  Napi::Value ForwardBackward(const Napi::CallbackInfo& info);
  Napi::Value ZeroGrad(const Napi::CallbackInfo& info);
  Napi::Value GradNorm(const Napi::CallbackInfo& info);
  Napi::Value ActivationBytes(const Napi::CallbackInfo& info);
  Napi::Value IsBusy(const Napi::CallbackInfo& info);
  Napi::Value Backend(const Napi::CallbackInfo& info);

  std::shared_ptr<cuda::DeviceModel> model_;
  std::shared_ptr<std::atomic<bool>> busy_ = std::make_shared<std::atomic<bool>>(false);
  Napi::Reference<Napi::ArrayBuffer> params_ab_, grads_ab_;
};

void RegisterCudaSession(Napi::Env env, Napi::Object exports);  // cuda_session_binding.cc

}  // namespace farm::addon
