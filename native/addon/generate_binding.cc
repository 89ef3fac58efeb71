// Generation bindings: DecodeSession (KV cache, batched sampling, forked sequences) over a Model's weights.
#include <napi.h>
#include <atomic>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>
#include "async.h"
#include "checks.h"
#include "farm/generate.h"
#include "model/decode_kernels.h"
#include "registry.h"

namespace farm::addon {
namespace {

constexpr double kMaxSafeInt = 9007199254740991.0;  // 2^53 - 1

uint64_t safe_uint(Napi::Env env, double d, const std::string& what) {
  if (!(d >= 0) || d != std::floor(d) || d > kMaxSafeInt)
    throw error(env, what + " must be an integer in [0, 2^53), got " + std::to_string(d));
  return (uint64_t)d;
}

std::vector<uint64_t> streams_arg(Napi::Value v, size_t n, const char* name) {
  Napi::Env env = v.Env();
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
    throw error(env, std::string(name) + " must be a Float64Array");
  auto a = v.As<Napi::Float64Array>();
  if (a.ElementLength() != n)
    throw error(env, std::string(name) + " must have " + std::to_string(n) + " elements, got " + std::to_string(a.ElementLength()));
  std::vector<uint64_t> out(n);
  for (size_t i = 0; i < n; i++) out[i] = safe_uint(env, a[i], std::string(name) + "[" + std::to_string(i) + "]");
  return out;
}

int cfg_int(Napi::Object o, const char* k) { return (int)int_field(o, k, 0, true, 0, 1LL << 31); }

// The weights of a native Model, by Hugging Face tensor name, through its parameter views.
std::shared_ptr<DecoderWeights> weights_of(Napi::Object model, Napi::Reference<Napi::ArrayBuffer>* keep) {
  Napi::Env env = model.Env();
  Napi::Value cf = model.Get("config"), pf = model.Get("parameters");
  if (!cf.IsFunction() || !pf.IsFunction()) throw error(env, "model must be a native Model (Model.raw)");
  Napi::Object co = cf.As<Napi::Function>().Call(model, {}).As<Napi::Object>();
  auto w = std::make_shared<DecoderWeights>();
  ModelConfig& c = w->cfg;
  c.vocab_size = cfg_int(co, "vocab_size");
  c.hidden_size = cfg_int(co, "hidden_size");
  c.intermediate_size = cfg_int(co, "intermediate_size");
  c.num_hidden_layers = cfg_int(co, "num_hidden_layers");
  c.num_attention_heads = cfg_int(co, "num_attention_heads");
  c.num_key_value_heads = cfg_int(co, "num_key_value_heads");
  c.max_position_embeddings = cfg_int(co, "max_position_embeddings");
  c.rms_norm_eps = (float)num_field(co, "rms_norm_eps", 1e-6);
  c.rope_theta = (float)num_field(co, "rope_theta", 10000.0);
  c.tie_word_embeddings = bool_field(co, "tie_word_embeddings", false);
  c.lm_head = bool_field(co, "lm_head", true);
  c.scalar_head = bool_field(co, "scalar_head", false);
  try {
    c.validate();
  } catch (const farm::Error& e) {
    throw error(env, e.what());
  }
  Napi::Array views = pf.As<Napi::Function>().Call(model, {}).As<Napi::Array>();
  std::map<std::string, std::pair<const float*, size_t>> byname;
  for (uint32_t i = 0; i < views.Length(); i++) {
    Napi::Object v = views.Get(i).As<Napi::Object>();
    auto data = v.Get("data").As<Napi::Float32Array>();
    if (i == 0) *keep = Napi::Persistent(data.ArrayBuffer());
    byname[v.Get("name").As<Napi::String>().Utf8Value()] = {data.Data(), data.ElementLength()};
  }
  const size_t C = c.hidden_size, I = c.intermediate_size, V = c.vocab_size, HD = c.head_dim(),
               NH = c.num_attention_heads, NKV = c.num_key_value_heads;
  auto get = [&](const std::string& name, size_t n) -> const float* {
    auto it = byname.find(name);
    if (it == byname.end()) throw error(env, "model has no tensor " + name);
    if (it->second.second != n)
      throw error(env, "tensor " + name + " has " + std::to_string(it->second.second) + " values, expected " + std::to_string(n));
    return it->second.first;
  };
  w->embed = get("model.embed_tokens.weight", V * C);
  for (int l = 0; l < c.num_hidden_layers; l++) {
    std::string pre = "model.layers." + std::to_string(l) + ".";
    w->layers.push_back({get(pre + "input_layernorm.weight", C), get(pre + "self_attn.q_proj.weight", NH * HD * C),
                         get(pre + "self_attn.k_proj.weight", NKV * HD * C), get(pre + "self_attn.v_proj.weight", NKV * HD * C),
                         get(pre + "self_attn.o_proj.weight", C * NH * HD), get(pre + "post_attention_layernorm.weight", C),
                         get(pre + "mlp.gate_proj.weight", I * C), get(pre + "mlp.up_proj.weight", I * C),
                         get(pre + "mlp.down_proj.weight", C * I)});
  }
  w->norm = get("model.norm.weight", C);
  if (c.lm_head) w->lm_head = c.tie_word_embeddings ? w->embed : get("lm_head.weight", V * C);
  if (c.scalar_head) {
    w->score_w = get("score.weight", C);
    w->score_b = get("score.bias", 1);
  }
  return w;
}

Napi::Float32Array f32_copy(Napi::Env env, const float* src, size_t n) {
  Napi::Float32Array a = Napi::Float32Array::New(env, n);
  if (n) std::memcpy(a.Data(), src, n * sizeof(float));
  return a;
}

}  // namespace

class SessionWrap : public Napi::ObjectWrap<SessionWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "DecodeSession",
                       {InstanceMethod("addPrompts", &SessionWrap::AddPrompts), InstanceMethod("sample", &SessionWrap::Sample),
                        InstanceMethod("fork", &SessionWrap::Fork), InstanceMethod("release", &SessionWrap::Release),
                        InstanceMethod("extend", &SessionWrap::Extend), InstanceMethod("nextLogits", &SessionWrap::NextLogits),
                        InstanceMethod("info", &SessionWrap::Info), InstanceMethod("dispose", &SessionWrap::Dispose),
                        InstanceMethod("stats", &SessionWrap::Stats)});
  }

  // new DecodeSession(model, {maxSequences, maxLength, weights: 'fp32' | 'bf16', kvCache: 'fp32' | 'bf16'})
  SessionWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SessionWrap>(info) {
    Napi::Env env = info.Env();
    Napi::Object model = object_arg(info, 0, "model");
    Napi::Object o = object_arg(info, 1, "session options");
    auto w = weights_of(model, &weights_ref_);
    model_ref_ = Napi::Persistent(model);
    int slots = (int)int_field(o, "maxSequences", 0, true, 1, 1 << 20);
    int len = (int)int_field(o, "maxLength", w->cfg.max_position_embeddings, false, 1, w->cfg.max_position_embeddings);
    auto precision = [&](const char* key) {
      Napi::Value v = o.Get(key);
      std::string t = v.IsUndefined() || v.IsNull() ? "fp32" : v.IsString() ? v.As<Napi::String>().Utf8Value() : "?";
      if (t != "fp32" && t != "bf16") throw error(env, std::string(key) + " must be 'fp32' or 'bf16'");
      return t == "bf16";
    };
    const bool bf16_weights = precision("weights"), bf16_kv = precision("kvCache");
    w->compute_rope(len);
    try {
      core_ = std::make_shared<DecodeSession>(w, slots, len, bf16_weights, bf16_kv);
    } catch (const std::exception& e) {
      throw error(env, e.what());
    }
  }

 private:
  DecodeSession& core(Napi::Env env) {
    if (!core_) throw error(env, "this DecodeSession was disposed");
    return *core_;
  }
  void check_idle(Napi::Env env) {
    core(env);
    if (busy_) throw error(env, "DecodeSession is busy; await the previous call first");
    Napi::Object m = model_ref_.Value();
    Napi::Value f = m.Get("isBusy");
    if (f.IsFunction() && f.As<Napi::Function>().Call(m, {}).ToBoolean().Value())
      throw error(env, "the model is busy with another operation (training?); await it before generating");
  }
  // Marks the session busy and keeps it (and so the model's weights) alive until the work settles.
  std::function<void()> hold() {
    busy_ = true;
    Ref();
    return [this] { busy_ = false; Unref(); };
  }
  static int threads_of(Napi::Object o) { return (int)int_field(o, "threads", 1, false, 1, 1024); }
  int slot_arg(Napi::Env env, Napi::Value v, const std::string& name) {
    if (!v.IsNumber()) throw error(env, name + " must be a number");
    double d = v.As<Napi::Number>().DoubleValue();
    if (!(d >= 0 && d < 2147483647.0) || d != std::floor(d) || !core_->in_use((int)d)) {
      std::string shown = (d == std::floor(d) && std::abs(d) < 1e15) ? std::to_string((int64_t)d) : std::to_string(d);
      throw error(env, name + " = " + shown + " is not a live sequence of this session");
    }
    return (int)d;
  }

  // addPrompts({tokens: Int32Array (concatenated), lengths: Int32Array, copies, streams: Float64Array, threads})
  //   -> Promise<Int32Array> slots, copy j of prompt p at p*copies + j.
  Napi::Value AddPrompts(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = object_arg(info, 0, "addPrompts options");
    check_idle(env);
    size_t nl = 0, nt = 0;
    const int32_t* lens = i32(o.Get("lengths"), "lengths", -1, &nl);
    const int32_t* toks = i32(o.Get("tokens"), "tokens", -1, &nt);
    if (nl == 0) throw error(env, "no prompts (lengths is empty)");
    int copies = (int)int_field(o, "copies", 1, false, 1, 1 << 20);
    auto prompts = std::make_shared<std::vector<std::vector<int32_t>>>(nl);
    size_t off = 0;
    for (size_t p = 0; p < nl; p++) {
      if (lens[p] < 0 || off + lens[p] > nt) throw error(env, "lengths do not match tokens (prompt " + std::to_string(p) + ")");
      (*prompts)[p].assign(toks + off, toks + off + lens[p]);
      off += lens[p];
    }
    if (off != nt) throw error(env, "tokens has " + std::to_string(nt) + " ids but lengths sum to " + std::to_string(off));
    auto streams = std::make_shared<std::vector<uint64_t>>(streams_arg(o.Get("streams"), nl * copies, "streams"));
    auto out = std::make_shared<std::vector<int>>();
    auto s = core_;
    return PromiseTask::Start(
        env, threads_of(o), [s, prompts, copies, streams, out] { *out = s->add_prompts(*prompts, copies, *streams); },
        [out](Napi::Env env) -> Napi::Value {
          auto a = Napi::Int32Array::New(env, out->size());
          for (size_t i = 0; i < out->size(); i++) a[i] = (*out)[i];
          return a;
        },
        hold(), "session.addPrompts");
  }

  // sample({slots: Int32Array, steps, maxNewTokens, temperature, topK, topP, seed, stopTokens: Int32Array, threads})
  Napi::Value Sample(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = object_arg(info, 0, "sample options");
    check_idle(env);
    size_t n = 0;
    const int32_t* sl = i32(o.Get("slots"), "slots", -1, &n);
    auto list = std::make_shared<std::vector<int>>(sl, sl + n);
    for (size_t i = 0; i < n; i++) slot_arg(env, Napi::Number::New(env, (*list)[i]), "slots[" + std::to_string(i) + "]");
    int steps = (int)int_field(o, "steps", 0, true, 0, 1 << 24);
    SampleOptions opt;
    opt.max_new_tokens = (int)int_field(o, "maxNewTokens", 0, true, 1, 1 << 24);
    opt.temperature = (float)num_field(o, "temperature", 1.0);
    opt.top_k = (int)int_field(o, "topK", 0, false, 0, 1LL << 31);
    opt.top_p = (float)num_field(o, "topP", 1.0);
    opt.seed = safe_uint(env, num_field(o, "seed", 0), "seed");
    Napi::Value st = o.Get("stopTokens");
    if (!st.IsUndefined() && !st.IsNull()) {
      size_t ns = 0;
      const int32_t* s = i32(st, "stopTokens", -1, &ns);
      opt.stop_tokens.assign(s, s + ns);
    }
    try {
      opt.validate(core_->weights().cfg.vocab_size);
      if (!core_->weights().cfg.lm_head) throw farm::Error("this model has no LM head; it cannot generate");
    } catch (const farm::Error& e) {
      throw error(env, e.what());
    }
    auto recs = std::make_shared<std::vector<TokenRecord>>();
    auto s = core_;
    auto optp = std::make_shared<SampleOptions>(opt);
    return PromiseTask::Start(
        env, threads_of(o), [s, list, steps, optp, recs] { s->sample(*list, steps, *optp, recs.get()); },
        [s, list, recs](Napi::Env env) -> Napi::Value {
          const size_t R = recs->size();
          Napi::Object r = Napi::Object::New(env);
          auto slot = Napi::Int32Array::New(env, R), token = Napi::Int32Array::New(env, R);
          auto lp = Napi::Float32Array::New(env, R), slp = Napi::Float32Array::New(env, R),
               sam = Napi::Float32Array::New(env, R), val = Napi::Float32Array::New(env, R);
          for (size_t i = 0; i < R; i++) {
            const TokenRecord& t = (*recs)[i];
            slot[i] = t.slot; token[i] = t.token; lp[i] = t.logprob; slp[i] = t.scaled_logprob;
            sam[i] = t.sample_logprob; val[i] = t.value;
          }
          r.Set("slot", slot); r.Set("token", token); r.Set("logprob", lp); r.Set("scaledLogprob", slp);
          r.Set("sampleLogprob", sam);
          if (s->weights().cfg.scalar_head) r.Set("value", val);
          auto fin = Napi::Int8Array::New(env, list->size());
          auto gen = Napi::Int32Array::New(env, list->size());
          for (size_t i = 0; i < list->size(); i++) {
            const auto& inf = s->info((*list)[i]);
            fin[i] = (int8_t)inf.finish;
            gen[i] = inf.generated;
          }
          r.Set("finish", fin);
          r.Set("generated", gen);
          return r;
        },
        hold(), "session.sample");
  }

  // fork({parent, streams: Float64Array}) -> Int32Array of new slots (synchronous: a cache copy).
  Napi::Value Fork(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = object_arg(info, 0, "fork options");
    check_idle(env);
    int parent = slot_arg(env, o.Get("parent"), "parent");
    Napi::Value sv = o.Get("streams");
    size_t n = sv.IsTypedArray() ? sv.As<Napi::TypedArray>().ElementLength() : 0;
    auto streams = streams_arg(sv, n, "streams");
    std::vector<int> out;
    try {
      out = core_->fork(parent, streams);
    } catch (const std::exception& e) {
      throw error(env, e.what());
    }
    auto a = Napi::Int32Array::New(env, out.size());
    for (size_t i = 0; i < out.size(); i++) a[i] = out[i];
    return a;
  }

  Napi::Value Release(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    check_idle(env);
    if (info.Length() < 1) throw error(env, "release(slots): slots required");
    size_t n = 0;
    const int32_t* sl = i32(info[0], "slots", -1, &n);
    for (size_t i = 0; i < n; i++) slot_arg(env, Napi::Number::New(env, sl[i]), "slots[" + std::to_string(i) + "]");
    for (size_t i = 0; i < n; i++) {
      try {
        core_->release(sl[i]);
      } catch (const std::exception& e) {
        throw error(env, e.what());
      }
    }
    return env.Undefined();
  }

  // extend({slot, tokens: Int32Array, threads}) -> Promise<{logprob, value}> (teacher forcing).
  Napi::Value Extend(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = object_arg(info, 0, "extend options");
    check_idle(env);
    int sl = slot_arg(env, o.Get("slot"), "slot");
    size_t n = 0;
    const int32_t* t = i32(o.Get("tokens"), "tokens", -1, &n);
    if (n == 0) throw error(env, "tokens must not be empty");
    auto toks = std::make_shared<std::vector<int32_t>>(t, t + n);
    auto lp = std::make_shared<std::vector<float>>(n), val = std::make_shared<std::vector<float>>(n);
    auto s = core_;
    return PromiseTask::Start(
        env, threads_of(o), [s, sl, toks, lp, val] { s->extend(sl, toks->data(), (int)toks->size(), lp->data(), val->data()); },
        [s, lp, val](Napi::Env env) -> Napi::Value {
          Napi::Object r = Napi::Object::New(env);
          r.Set("logprob", f32_copy(env, lp->data(), lp->size()));
          if (s->weights().cfg.scalar_head) r.Set("value", f32_copy(env, val->data(), val->size()));
          return r;
        },
        hold(), "session.extend");
  }

  // nextLogits({slot, threads}) -> Promise<{logits?: Float32Array, value?: number}>
  Napi::Value NextLogits(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = object_arg(info, 0, "nextLogits options");
    check_idle(env);
    int sl = slot_arg(env, o.Get("slot"), "slot");
    auto logits = std::make_shared<std::vector<float>>();
    auto value = std::make_shared<float>(0.f);
    auto s = core_;
    return PromiseTask::Start(
        env, threads_of(o),
        [s, sl, logits, value] {
          const float* z = s->next_logits(sl, value.get());
          if (z) logits->assign(z, z + s->weights().cfg.vocab_size);
        },
        [s, logits, value](Napi::Env env) -> Napi::Value {
          Napi::Object r = Napi::Object::New(env);
          if (s->weights().cfg.lm_head) r.Set("logits", f32_copy(env, logits->data(), logits->size()));
          if (s->weights().cfg.scalar_head) r.Set("value", *value);
          return r;
        },
        hold(), "session.nextLogits");
  }

  Napi::Value Info(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    core(env);
    if (busy_) throw error(env, "DecodeSession is busy; await the previous call first");
    int sl = slot_arg(env, info.Length() ? info[0] : env.Undefined(), "slot");
    const auto& in = core_->info(sl);
    Napi::Object r = Napi::Object::New(env);
    auto t = Napi::Int32Array::New(env, in.tokens.size());
    for (size_t i = 0; i < in.tokens.size(); i++) t[i] = in.tokens[i];
    r.Set("tokens", t);
    r.Set("promptLength", in.prompt_len);
    r.Set("generated", in.generated);
    r.Set("finish", finish_name(in.finish));
    r.Set("stream", (double)in.stream);
    return r;
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object r = Napi::Object::New(env);
    r.Set("disposed", !core_);
    r.Set("kernels", decode::impl_name());  // avx512 | avx2 | portable
    if (core_) {
      r.Set("weights", core_->bf16_weights() ? "bf16" : "fp32");
      r.Set("kvCache", core_->bf16_kv() ? "bf16" : "fp32");
      r.Set("packedWeightBytes", (double)core_->packed_weight_bytes());
      r.Set("maxSequences", core_->max_slots());
      r.Set("maxLength", core_->max_len());
      r.Set("cacheBytes", (double)core_->cache_bytes());
    }
    return r;
  }

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (busy_) throw error(env, "DecodeSession is busy; await the previous call first");
    core_.reset();
    return env.Undefined();
  }

  std::shared_ptr<DecodeSession> core_;
  Napi::ObjectReference model_ref_;
  Napi::Reference<Napi::ArrayBuffer> weights_ref_;
  bool busy_ = false;
};

void RegisterGenerate(Napi::Env env, Napi::Object exports) {
  exports.Set("DecodeSession", SessionWrap::Define(env));
}

}  // namespace farm::addon
