// Bindings of the CUDA backend: cudaInfo() (always present: says whether the backend was built and why it
// cannot run), and when built: CudaModel / CudaAdamW (the JS methods of Model / AdamW, on the device),
// CudaDecodeSession (cuda_session_binding.cc) and cudaKernels (each device kernel on host arrays, for the
// parity tests). Every argument is checked here, as in the CPU bindings.
#include <napi.h>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>
#include "async.h"
#include "checks.h"
#include "registry.h"
#if FARM_HAVE_CUDA
#include "cuda/decode.h"
#include "cuda/model.h"
#include "cuda/ops.h"
#include "cuda/runtime.h"
#include "cuda_binding.h"
#include "farm/generate.h"
#endif

namespace farm::addon {

#if !FARM_HAVE_CUDA

static Napi::Value CudaInfo(const Napi::CallbackInfo& info) {
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("compiled", false);
  o.Set("emulated", false);
  o.Set("available", false);
  o.Set("reason",
        "this build has no CUDA backend: nvcc was not found when the addon was built, or FARM_CUDA=0 (install the CUDA "
        "toolkit and run `npm run build`)");
  return o;
}

void RegisterCuda(Napi::Env env, Napi::Object exports) { exports.Set("cudaInfo", Napi::Function::New(env, CudaInfo)); }

#else

namespace {

Napi::Value CudaInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const cuda::DeviceInfo& d = cuda::device_info();
  Napi::Object o = Napi::Object::New(env);
  o.Set("compiled", true);
  o.Set("emulated", d.emulated);
  o.Set("available", d.available);
  if (!d.available) o.Set("reason", d.reason);
  o.Set("gemm", cuda::gemm_precision_name(cuda::gemm_precision()));
  if (!d.name.empty()) {
    Napi::Object dv = Napi::Object::New(env);
    dv.Set("index", d.device);
    dv.Set("name", d.name);
    dv.Set("computeCapability", std::to_string(d.cc_major) + "." + std::to_string(d.cc_minor));
    dv.Set("memoryBytes", (double)d.total_memory);
    dv.Set("multiprocessors", d.multiprocessors);
    dv.Set("clockMHz", d.clock_khz / 1000.0);
    dv.Set("memoryClockMHz", d.memory_clock_khz / 1000.0);
    dv.Set("memoryBusBits", d.memory_bus_bits);
    dv.Set("driverVersion", d.driver_version);
    dv.Set("runtimeVersion", d.runtime_version);
    o.Set("device", dv);
  }
  return o;
}

Napi::Value SetCudaGemm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw error(env, "setCudaGemm(precision): precision must be 'tf32' or 'fp32'");
  std::string s = info[0].As<Napi::String>();
  if (s == "tf32") cuda::set_gemm_precision(cuda::GemmPrecision::TF32);
  else if (s == "fp32") cuda::set_gemm_precision(cuda::GemmPrecision::FP32);
  else throw error(env, "unknown CUDA GEMM precision '" + s + "' (tf32, fp32)");
  return env.Undefined();
}

// Runs device work on the native worker thread (the thread every device job uses); rethrows as a JS Error.
void on_device(Napi::Env env, const std::function<void()>& f) {
  try {
    NativeExecutor::get().run([&] {
      cuda::require_device();
      f();
    });
  } catch (const std::exception& e) {
    throw error(env, e.what());
  }
}

// Host arrays staged to the device for one kernel call; outputs are copied back by finish().
class Stage {
 public:
  template <typename T>
  T* put(T* host, size_t n, bool output) {
    auto d = std::make_shared<cuda::DeviceArray<T>>(n, "kernel argument");
    d->upload(host, n);
    keep_.push_back(d);
    if (output) back_.push_back([d, host, n] { d->download(host, n); });
    return d->data();
  }
  void finish() {
    for (auto& b : back_) b();
    cuda::synchronize("kernel test");
  }

 private:
  std::vector<std::shared_ptr<void>> keep_;
  std::vector<std::function<void()>> back_;
};

int dim(Napi::Object o, const char* k) { return (int)int_field(o, k, 0, true, 1, 1 << 24); }

// cudaKernels.gemm({transA, transB, M, N, K, A, B, C, beta, precision})
Napi::Value KGemm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = object_arg(info, 0, "gemm options");
  bool ta = bool_field(o, "transA", false), tb = bool_field(o, "transB", false);
  int M = dim(o, "M"), N = dim(o, "N"), K = dim(o, "K");
  float beta = (float)num_field(o, "beta", 0.0);
  if (beta != 0.f && beta != 1.f) throw error(env, "beta must be 0 or 1");
  Napi::Value pv = o.Get("precision");
  cuda::GemmPrecision prec = cuda::gemm_precision();
  if (pv.IsString()) {
    std::string s = pv.As<Napi::String>();
    if (s == "fp32") prec = cuda::GemmPrecision::FP32;
    else if (s == "tf32") prec = cuda::GemmPrecision::TF32;
    else throw error(env, "precision must be 'tf32' or 'fp32'");
  }
  int tile = (int)int_field(o, "tile", 0, false, 0, 128);
  if (tile != 0 && tile != 64 && tile != 128) throw error(env, "tile must be 64 or 128");
  float* A = f32(o.Get("A"), "A", (int64_t)M * K);
  float* B = f32(o.Get("B"), "B", (int64_t)K * N);
  float* C = f32(o.Get("C"), "C", (int64_t)M * N);
  on_device(env, [&] {
    struct TileScope {  // the override holds for this call only
      explicit TileScope(int t) { cuda::set_gemm_tile(t); }
      ~TileScope() { cuda::set_gemm_tile(0); }
    } scope(tile);
    Stage s;
    const float *dA = s.put(A, (size_t)M * K, false), *dB = s.put(B, (size_t)K * N, false);
    float* dC = s.put(C, (size_t)M * N, true);
    cuda::gemm(prec, ta, tb, M, N, K, dA, ta ? M : K, dB, tb ? K : N, beta, dC, N);
    s.finish();
  });
  return env.Undefined();
}

Napi::Value KEmbedding(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = object_arg(info, 0, "embedding options");
  int BT = dim(o, "BT"), C = dim(o, "C"), V = dim(o, "V");
  int32_t* tok = i32(o.Get("tokens"), "tokens", BT);
  for (int i = 0; i < BT; i++)
    if (tok[i] < 0 || tok[i] >= V) throw error(env, "tokens[" + std::to_string(i) + "] out of range");
  const bool backward = bool_field(o, "backward", false), sorted = bool_field(o, "sorted", false);
  if (backward) {
    float* dwte = f32(o.Get("dwte"), "dwte", (int64_t)V * C);
    float* dout = f32(o.Get("dout"), "dout", (int64_t)BT * C);
    on_device(env, [&] {
      Stage s;
      float* d_dwte = s.put(dwte, (size_t)V * C, true);
      const float* d_dout = s.put(dout, (size_t)BT * C, false);
      int32_t* d_tok = s.put(tok, BT, false);
      if (!sorted) {
        cuda::kernels().embedding_backward(d_dwte, d_dout, d_tok, BT, C);
      } else {
        std::vector<int32_t> order(BT), start, token;
        for (int i = 0; i < BT; i++) order[i] = i;
        std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return tok[a] < tok[b]; });
        for (int j = 0; j < BT; j++)
          if (j == 0 || tok[order[j]] != tok[order[j - 1]]) { start.push_back(j); token.push_back(tok[order[j]]); }
        const int nseg = (int)token.size();
        start.push_back(BT);
        cuda::embedding_backward_sorted(d_dwte, d_dout, s.put(order.data(), order.size(), false),
                                        s.put(start.data(), start.size(), false), s.put(token.data(), token.size(), false),
                                        nseg, C);
      }
      s.finish();
    });
  } else {
    float* out = f32(o.Get("out"), "out", (int64_t)BT * C);
    float* wte = f32(o.Get("wte"), "wte", (int64_t)V * C);
    on_device(env, [&] {
      Stage s;
      float* d_out = s.put(out, (size_t)BT * C, true);
      cuda::kernels().embedding_forward(d_out, s.put(tok, BT, false), s.put(wte, (size_t)V * C, false), BT, C);
      s.finish();
    });
  }
  return env.Undefined();
}

Napi::Value KRmsnorm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = object_arg(info, 0, "rmsnorm options");
  int BT = dim(o, "BT"), C = dim(o, "C");
  const int64_t n = (int64_t)BT * C;
  float* rstd = f32(o.Get("rstd"), "rstd", BT);
  float* x = f32(o.Get("x"), "x", n);
  float* w = f32(o.Get("weight"), "weight", C);
  if (bool_field(o, "backward", false)) {
    float *dx = f32(o.Get("dx"), "dx", n), *dw = f32(o.Get("dweight"), "dweight", C), *dout = f32(o.Get("dout"), "dout", n);
    bool acc = bool_field(o, "accumulate", false);
    on_device(env, [&] {
      Stage s;
      float *d_dx = s.put(dx, n, true), *d_dw = s.put(dw, C, true);
      cuda::kernels().rmsnorm_backward(d_dx, d_dw, s.put(dout, n, false), s.put(x, n, false), s.put(w, C, false),
                                       s.put(rstd, BT, false), BT, C, acc);
      s.finish();
    });
  } else {
    float* out = f32(o.Get("out"), "out", n);
    float eps = (float)num_field(o, "eps", 1e-6);
    on_device(env, [&] {
      Stage s;
      float *d_out = s.put(out, n, true), *d_rstd = s.put(rstd, BT, true);
      cuda::kernels().rmsnorm_forward(d_out, d_rstd, s.put(x, n, false), s.put(w, C, false), BT, C, eps);
      s.finish();
    });
  }
  return env.Undefined();
}

Napi::Value KRope(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = object_arg(info, 0, "rope options");
  int B = dim(o, "B"), T = dim(o, "T"), H = dim(o, "H"), HD = dim(o, "HD");
  if (HD % 2) throw error(env, "HD must be even");
  const int64_t n = (int64_t)B * T * H * HD, nr = (int64_t)T * HD / 2;
  float *x = f32(o.Get("x"), "x", n), *cs = f32(o.Get("cos"), "cos", nr), *sn = f32(o.Get("sin"), "sin", nr);
  bool inv = bool_field(o, "inverse", false);
  on_device(env, [&] {
    Stage s;
    float* d_x = s.put(x, n, true);
    cuda::kernels().rope(d_x, s.put(cs, nr, false), s.put(sn, nr, false), B, T, H, HD, inv);
    s.finish();
  });
  return env.Undefined();
}

// att: the CUDA saved state, attentionSavedFloats(B, T, NH) floats (not the CPU's [B,NH,T,T]).
Napi::Value KAttention(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = object_arg(info, 0, "attention options");
  int B = dim(o, "B"), T = dim(o, "T"), NH = dim(o, "NH"), NKV = dim(o, "NKV"), HD = dim(o, "HD");
  if (NH % NKV) throw error(env, "NH must be a multiple of NKV");
  if (HD % 2 || HD > cuda::kMaxHeadDim) throw error(env, "HD must be even and at most " + std::to_string(cuda::kMaxHeadDim));
  const int64_t nq = (int64_t)B * T * NH * HD, nkv = (int64_t)B * T * NKV * HD;
  const int64_t na = (int64_t)cuda::attention_saved_floats(B, T, NH);
  float *q = f32(o.Get("q"), "q", nq), *k = f32(o.Get("k"), "k", nkv), *v = f32(o.Get("v"), "v", nkv);
  float* att = f32(o.Get("att"), "att", na);
  if (bool_field(o, "backward", false)) {
    float *dq = f32(o.Get("dq"), "dq", nq), *dk = f32(o.Get("dk"), "dk", nkv), *dv = f32(o.Get("dv"), "dv", nkv),
          *dout = f32(o.Get("dout"), "dout", nq);
    on_device(env, [&] {
      Stage s;
      float *d_dq = s.put(dq, nq, true), *d_dk = s.put(dk, nkv, true), *d_dv = s.put(dv, nkv, true);
      cuda::kernels().attention_backward(d_dq, d_dk, d_dv, s.put(dout, nq, false), s.put(att, na, true), s.put(q, nq, false),
                                         s.put(k, nkv, false), s.put(v, nkv, false), B, T, NH, NKV, HD);
      s.finish();
    });
  } else {
    float* out = f32(o.Get("out"), "out", nq);
    on_device(env, [&] {
      Stage s;
      float *d_out = s.put(out, nq, true), *d_att = s.put(att, na, true);
      cuda::kernels().attention_forward(d_out, d_att, s.put(q, nq, false), s.put(k, nkv, false), s.put(v, nkv, false), B, T,
                                        NH, NKV, HD);
      s.finish();
    });
  }
  return env.Undefined();
}

Napi::Value KSwiglu(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = object_arg(info, 0, "swiglu options");
  int n = dim(o, "n");
  float *gate = f32(o.Get("gate"), "gate", n), *up = f32(o.Get("up"), "up", n);
  if (bool_field(o, "backward", false)) {
    float *dgate = f32(o.Get("dgate"), "dgate", n), *dup = f32(o.Get("dup"), "dup", n), *dh = f32(o.Get("dh"), "dh", n);
    on_device(env, [&] {
      Stage s;
      float *d_dg = s.put(dgate, n, true), *d_du = s.put(dup, n, true);
      cuda::kernels().swiglu_backward(d_dg, d_du, s.put(dh, n, false), s.put(gate, n, false), s.put(up, n, false), n);
      s.finish();
    });
  } else {
    float* h = f32(o.Get("h"), "h", n);
    on_device(env, [&] {
      Stage s;
      float* d_h = s.put(h, n, true);
      cuda::kernels().swiglu_forward(d_h, s.put(gate, n, false), s.put(up, n, false), n);
      s.finish();
    });
  }
  return env.Undefined();
}

Napi::Value KLogsoftmax(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = object_arg(info, 0, "logsoftmax options");
  int BT = dim(o, "BT"), V = dim(o, "V");
  int32_t* tg = i32(o.Get("targets"), "targets", BT);
  for (int i = 0; i < BT; i++)
    if (tg[i] >= V) throw error(env, "targets[" + std::to_string(i) + "] out of range");
  const int64_t n = (int64_t)BT * V;
  float* logits = f32(o.Get("logits"), "logits", n);
  float *lse = f32(o.Get("lse"), "lse", BT), *entropy = f32(o.Get("entropy"), "entropy", BT);
  if (bool_field(o, "backward", false)) {
    Napi::Value dl = o.Get("dlogp"), de = o.Get("dentropy");
    float* dlogp = dl.IsUndefined() ? nullptr : f32(dl, "dlogp", BT);
    float* dent = de.IsUndefined() ? nullptr : f32(de, "dentropy", BT);
    on_device(env, [&] {
      Stage s;
      float* d_z = s.put(logits, n, true);
      cuda::kernels().logsoftmax_backward(d_z, dlogp ? s.put(dlogp, BT, false) : nullptr,
                                          dent ? s.put(dent, BT, false) : nullptr, s.put(lse, BT, false),
                                          s.put(entropy, BT, false), s.put(tg, BT, false), BT, V);
      s.finish();
    });
  } else {
    float* logp = f32(o.Get("logp"), "logp", BT);
    on_device(env, [&] {
      Stage s;
      float *d_lp = s.put(logp, BT, true), *d_ent = s.put(entropy, BT, true), *d_lse = s.put(lse, BT, true);
      cuda::kernels().logsoftmax_forward(d_lp, d_ent, d_lse, s.put(logits, n, false), s.put(tg, BT, false), BT, V);
      s.finish();
    });
  }
  return env.Undefined();
}

// cudaKernels.sample({logits [R*V], V, temperature, topK, topP, u: Float64Array [R], cpu?}) ->
//   {token, logprob, scaledLogprob, sampleLogprob}: the device sampler, or farm::sample_logits when cpu is true.
Napi::Value KSample(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = object_arg(info, 0, "sample options");
  int V = dim(o, "V");
  size_t nz = 0;
  float* z = f32(o.Get("logits"), "logits", -1, &nz);
  if (nz == 0 || nz % V) throw error(env, "logits must hold rows of V values");
  const int R = (int)(nz / V);
  Napi::Value uv = o.Get("u");
  if (!uv.IsTypedArray() || uv.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array ||
      uv.As<Napi::Float64Array>().ElementLength() != (size_t)R)
    throw error(env, "u must be a Float64Array with one value per row");
  const double* u = uv.As<Napi::Float64Array>().Data();
  SampleOptions opt;
  opt.temperature = (float)num_field(o, "temperature", 1.0);
  opt.top_k = (int)int_field(o, "topK", 0, false, 0, 1LL << 31);
  opt.top_p = (float)num_field(o, "topP", 1.0);
  try {
    opt.validate(V);
  } catch (const farm::Error& e) {
    throw error(env, e.what());
  }
  std::vector<TokenRecord> recs(R);
  if (bool_field(o, "cpu", false)) {
    std::vector<float> scratch(V);
    std::vector<int32_t> iscratch(V);
    for (int r = 0; r < R; r++) recs[r] = sample_logits(z + (size_t)r * V, V, opt, u[r], scratch.data(), iscratch.data());
  } else {
    on_device(env, [&] {
      cuda::DeviceArray<float> dz(nz, "logits");
      dz.upload(z, nz);
      std::vector<int32_t> rows(R);
      for (int r = 0; r < R; r++) rows[r] = r;
      cuda::sample_rows(dz.data(), V, rows.data(), R, nullptr, opt, u, recs.data());
    });
  }
  Napi::Object r = Napi::Object::New(env);
  auto tok = Napi::Int32Array::New(env, R);
  auto lp = Napi::Float32Array::New(env, R), slp = Napi::Float32Array::New(env, R), sam = Napi::Float32Array::New(env, R);
  for (int i = 0; i < R; i++) {
    tok[i] = recs[i].token; lp[i] = recs[i].logprob; slp[i] = recs[i].scaled_logprob; sam[i] = recs[i].sample_logprob;
  }
  r.Set("token", tok); r.Set("logprob", lp); r.Set("scaledLogprob", slp); r.Set("sampleLogprob", sam);
  return r;
}

// cudaBench.gemm({M, N, K, transA, transB, precision, reps}) -> {msPerCall}: device-resident operands, two
// warm-up calls, then reps calls between two synchronizations (wall clock: launches queue back to back).
Napi::Value BenchGemm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = object_arg(info, 0, "gemm bench options");
  bool ta = bool_field(o, "transA", false), tb = bool_field(o, "transB", false);
  int M = dim(o, "M"), N = dim(o, "N"), K = dim(o, "K"), reps = (int)int_field(o, "reps", 10, false, 1, 100000);
  std::string ps = o.Get("precision").IsString() ? o.Get("precision").As<Napi::String>().Utf8Value() : "tf32";
  if (ps != "tf32" && ps != "fp32") throw error(env, "precision must be 'tf32' or 'fp32'");
  const cuda::GemmPrecision prec = ps == "fp32" ? cuda::GemmPrecision::FP32 : cuda::GemmPrecision::TF32;
  double ms = 0;
  on_device(env, [&] {
    cuda::DeviceArray<float> A((size_t)M * K, "bench A"), B((size_t)K * N, "bench B"), C((size_t)M * N, "bench C");
    std::vector<float> h(std::max((size_t)M * K, (size_t)K * N));
    for (size_t i = 0; i < h.size(); i++) h[i] = (float)((i * 2654435761u) % 1000) / 1000.f - 0.5f;
    A.upload(h.data(), (size_t)M * K);
    B.upload(h.data(), (size_t)K * N);
    auto call = [&] { cuda::gemm(prec, ta, tb, M, N, K, A.data(), ta ? M : K, B.data(), tb ? K : N, 0.f, C.data(), N); };
    call();
    call();
    cuda::synchronize("gemm bench warm-up");
    auto t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < reps; r++) call();
    cuda::synchronize("gemm bench");
    ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / reps;
  });
  Napi::Object r = Napi::Object::New(env);
  r.Set("msPerCall", ms);
  return r;
}

Napi::ArrayBuffer external_buffer(Napi::Env env, const FloatBufferPtr& buf) {
  auto* keep = new FloatBufferPtr(buf);
  return Napi::ArrayBuffer::New(env, buf->data, buf->size * sizeof(float),
                                [](Napi::Env, void*, FloatBufferPtr* k) { delete k; }, keep);
}

ModelConfig parse_config(Napi::Object o) {
  ModelConfig c;
  auto i = [&](const char* k, int64_t def, bool req) { return (int)int_field(o, k, def, req, 0, 1LL << 31); };
  c.vocab_size = i("vocab_size", 0, true);
  c.hidden_size = i("hidden_size", 0, true);
  c.intermediate_size = i("intermediate_size", 0, true);
  c.num_hidden_layers = i("num_hidden_layers", 0, true);
  c.num_attention_heads = i("num_attention_heads", 0, true);
  c.num_key_value_heads = i("num_key_value_heads", c.num_attention_heads, false);
  c.max_position_embeddings = i("max_position_embeddings", 0, true);
  c.rms_norm_eps = (float)num_field(o, "rms_norm_eps", 1e-6);
  c.rope_theta = (float)num_field(o, "rope_theta", 10000.0);
  c.tie_word_embeddings = bool_field(o, "tie_word_embeddings", false);
  c.lm_head = bool_field(o, "lm_head", true);
  c.scalar_head = bool_field(o, "scalar_head", false);
  try {
    c.validate();
  } catch (const farm::Error& e) {
    throw error(o.Env(), e.what());
  }
  return c;
}

Napi::Object config_object(Napi::Env env, const ModelConfig& c) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("vocab_size", c.vocab_size);
  o.Set("hidden_size", c.hidden_size);
  o.Set("intermediate_size", c.intermediate_size);
  o.Set("num_hidden_layers", c.num_hidden_layers);
  o.Set("num_attention_heads", c.num_attention_heads);
  o.Set("num_key_value_heads", c.num_key_value_heads);
  o.Set("max_position_embeddings", c.max_position_embeddings);
  o.Set("rms_norm_eps", c.rms_norm_eps);
  o.Set("rope_theta", c.rope_theta);
  o.Set("tie_word_embeddings", c.tie_word_embeddings);
  o.Set("lm_head", c.lm_head);
  o.Set("scalar_head", c.scalar_head);
  return o;
}

Napi::Float32Array copy_out(Napi::Env env, const std::vector<float>& v) {
  Napi::Float32Array a = Napi::Float32Array::New(env, v.size());
  if (!v.empty()) std::memcpy(a.Data(), v.data(), v.size() * sizeof(float));
  return a;
}

}  // namespace

Napi::FunctionReference CudaModelWrap::ctor;

Napi::Function CudaModelWrap::Define(Napi::Env env) {
  return DefineClass(env, "CudaModel",
                     {InstanceMethod("config", &CudaModelWrap::Config), InstanceMethod("numParameters", &CudaModelWrap::NumParams),
                      InstanceMethod("parameters", &CudaModelWrap::Parameters),
                      InstanceMethod("gradients", &CudaModelWrap::Gradients), InstanceMethod("forward", &CudaModelWrap::Forward),
                      InstanceMethod("backward", &CudaModelWrap::Backward),
                      InstanceMethod("forwardBackward", &CudaModelWrap::ForwardBackward),
                      InstanceMethod("zeroGrad", &CudaModelWrap::ZeroGrad), InstanceMethod("gradNorm", &CudaModelWrap::GradNorm),
                      InstanceMethod("activationBytes", &CudaModelWrap::ActivationBytes),
                      InstanceMethod("isBusy", &CudaModelWrap::IsBusy), InstanceMethod("backend", &CudaModelWrap::Backend)});
}

CudaModelWrap::CudaModelWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<CudaModelWrap>(info) {
  Napi::Env env = info.Env();
  Napi::Object cfg = object_arg(info, 0, "config");
  Napi::Object opts = info.Length() > 1 && info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
  ModelConfig c = parse_config(cfg);
  uint64_t seed = (uint64_t)int_field(opts, "seed", 0, false, 0, (1LL << 53));
  double init_std = num_field(opts, "initStd", 0.02);
  try {
    // The host model gives the layout and the seeded initialization (the same weights as on the CPU backend).
    auto host = std::make_shared<Transformer>(c, seed, (float)init_std);
    NativeExecutor::get().run([&] { model_ = std::make_shared<cuda::DeviceModel>(host); });
  } catch (const std::exception& e) {
    throw error(env, e.what());
  }
}

void CudaModelWrap::acquire(Napi::Env env) {
  bool expected = false;
  if (!busy_->compare_exchange_strong(expected, true))
    throw error(env, "model is busy with another operation; await the previous call first");
}
std::function<void()> CudaModelWrap::releaser() {
  auto b = busy_;
  return [b] { b->store(false); };
}
void CudaModelWrap::check_idle(Napi::Env env) const {
  if (busy_->load()) throw error(env, "model is busy with another operation; await the previous call first");
}

Napi::Value CudaModelWrap::Config(const Napi::CallbackInfo& info) { return config_object(info.Env(), model_->config()); }
Napi::Value CudaModelWrap::NumParams(const Napi::CallbackInfo& info) {
  size_t n = 0;
  for (auto& p : model_->host().params()) n += p.size;
  return Napi::Number::New(info.Env(), (double)n);
}
Napi::Value CudaModelWrap::ActivationBytes(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), (double)model_->activation_bytes());
}
Napi::Value CudaModelWrap::IsBusy(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), busy_->load()); }
Napi::Value CudaModelWrap::Backend(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), "cuda"); }

Napi::Value CudaModelWrap::views(Napi::Env env, const FloatBufferPtr& buf, Napi::Reference<Napi::ArrayBuffer>& cache) {
  if (cache.IsEmpty()) cache = Napi::Persistent(external_buffer(env, buf));
  Napi::ArrayBuffer ab = cache.Value();
  Napi::Array out = Napi::Array::New(env);
  uint32_t k = 0;
  for (const ParamInfo& p : model_->host().params()) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", p.name);
    Napi::Array shape = Napi::Array::New(env);
    for (uint32_t d = 0; d < p.shape.size(); d++) shape.Set(d, (double)p.shape[d]);
    o.Set("shape", shape);
    o.Set("data", Napi::Float32Array::New(env, p.size, ab, p.offset * sizeof(float)));
    o.Set("decay", p.decay);
    out.Set(k++, o);
  }
  return out;
}

// Views of the host mirrors, brought up to date; whatever is written through them is uploaded before the
// next device operation. Views read after later operations are stale: call parameters() again.
Napi::Value CudaModelWrap::Parameters(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  check_idle(env);
  on_device(env, [&] { model_->pull_weights(); });
  return views(env, model_->host().param_buffer(), params_ab_);
}
Napi::Value CudaModelWrap::Gradients(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  check_idle(env);
  on_device(env, [&] { model_->pull_grads(); });
  return views(env, model_->host().grad_buffer(), grads_ab_);
}

CudaModelWrap::Batch CudaModelWrap::parse_batch(Napi::Object o) {
  Napi::Env env = o.Env();
  Batch b;
  const ModelConfig& c = model_->config();
  b.B = (int)int_field(o, "batch", 0, true, 1, 1 << 20);
  b.T = (int)int_field(o, "seqLen", 0, true, 1, c.max_position_embeddings);
  if ((int64_t)b.B * b.T > (1LL << 28)) throw error(env, "batch * seqLen is too large");
  const int64_t n = (int64_t)b.B * b.T;
  const int32_t* t = i32(o.Get("tokens"), "tokens", n);
  for (int64_t i = 0; i < n; i++)
    if (t[i] < 0 || t[i] >= c.vocab_size)
      throw error(env, "tokens[" + std::to_string(i) + "] = " + std::to_string(t[i]) + " is outside [0, vocab_size=" +
                           std::to_string(c.vocab_size) + ")");
  b.tokens.assign(t, t + n);
  Napi::Value tv = o.Get("targets");
  if (!tv.IsUndefined() && !tv.IsNull()) {
    const int32_t* g = i32(tv, "targets", n);
    for (int64_t i = 0; i < n; i++)
      if (g[i] >= c.vocab_size)
        throw error(env, "targets[" + std::to_string(i) + "] = " + std::to_string(g[i]) + " is >= vocab_size=" +
                             std::to_string(c.vocab_size) + " (use -1 for no target)");
    b.targets.assign(g, g + n);
    b.has_targets = true;
  }
  return b;
}

static std::vector<float> opt_grad(Napi::Object o, const char* key, int64_t n, bool* present) {
  Napi::Value v = o.Get(key);
  *present = !(v.IsUndefined() || v.IsNull());
  if (!*present) return {};
  const float* d = f32(v, key, n);
  check_finite(o.Env(), d, n, key);
  return std::vector<float>(d, d + n);
}

// forward({tokens, targets?, batch, seqLen, train?, entropy?, logits?}) -> Promise<{logp, entropy, values, logits}>
Napi::Value CudaModelWrap::Forward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = object_arg(info, 0, "forward options");
  auto b = std::make_shared<Batch>(parse_batch(o));
  bool train = bool_field(o, "train", false), want_entropy = bool_field(o, "entropy", false),
       want_logits = bool_field(o, "logits", false), want_hidden = bool_field(o, "hidden", false);
  const ModelConfig& c = model_->config();
  if ((want_logits || want_entropy) && !c.lm_head) throw error(env, "this model has no LM head (logits/entropy unavailable)");
  acquire(env);
  auto m = model_;
  auto out = std::make_shared<cuda::DeviceModel::Outputs>();
  return PromiseTask::Start(
      env, 1,
      [m, b, out, train, want_entropy, want_logits, want_hidden] {
        m->forward(b->tokens.data(), b->has_targets ? b->targets.data() : nullptr, b->B, b->T, train, want_entropy,
                   want_logits, out.get(), want_hidden);
      },
      [out, want_logits, has_targets = b->has_targets](Napi::Env env) -> Napi::Value {
        Napi::Object r = Napi::Object::New(env);
        if (!out->logp.empty() && has_targets) r.Set("logp", copy_out(env, out->logp));
        if (!out->entropy.empty()) r.Set("entropy", copy_out(env, out->entropy));
        if (!out->values.empty()) r.Set("values", copy_out(env, out->values));
        if (want_logits && !out->logits.empty()) r.Set("logits", copy_out(env, out->logits));
        if (!out->hidden.empty()) r.Set("hidden", copy_out(env, out->hidden));
        return r;
      },
      releaser());
}

Napi::Value CudaModelWrap::Backward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = object_arg(info, 0, "backward options");
  check_idle(env);
  if (!model_->backward_ready())
    throw error(env, "backward() needs a preceding forward({train: true}) on this model (one backward per forward)");
  const int64_t n = model_->last_positions();
  bool hl, he, hv;
  auto dl = std::make_shared<std::vector<float>>(opt_grad(o, "dlogp", n, &hl));
  auto de = std::make_shared<std::vector<float>>(opt_grad(o, "dentropy", n, &he));
  auto dv = std::make_shared<std::vector<float>>(opt_grad(o, "dvalues", n, &hv));
  bool hh;
  auto dh = std::make_shared<std::vector<float>>(opt_grad(o, "dhidden", n * model_->config().hidden_size, &hh));
  acquire(env);
  auto m = model_;
  return PromiseTask::Start(
      env, 1,
      [m, dl, de, dv, dh, hl, he, hv, hh] {
        m->backward(hl ? dl->data() : nullptr, he ? de->data() : nullptr, hv ? dv->data() : nullptr, hh ? dh->data() : nullptr);
      },
      nullptr, releaser());
}

Napi::Value CudaModelWrap::ForwardBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = object_arg(info, 0, "forwardBackward options");
  auto b = std::make_shared<Batch>(parse_batch(o));
  if (!b->has_targets) throw error(env, "targets are required");
  if (!model_->config().lm_head) throw error(env, "this model has no LM head");
  const int64_t n = (int64_t)b->B * b->T;
  const float* w = f32(o.Get("weights"), "weights", n);
  check_finite(env, w, n, "weights");
  auto dl = std::make_shared<std::vector<float>>(n);
  for (int64_t i = 0; i < n; i++) (*dl)[i] = b->targets[i] >= 0 ? -w[i] : 0.f;
  acquire(env);
  auto m = model_;
  auto res = std::make_shared<std::pair<double, int64_t>>(0.0, 0);
  return PromiseTask::Start(
      env, 1,
      [m, b, dl, res, n] {
        cuda::DeviceModel::Outputs out;
        m->forward(b->tokens.data(), b->targets.data(), b->B, b->T, true, false, false, &out);
        double loss = 0;
        int64_t cnt = 0;
        for (int64_t i = 0; i < n; i++)
          if ((*dl)[i] != 0.f) { loss += -(double)(*dl)[i] * -(double)out.logp[i]; cnt++; }
        res->first = loss;
        res->second = cnt;
        m->backward(dl->data(), nullptr, nullptr);
      },
      [res](Napi::Env env) -> Napi::Value {
        Napi::Object r = Napi::Object::New(env);
        r.Set("loss", res->first);
        r.Set("tokens", (double)res->second);
        return r;
      },
      releaser());
}

Napi::Value CudaModelWrap::ZeroGrad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  check_idle(env);
  on_device(env, [&] { model_->zero_grad(); });
  return env.Undefined();
}
Napi::Value CudaModelWrap::GradNorm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  check_idle(env);
  double n = 0;
  on_device(env, [&] { n = model_->grad_norm(); });
  return Napi::Number::New(env, n);
}

class CudaAdamWWrap : public Napi::ObjectWrap<CudaAdamWWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "CudaAdamW",
                       {InstanceMethod("step", &CudaAdamWWrap::Step), InstanceMethod("state", &CudaAdamWWrap::State),
                        InstanceMethod("setStepCount", &CudaAdamWWrap::SetStepCount),
                        InstanceAccessor("stepCount", &CudaAdamWWrap::StepCount, nullptr)});
  }
  CudaAdamWWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<CudaAdamWWrap>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsObject() || !info[0].As<Napi::Object>().InstanceOf(CudaModelWrap::ctor.Value()))
      throw error(env, "CudaAdamW(model, options): model must be a CudaModel");
    model_wrap_ = CudaModelWrap::Unwrap(info[0].As<Napi::Object>());
    model_ref_ = Napi::Persistent(info[0].As<Napi::Object>());
    Napi::Object o = info.Length() > 1 && info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
    AdamWConfig c;
    c.beta1 = (float)num_field(o, "beta1", 0.9);
    c.beta2 = (float)num_field(o, "beta2", 0.999);
    c.eps = (float)num_field(o, "eps", 1e-8);
    c.weight_decay = (float)num_field(o, "weightDecay", 0.0);
    try {
      auto m = model_wrap_->model();
      NativeExecutor::get().run([&] { opt_ = std::make_shared<cuda::DeviceAdamW>(m, c); });
    } catch (const std::exception& e) {
      throw error(env, e.what());
    }
  }

 private:
  Napi::Value Step(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = object_arg(info, 0, "step options");
    double lr = num_field(o, "lr", 0, true);
    if (lr < 0) throw error(env, "lr must be >= 0, got " + std::to_string(lr));
    double max_norm = num_field(o, "maxGradNorm", 0);
    if (max_norm < 0) throw error(env, "maxGradNorm must be >= 0 (0 disables clipping)");
    model_wrap_->acquire(env);
    auto m = model_wrap_->model();
    auto opt = opt_;
    auto res = std::make_shared<std::pair<double, bool>>(0.0, false);
    return PromiseTask::Start(
        env, 1,
        [m, opt, lr, max_norm, res] {
          double norm = m->grad_norm();
          FARM_CHECK(std::isfinite(norm), "gradient norm is not finite (", norm, "); the step was skipped");
          res->first = norm;
          if (max_norm > 0 && norm > max_norm) {
            m->scale_grads((float)(max_norm / (norm + 1e-6)));
            res->second = true;
          }
          opt->step((float)lr);
        },
        [res](Napi::Env env) -> Napi::Value {
          Napi::Object r = Napi::Object::New(env);
          r.Set("gradNorm", res->first);
          r.Set("clipped", res->second);
          return r;
        },
        model_wrap_->releaser());
  }
  Napi::Value State(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    model_wrap_->check_idle(env);
    on_device(env, [&] { opt_->pull_state(); });
    if (m_ab_.IsEmpty()) {
      m_ab_ = Napi::Persistent(external_buffer(env, opt_->m_host));
      v_ab_ = Napi::Persistent(external_buffer(env, opt_->v_host));
    }
    Napi::Object r = Napi::Object::New(env);
    r.Set("step", (double)opt_->t);
    r.Set("m", Napi::Float32Array::New(env, opt_->m_host->size, m_ab_.Value(), 0));
    r.Set("v", Napi::Float32Array::New(env, opt_->v_host->size, v_ab_.Value(), 0));
    Napi::Object c = Napi::Object::New(env);
    c.Set("beta1", opt_->cfg.beta1);
    c.Set("beta2", opt_->cfg.beta2);
    c.Set("eps", opt_->cfg.eps);
    c.Set("weightDecay", opt_->cfg.weight_decay);
    r.Set("config", c);
    return r;
  }
  Napi::Value SetStepCount(const Napi::CallbackInfo& info) {
    if (info.Length() < 1 || !info[0].IsNumber()) throw error(info.Env(), "setStepCount(n): n must be a number");
    double n = info[0].As<Napi::Number>().DoubleValue();
    if (!(n >= 0) || n != std::floor(n) || n > 9e15) throw error(info.Env(), "step count must be a non-negative integer");
    opt_->t = (int64_t)n;
    return info.Env().Undefined();
  }
  Napi::Value StepCount(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), (double)opt_->t); }

  CudaModelWrap* model_wrap_ = nullptr;
  Napi::ObjectReference model_ref_;
  std::shared_ptr<cuda::DeviceAdamW> opt_;
  Napi::Reference<Napi::ArrayBuffer> m_ab_, v_ab_;
};

void RegisterCuda(Napi::Env env, Napi::Object exports) {
  exports.Set("cudaInfo", Napi::Function::New(env, CudaInfo));
  exports.Set("setCudaGemm", Napi::Function::New(env, SetCudaGemm));
  Napi::Object k = Napi::Object::New(env);
  k.Set("gemm", Napi::Function::New(env, KGemm));
  k.Set("embedding", Napi::Function::New(env, KEmbedding));
  k.Set("rmsnorm", Napi::Function::New(env, KRmsnorm));
  k.Set("rope", Napi::Function::New(env, KRope));
  k.Set("attention", Napi::Function::New(env, KAttention));
  k.Set("swiglu", Napi::Function::New(env, KSwiglu));
  k.Set("logsoftmax", Napi::Function::New(env, KLogsoftmax));
  k.Set("sample", Napi::Function::New(env, KSample));
  k.Set("attentionSavedFloats", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
          Napi::Object o = object_arg(info, 0, "attentionSavedFloats options");
          return Napi::Number::New(info.Env(), (double)cuda::attention_saved_floats(dim(o, "B"), dim(o, "T"), dim(o, "NH")));
        }));
  exports.Set("cudaKernels", k);
  Napi::Object bench = Napi::Object::New(env);
  bench.Set("gemm", Napi::Function::New(env, BenchGemm));
  exports.Set("cudaBench", bench);
  Napi::Function model = CudaModelWrap::Define(env);
  CudaModelWrap::ctor = Napi::Persistent(model);
  CudaModelWrap::ctor.SuppressDestruct();
  exports.Set("CudaModel", model);
  exports.Set("CudaAdamW", CudaAdamWWrap::Define(env));
  RegisterCudaSession(env, exports);
}

#endif

}  // namespace farm::addon
