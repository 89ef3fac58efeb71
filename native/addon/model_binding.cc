// Bindings of the transformer and AdamW: argument checks, async work, parameter views.
#include <napi.h>
#include <atomic>
#include <cmath>
#include <cstring>
#include <memory>
#include <vector>
#include "async.h"
#include "checks.h"
#include "farm/model.h"
#include "registry.h"

namespace farm::addon {
namespace {

// One external ArrayBuffer per native buffer (V8 wants one per memory region); views share it.
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

Napi::Float32Array copy_out(Napi::Env env, const float* src, size_t n) {
  Napi::Float32Array a = Napi::Float32Array::New(env, n);
  std::memcpy(a.Data(), src, n * sizeof(float));
  return a;
}

}  // namespace

class ModelWrap : public Napi::ObjectWrap<ModelWrap> {
 public:
  static Napi::FunctionReference ctor;
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Model",
                       {InstanceMethod("config", &ModelWrap::Config), InstanceMethod("numParameters", &ModelWrap::NumParams),
                        InstanceMethod("parameters", &ModelWrap::Parameters), InstanceMethod("gradients", &ModelWrap::Gradients),
                        InstanceMethod("forward", &ModelWrap::Forward), InstanceMethod("backward", &ModelWrap::Backward),
                        InstanceMethod("forwardBackward", &ModelWrap::ForwardBackward),
                        InstanceMethod("zeroGrad", &ModelWrap::ZeroGrad), InstanceMethod("gradNorm", &ModelWrap::GradNorm),
                        InstanceMethod("activationBytes", &ModelWrap::ActivationBytes),
                        InstanceMethod("isBusy", &ModelWrap::IsBusy)});
  }

  ModelWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModelWrap>(info) {
    Napi::Env env = info.Env();
    Napi::Object cfg = object_arg(info, 0, "config");
    Napi::Object opts = info.Length() > 1 && info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
    ModelConfig c = parse_config(cfg);
    uint64_t seed = (uint64_t)int_field(opts, "seed", 0, false, 0, (1LL << 53));
    double init_std = num_field(opts, "initStd", 0.02);
    try {
      model_ = std::make_shared<Transformer>(c, seed, (float)init_std);
    } catch (const std::exception& e) {
      throw error(env, e.what());
    }
  }

  std::shared_ptr<Transformer> model() const { return model_; }

  // Marks the model busy for the duration of an async call; a second call while busy throws.
  void acquire(Napi::Env env) {
    bool expected = false;
    if (!busy_->compare_exchange_strong(expected, true))
      throw error(env, "model is busy with another operation; await the previous call first");
  }
  std::function<void()> releaser() {
    auto b = busy_;
    return [b] { b->store(false); };
  }
  void check_idle(Napi::Env env) const {
    if (busy_->load()) throw error(env, "model is busy with another operation; await the previous call first");
  }

 private:
  Napi::Value Config(const Napi::CallbackInfo& info) { return config_object(info.Env(), model_->config()); }
  Napi::Value NumParams(const Napi::CallbackInfo& info) {
    size_t n = 0;
    for (auto& p : model_->params()) n += p.size;
    return Napi::Number::New(info.Env(), (double)n);
  }
  Napi::Value ActivationBytes(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), (double)model_->activation_bytes());
  }
  Napi::Value IsBusy(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), busy_->load()); }

  Napi::Value views(Napi::Env env, const FloatBufferPtr& buf, Napi::Reference<Napi::ArrayBuffer>& cache) {
    if (cache.IsEmpty()) cache = Napi::Persistent(external_buffer(env, buf));
    Napi::ArrayBuffer ab = cache.Value();
    Napi::Array out = Napi::Array::New(env);
    uint32_t k = 0;
    for (const ParamInfo& p : model_->params()) {
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
  Napi::Value Parameters(const Napi::CallbackInfo& info) { return views(info.Env(), model_->param_buffer(), params_ab_); }
  Napi::Value Gradients(const Napi::CallbackInfo& info) { return views(info.Env(), model_->grad_buffer(), grads_ab_); }

  struct Batch {
    int B = 0, T = 0, threads = 1;
    std::vector<int32_t> tokens, targets;
    bool has_targets = false;
  };
  Batch parse_batch(Napi::Object o) {
    Napi::Env env = o.Env();
    Batch b;
    const ModelConfig& c = model_->config();
    b.B = (int)int_field(o, "batch", 0, true, 1, 1 << 20);
    b.T = (int)int_field(o, "seqLen", 0, true, 1, c.max_position_embeddings);
    if ((int64_t)b.B * b.T > (1LL << 28)) throw error(env, "batch * seqLen is too large");
    b.threads = (int)int_field(o, "threads", 1, false, 1, 1024);
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

  // forward({tokens, targets?, batch, seqLen, train?, entropy?, logits?, threads}) -> Promise<{logp, entropy, values, logits}>
  Napi::Value Forward(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = object_arg(info, 0, "forward options");
    auto b = std::make_shared<Batch>(parse_batch(o));
    bool train = bool_field(o, "train", false), want_entropy = bool_field(o, "entropy", false),
         want_logits = bool_field(o, "logits", false), want_hidden = bool_field(o, "hidden", false);
    const ModelConfig& c = model_->config();
    if ((want_logits || want_entropy) && !c.lm_head) throw error(env, "this model has no LM head (logits/entropy unavailable)");
    acquire(env);
    auto m = model_;
    auto out = std::make_shared<ForwardOutputs>();
    return PromiseTask::Start(
        env, b->threads,
        [m, b, out, train, want_entropy, want_logits] {
          *out = m->forward(b->tokens.data(), b->has_targets ? b->targets.data() : nullptr, b->B, b->T, train,
                            want_entropy, want_logits);
        },
        [m, b, out, want_logits, want_hidden, has_targets = b->has_targets](Napi::Env env) -> Napi::Value {
          const size_t n = (size_t)b->B * b->T;
          Napi::Object r = Napi::Object::New(env);
          if (out->logp && has_targets) r.Set("logp", copy_out(env, out->logp, n));
          if (out->entropy) r.Set("entropy", copy_out(env, out->entropy, n));
          if (out->values) r.Set("values", copy_out(env, out->values, n));
          if (want_logits && out->logits) r.Set("logits", copy_out(env, out->logits, n * m->config().vocab_size));
          if (want_hidden && out->hidden) r.Set("hidden", copy_out(env, out->hidden, n * m->config().hidden_size));
          return r;
        },
        releaser(), "model.forward");
  }

  // backward({dlogp?, dentropy?, dvalues?, dhidden?, threads}) -> Promise<void>; accumulates into the gradients.
  // dhidden: dL/d(final hidden state), [positions * hidden_size].
  Napi::Value Backward(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = object_arg(info, 0, "backward options");
    int threads = (int)int_field(o, "threads", 1, false, 1, 1024);
    check_idle(env);
    if (!backward_ready()) throw error(env, "backward() needs a preceding forward({train: true}) on this model (one backward per forward)");
    const int64_t n = last_n();
    bool hl, he, hv;
    auto dl = std::make_shared<std::vector<float>>(opt_grad(o, "dlogp", n, &hl));
    auto de = std::make_shared<std::vector<float>>(opt_grad(o, "dentropy", n, &he));
    auto dv = std::make_shared<std::vector<float>>(opt_grad(o, "dvalues", n, &hv));
    bool hh;
    auto dh = std::make_shared<std::vector<float>>(opt_grad(o, "dhidden", n * model_->config().hidden_size, &hh));
    acquire(env);
    auto m = model_;
    return PromiseTask::Start(
        env, threads,
        [m, dl, de, dv, dh, hl, he, hv, hh] {
          m->backward(hl ? dl->data() : nullptr, he ? de->data() : nullptr, hv ? dv->data() : nullptr, hh ? dh->data() : nullptr);
        },
        nullptr, releaser(), "model.backward");
  }

  // forwardBackward({tokens, targets, weights, batch, seqLen, threads}): L = -sum_i weights[i] * logp[i];
  // accumulates dL/dparams; resolves {loss, tokens} (tokens: positions with weight != 0 and a target).
  Napi::Value ForwardBackward(const Napi::CallbackInfo& info) {
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
        env, b->threads,
        [m, b, dl, res, n] {
          ForwardOutputs f = m->forward(b->tokens.data(), b->targets.data(), b->B, b->T, true, false, false);
          double loss = 0;
          int64_t cnt = 0;
          for (int64_t i = 0; i < n; i++)
            if ((*dl)[i] != 0.f) { loss += -(double)(*dl)[i] * -(double)f.logp[i]; cnt++; }
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
        releaser(), "model.forwardBackward");
  }

  Napi::Value ZeroGrad(const Napi::CallbackInfo& info) {
    check_idle(info.Env());
    model_->zero_grad();
    return info.Env().Undefined();
  }
  Napi::Value GradNorm(const Napi::CallbackInfo& info) {
    check_idle(info.Env());
    return Napi::Number::New(info.Env(), model_->grad_norm());
  }

  bool backward_ready() const { return model_->backward_ready(); }
  int64_t last_n() const { return model_->last_positions(); }

  std::shared_ptr<Transformer> model_;
  std::shared_ptr<std::atomic<bool>> busy_ = std::make_shared<std::atomic<bool>>(false);
  Napi::Reference<Napi::ArrayBuffer> params_ab_, grads_ab_;
};
Napi::FunctionReference ModelWrap::ctor;

class OptimizerWrap : public Napi::ObjectWrap<OptimizerWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "AdamW",
                       {InstanceMethod("step", &OptimizerWrap::Step), InstanceMethod("state", &OptimizerWrap::State),
                        InstanceMethod("setStepCount", &OptimizerWrap::SetStepCount),
                        InstanceAccessor("stepCount", &OptimizerWrap::StepCount, nullptr)});
  }
  OptimizerWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<OptimizerWrap>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsObject() || !info[0].As<Napi::Object>().InstanceOf(ModelWrap::ctor.Value()))
      throw error(env, "AdamW(model, options): model must be a Model");
    model_wrap_ = ModelWrap::Unwrap(info[0].As<Napi::Object>());
    model_ref_ = Napi::Persistent(info[0].As<Napi::Object>());
    Napi::Object o = info.Length() > 1 && info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
    AdamWConfig c;
    c.beta1 = (float)num_field(o, "beta1", 0.9);
    c.beta2 = (float)num_field(o, "beta2", 0.999);
    c.eps = (float)num_field(o, "eps", 1e-8);
    c.weight_decay = (float)num_field(o, "weightDecay", 0.0);
    try {
      opt_ = std::make_shared<AdamW>(*model_wrap_->model(), c);
    } catch (const std::exception& e) {
      throw error(env, e.what());
    }
  }

 private:
  // step({lr, maxGradNorm, threads}) -> Promise<{gradNorm, clipped}>: clip the global gradient norm, then AdamW.
  Napi::Value Step(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = object_arg(info, 0, "step options");
    double lr = num_field(o, "lr", 0, true);
    if (lr < 0) throw error(env, "lr must be >= 0, got " + std::to_string(lr));
    double max_norm = num_field(o, "maxGradNorm", 0);
    if (max_norm < 0) throw error(env, "maxGradNorm must be >= 0 (0 disables clipping)");
    int threads = (int)int_field(o, "threads", 1, false, 1, 1024);
    model_wrap_->acquire(env);
    auto m = model_wrap_->model();
    auto opt = opt_;
    auto res = std::make_shared<std::pair<double, bool>>(0.0, false);
    return PromiseTask::Start(
        env, threads,
        [m, opt, lr, max_norm, res] {
          double norm = m->grad_norm();
          FARM_CHECK(std::isfinite(norm), "gradient norm is not finite (", norm, "); the step was skipped");
          res->first = norm;
          if (max_norm > 0 && norm > max_norm) {
            m->scale_grads((float)(max_norm / (norm + 1e-6)));
            res->second = true;
          }
          opt->step(*m, (float)lr);
        },
        [res](Napi::Env env) -> Napi::Value {
          Napi::Object r = Napi::Object::New(env);
          r.Set("gradNorm", res->first);
          r.Set("clipped", res->second);
          return r;
        },
        model_wrap_->releaser(), "adamw.step");
  }
  Napi::Value State(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (m_ab_.IsEmpty()) {
      m_ab_ = Napi::Persistent(external_buffer(env, opt_->m));
      v_ab_ = Napi::Persistent(external_buffer(env, opt_->v));
    }
    Napi::Object r = Napi::Object::New(env);
    r.Set("step", (double)opt_->t);
    r.Set("m", Napi::Float32Array::New(env, opt_->m->size, m_ab_.Value(), 0));
    r.Set("v", Napi::Float32Array::New(env, opt_->v->size, v_ab_.Value(), 0));
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

  ModelWrap* model_wrap_ = nullptr;
  Napi::ObjectReference model_ref_;
  std::shared_ptr<AdamW> opt_;
  Napi::Reference<Napi::ArrayBuffer> m_ab_, v_ab_;
};

void RegisterModel(Napi::Env env, Napi::Object exports) {
  Napi::Function model = ModelWrap::Define(env);
  ModelWrap::ctor = Napi::Persistent(model);
  ModelWrap::ctor.SuppressDestruct();
  exports.Set("Model", model);
  exports.Set("AdamW", OptimizerWrap::Define(env));
}

}  // namespace farm::addon
