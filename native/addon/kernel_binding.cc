// Direct, synchronous access to each CPU kernel (forward and backward) for gradient checks and micro-benches.
// Shapes are passed explicitly and every buffer length is checked against them.
#include <napi.h>
#include "checks.h"
#include "farm/kernels.h"
#include "registry.h"

namespace farm::addon {
namespace {

int dim(Napi::Object o, const char* k) { return (int)int_field(o, k, 0, true, 1, 1 << 24); }

Napi::Value Embedding(const Napi::CallbackInfo& info) {
  Napi::Object o = object_arg(info, 0, "embedding options");
  int BT = dim(o, "BT"), C = dim(o, "C"), V = dim(o, "V");
  const int32_t* tok = i32(o.Get("tokens"), "tokens", BT);
  for (int i = 0; i < BT; i++)
    if (tok[i] < 0 || tok[i] >= V) throw error(info.Env(), "tokens[" + std::to_string(i) + "] out of range");
  const auto& K = cpu_kernels();
  if (bool_field(o, "backward", false))
    K.embedding_backward(f32(o.Get("dwte"), "dwte", (int64_t)V * C), f32(o.Get("dout"), "dout", (int64_t)BT * C), tok, BT, C);
  else
    K.embedding_forward(f32(o.Get("out"), "out", (int64_t)BT * C), tok, f32(o.Get("wte"), "wte", (int64_t)V * C), BT, C);
  return info.Env().Undefined();
}

Napi::Value Rmsnorm(const Napi::CallbackInfo& info) {
  Napi::Object o = object_arg(info, 0, "rmsnorm options");
  int BT = dim(o, "BT"), C = dim(o, "C");
  const auto& K = cpu_kernels();
  int64_t n = (int64_t)BT * C;
  float* rstd = f32(o.Get("rstd"), "rstd", BT);
  const float* x = f32(o.Get("x"), "x", n);
  const float* w = f32(o.Get("weight"), "weight", C);
  if (bool_field(o, "backward", false))
    K.rmsnorm_backward(f32(o.Get("dx"), "dx", n), f32(o.Get("dweight"), "dweight", C), f32(o.Get("dout"), "dout", n), x, w,
                       rstd, BT, C, bool_field(o, "accumulate", false));
  else
    K.rmsnorm_forward(f32(o.Get("out"), "out", n), rstd, x, w, BT, C, (float)num_field(o, "eps", 1e-6));
  return info.Env().Undefined();
}

Napi::Value Rope(const Napi::CallbackInfo& info) {
  Napi::Object o = object_arg(info, 0, "rope options");
  int B = dim(o, "B"), T = dim(o, "T"), H = dim(o, "H"), HD = dim(o, "HD");
  if (HD % 2) throw error(info.Env(), "HD must be even");
  cpu_kernels().rope(f32(o.Get("x"), "x", (int64_t)B * T * H * HD), f32(o.Get("cos"), "cos", (int64_t)T * HD / 2),
                     f32(o.Get("sin"), "sin", (int64_t)T * HD / 2), B, T, H, HD, bool_field(o, "inverse", false));
  return info.Env().Undefined();
}

Napi::Value Attention(const Napi::CallbackInfo& info) {
  Napi::Object o = object_arg(info, 0, "attention options");
  int B = dim(o, "B"), T = dim(o, "T"), NH = dim(o, "NH"), NKV = dim(o, "NKV"), HD = dim(o, "HD");
  if (NH % NKV) throw error(info.Env(), "NH must be a multiple of NKV");
  int64_t nq = (int64_t)B * T * NH * HD, nkv = (int64_t)B * T * NKV * HD, na = (int64_t)B * NH * T * T;
  const float *q = f32(o.Get("q"), "q", nq), *k = f32(o.Get("k"), "k", nkv), *v = f32(o.Get("v"), "v", nkv);
  float* att = f32(o.Get("att"), "att", na);
  const auto& K = cpu_kernels();
  if (bool_field(o, "backward", false))
    K.attention_backward(f32(o.Get("dq"), "dq", nq), f32(o.Get("dk"), "dk", nkv), f32(o.Get("dv"), "dv", nkv),
                         f32(o.Get("dout"), "dout", nq), att, q, k, v, B, T, NH, NKV, HD);
  else
    K.attention_forward(f32(o.Get("out"), "out", nq), att, q, k, v, B, T, NH, NKV, HD);
  return info.Env().Undefined();
}

Napi::Value Swiglu(const Napi::CallbackInfo& info) {
  Napi::Object o = object_arg(info, 0, "swiglu options");
  int n = dim(o, "n");
  const float *gate = f32(o.Get("gate"), "gate", n), *up = f32(o.Get("up"), "up", n);
  const auto& K = cpu_kernels();
  if (bool_field(o, "backward", false))
    K.swiglu_backward(f32(o.Get("dgate"), "dgate", n), f32(o.Get("dup"), "dup", n), f32(o.Get("dh"), "dh", n), gate, up, n);
  else
    K.swiglu_forward(f32(o.Get("h"), "h", n), gate, up, n);
  return info.Env().Undefined();
}

// Forward fills logp/entropy/lse; backward overwrites `logits` with dL/dlogits.
Napi::Value Logsoftmax(const Napi::CallbackInfo& info) {
  Napi::Object o = object_arg(info, 0, "logsoftmax options");
  int BT = dim(o, "BT"), V = dim(o, "V");
  const int32_t* tg = i32(o.Get("targets"), "targets", BT);
  for (int i = 0; i < BT; i++)
    if (tg[i] >= V) throw error(info.Env(), "targets[" + std::to_string(i) + "] out of range");
  float* logits = f32(o.Get("logits"), "logits", (int64_t)BT * V);
  float *lse = f32(o.Get("lse"), "lse", BT), *entropy = f32(o.Get("entropy"), "entropy", BT);
  const auto& K = cpu_kernels();
  if (bool_field(o, "backward", false)) {
    Napi::Value dl = o.Get("dlogp"), de = o.Get("dentropy");
    K.logsoftmax_backward(logits, dl.IsUndefined() ? nullptr : f32(dl, "dlogp", BT),
                          de.IsUndefined() ? nullptr : f32(de, "dentropy", BT), lse, entropy, tg, BT, V);
  } else {
    K.logsoftmax_forward(f32(o.Get("logp"), "logp", BT), entropy, lse, logits, tg, BT, V);
  }
  return info.Env().Undefined();
}

}  // namespace

void RegisterKernels(Napi::Env env, Napi::Object exports) {
  Napi::Object k = Napi::Object::New(env);
  k.Set("embedding", Napi::Function::New(env, Embedding));
  k.Set("rmsnorm", Napi::Function::New(env, Rmsnorm));
  k.Set("rope", Napi::Function::New(env, Rope));
  k.Set("attention", Napi::Function::New(env, Attention));
  k.Set("swiglu", Napi::Function::New(env, Swiglu));
  k.Set("logsoftmax", Napi::Function::New(env, Logsoftmax));
  exports.Set("kernels", k);
}

}  // namespace farm::addon
