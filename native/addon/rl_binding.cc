// Bindings of the RL kernels (farm/rl.h). They run synchronously: a rollout batch is a few thousand to a
// million floats, microseconds to a millisecond, less than a thread hop. Every argument is checked here;
// the messages name the argument and the first bad index ("rewards[3] is NaN").
#include <napi.h>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>
#include "checks.h"
#include "farm/rl.h"
#include "registry.h"

namespace farm::addon {
namespace {

std::string num_str(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  std::ostringstream os;
  os << v;
  return os.str();
}

bool present(Napi::Object o, const char* key) {
  Napi::Value v = o.Get(key);
  return !(v.IsUndefined() || v.IsNull());
}

// A Float32Array of `len` elements (shape described by `shape` in the message), every value finite.
const float* floats(Napi::Object o, const char* key, int64_t len, const std::string& shape) {
  Napi::Env env = o.Env();
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) throw error(env, std::string(key) + " is required (Float32Array of " + shape + ")");
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw error(env, std::string(key) + " must be a Float32Array");
  auto a = v.As<Napi::Float32Array>();
  if ((int64_t)a.ElementLength() != len)
    throw error(env, std::string(key) + " must have " + std::to_string(len) + " elements (" + shape + "), got " +
                         std::to_string(a.ElementLength()));
  const float* d = a.Data();
  for (int64_t i = 0; i < len; i++)
    if (!std::isfinite(d[i])) throw error(env, std::string(key) + "[" + std::to_string(i) + "] is " + num_str(d[i]));
  return d;
}
const float* opt_floats(Napi::Object o, const char* key, int64_t len, const std::string& shape) {
  return present(o, key) ? floats(o, key, len, shape) : nullptr;
}

// A mask as Uint8Array or Float32Array of 0/1 values, copied into bytes.
std::vector<uint8_t> mask_arg(Napi::Object o, const char* key, int64_t len, const std::string& shape) {
  Napi::Env env = o.Env();
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) throw error(env, std::string(key) + " is required (Uint8Array or Float32Array of " + shape + ")");
  if (!v.IsTypedArray()) throw error(env, std::string(key) + " must be a Uint8Array or Float32Array of 0/1");
  auto ta = v.As<Napi::TypedArray>();
  if ((int64_t)ta.ElementLength() != len)
    throw error(env, std::string(key) + " must have " + std::to_string(len) + " elements (" + shape + "), got " +
                         std::to_string(ta.ElementLength()));
  std::vector<uint8_t> m((size_t)len);
  auto bad = [&](int64_t i, double x) {
    return error(env, std::string(key) + "[" + std::to_string(i) + "] = " + num_str(x) + " is not 0 or 1");
  };
  if (ta.TypedArrayType() == napi_uint8_array) {
    const uint8_t* d = v.As<Napi::Uint8Array>().Data();
    for (int64_t i = 0; i < len; i++) {
      if (d[i] > 1) throw bad(i, d[i]);
      m[i] = d[i];
    }
  } else if (ta.TypedArrayType() == napi_float32_array) {
    const float* d = v.As<Napi::Float32Array>().Data();
    for (int64_t i = 0; i < len; i++) {
      if (d[i] != 0.f && d[i] != 1.f) throw bad(i, d[i]);
      m[i] = d[i] == 1.f;
    }
  } else {
    throw error(env, std::string(key) + " must be a Uint8Array or Float32Array of 0/1");
  }
  return m;
}

struct Shape {
  int B = 0, T = 0;
  int64_t n = 0;
  std::string desc;
};
Shape shape_arg(Napi::Object o) {
  Shape s;
  s.B = (int)int_field(o, "batch", 0, true, 1, 1 << 24);
  s.T = (int)int_field(o, "seqLen", 0, true, 1, 1 << 24);
  s.n = (int64_t)s.B * s.T;
  if (s.n > (1LL << 31) - 1) throw error(o.Env(), "batch * seqLen is too large");
  s.desc = "batch " + std::to_string(s.B) + " x seqLen " + std::to_string(s.T);
  return s;
}

// Length of a Float32Array field (to size 1-D inputs), required.
int64_t length_of(Napi::Object o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw error(o.Env(), std::string(key) + " must be a Float32Array");
  return (int64_t)v.As<Napi::TypedArray>().ElementLength();
}

Napi::Float32Array new_f32(Napi::Env env, int64_t n) { return Napi::Float32Array::New(env, (size_t)n); }

void check_rows_have_response(Napi::Env env, const std::vector<uint8_t>& m, const Shape& s, const char* key) {
  for (int b = 0; b < s.B; b++) {
    bool any = false;
    for (int t = 0; t < s.T && !any; t++) any = m[(size_t)b * s.T + t] != 0;
    if (!any) throw error(env, std::string(key) + ": row " + std::to_string(b) + " has no response position (all 0)");
  }
}

Napi::Object moments_object(Napi::Env env, const rl::Moments& m) {
  Napi::Object r = Napi::Object::New(env);
  r.Set("mean", m.mean);
  r.Set("var", m.var);
  r.Set("min", m.min);
  r.Set("max", m.max);
  r.Set("count", (double)m.count);
  return r;
}

// gae({rewards, values, mask, batch, seqLen, gamma, lambda}) -> {advantages, returns}
Napi::Value Gae(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = object_arg(info, 0, "gae options");
  Shape s = shape_arg(o);
  const float* r = floats(o, "rewards", s.n, s.desc);
  const float* v = floats(o, "values", s.n, s.desc);
  auto m = mask_arg(o, "mask", s.n, s.desc);
  double gamma = num_field(o, "gamma", 1.0), lam = num_field(o, "lambda", 1.0);
  if (gamma < 0 || gamma > 1) throw error(env, "gamma must be in [0, 1], got " + num_str(gamma));
  if (lam < 0 || lam > 1) throw error(env, "lambda must be in [0, 1], got " + num_str(lam));
  Napi::Float32Array adv = new_f32(env, s.n), ret = new_f32(env, s.n);
  rl::gae(r, v, m.data(), s.B, s.T, gamma, lam, adv.Data(), ret.Data());
  Napi::Object out = Napi::Object::New(env);
  out.Set("advantages", adv);
  out.Set("returns", ret);
  return out;
}

// whiten({x, mask?, shiftMean = true, unbiased = false, eps = 1e-8}) -> {out, mean, var, count}
Napi::Value Whiten(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = object_arg(info, 0, "whiten options");
  const int64_t n = length_of(o, "x");
  const float* x = floats(o, "x", n, std::to_string(n) + " values");
  std::vector<uint8_t> m;
  if (present(o, "mask")) m = mask_arg(o, "mask", n, "same length as x");
  bool shift = bool_field(o, "shiftMean", true), unbiased = bool_field(o, "unbiased", false);
  double eps = num_field(o, "eps", 1e-8);
  if (eps < 0) throw error(env, "eps must be >= 0");
  int64_t count = m.empty() ? n : 0;
  for (uint8_t b : m) count += b;
  if (count == 0) throw error(env, "whiten: no position is selected (empty input or all-zero mask)");
  if (unbiased && count < 2) throw error(env, "whiten: the unbiased variance needs at least 2 selected positions");
  Napi::Float32Array out = new_f32(env, n);
  rl::Moments mo = rl::whiten(x, m.empty() ? nullptr : m.data(), n, shift, unbiased, eps, out.Data());
  Napi::Object r = moments_object(env, mo);
  r.Set("out", out);
  return r;
}

// moments({x, mask?, unbiased = false}) -> {mean, var, min, max, count}
Napi::Value Moments(const Napi::CallbackInfo& info) {
  Napi::Object o = object_arg(info, 0, "moments options");
  const int64_t n = length_of(o, "x");
  const float* x = floats(o, "x", n, std::to_string(n) + " values");
  std::vector<uint8_t> m;
  if (present(o, "mask")) m = mask_arg(o, "mask", n, "same length as x");
  return moments_object(info.Env(), rl::masked_moments(x, m.empty() ? nullptr : m.data(), n, bool_field(o, "unbiased", false)));
}

// klRewards({logp, refLogp, mask, scores?, batch, seqLen, klCoef, estimator = 'k1', clamp = false})
//   -> {rewards, kl, klSum, klMean, nonScoreReward, scoreMean, klTokenMean}
Napi::Value KLRewards(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = object_arg(info, 0, "klRewards options");
  Shape s = shape_arg(o);
  const float* lp = floats(o, "logp", s.n, s.desc);
  const float* ref = floats(o, "refLogp", s.n, s.desc);
  auto m = mask_arg(o, "mask", s.n, s.desc);
  const float* scores = opt_floats(o, "scores", s.B, "one per row, batch " + std::to_string(s.B));
  double coef = num_field(o, "klCoef", 0, true);
  if (coef < 0) throw error(env, "klCoef must be >= 0, got " + num_str(coef));
  rl::KLEstimator est = rl::KLEstimator::K1;
  if (present(o, "estimator")) {
    Napi::Value ev = o.Get("estimator");
    std::string e = ev.IsString() ? ev.As<Napi::String>().Utf8Value() : "";
    if (e == "k1") est = rl::KLEstimator::K1;
    else if (e == "k2") est = rl::KLEstimator::K2;
    else if (e == "k3") est = rl::KLEstimator::K3;
    else throw error(env, "estimator must be 'k1', 'k2' or 'k3'");
  }
  bool clamp = bool_field(o, "clamp", false);
  check_rows_have_response(env, m, s, "mask");
  Napi::Float32Array rewards = new_f32(env, s.n), kl = new_f32(env, s.n), kl_sum = new_f32(env, s.B);
  rl::KLStats st = rl::kl_penalized_rewards(lp, ref, m.data(), scores, s.B, s.T, coef, est, clamp, rewards.Data(),
                                            kl.Data(), kl_sum.Data());
  Napi::Object r = Napi::Object::New(env);
  r.Set("rewards", rewards);
  r.Set("kl", kl);
  r.Set("klSum", kl_sum);
  r.Set("klMean", st.kl_mean);
  r.Set("nonScoreReward", st.non_score_mean);
  r.Set("scoreMean", st.score_mean);
  r.Set("klTokenMean", st.kl_token_mean);
  return r;
}

// ppoLoss({mask, logp?, oldLogp?, advantages?, values?, oldValues?, returns?, entropy?, cliprange = 0.2,
//          cliprangeValue = 0.2, vfCoef = 0.1, entCoef = 0, normalizer = 0}) -> stats + {dlogp?, dvalues?, dentropy?}
Napi::Value PPOLoss(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = object_arg(info, 0, "ppoLoss options");
  Napi::Value mv = o.Get("mask");
  if (!mv.IsTypedArray()) throw error(env, "mask is required (Uint8Array or Float32Array of 0/1)");
  const int64_t n = (int64_t)mv.As<Napi::TypedArray>().ElementLength();
  const std::string desc = "same length as mask, " + std::to_string(n);
  auto m = mask_arg(o, "mask", n, desc);
  rl::PPOInputs in;
  in.n = n;
  in.mask = m.data();
  const bool pol = present(o, "logp") || present(o, "oldLogp") || present(o, "advantages");
  const bool val = present(o, "values") || present(o, "oldValues") || present(o, "returns");
  if (!pol && !val) throw error(env, "ppoLoss needs the policy inputs (logp, oldLogp, advantages) and/or the value inputs (values, oldValues, returns)");
  if (pol) {
    in.logp = floats(o, "logp", n, desc);
    in.old_logp = floats(o, "oldLogp", n, desc);
    in.advantages = floats(o, "advantages", n, desc);
  }
  if (val) {
    in.values = floats(o, "values", n, desc);
    in.old_values = floats(o, "oldValues", n, desc);
    in.returns = floats(o, "returns", n, desc);
  }
  in.entropy = opt_floats(o, "entropy", n, desc);
  rl::PPOConfig c;
  c.cliprange = num_field(o, "cliprange", 0.2);
  c.cliprange_value = num_field(o, "cliprangeValue", 0.2);
  c.vf_coef = num_field(o, "vfCoef", 0.1);
  c.ent_coef = num_field(o, "entCoef", 0.0);
  c.normalizer = num_field(o, "normalizer", 0.0);
  if (!(c.cliprange > 0 && c.cliprange < 1)) throw error(env, "cliprange must be in (0, 1), got " + num_str(c.cliprange));
  if (c.cliprange_value < 0) throw error(env, "cliprangeValue must be >= 0 (0 disables value clipping)");
  if (c.vf_coef < 0) throw error(env, "vfCoef must be >= 0");
  if (c.normalizer < 0) throw error(env, "normalizer must be >= 0 (0: the masked token count)");
  if (c.ent_coef != 0 && !in.entropy) throw error(env, "entCoef != 0 needs entropy");
  Napi::Float32Array dl, dv, de;
  rl::PPOGrads g;
  if (pol) { dl = new_f32(env, n); g.dlogp = dl.Data(); }
  if (val) { dv = new_f32(env, n); g.dvalues = dv.Data(); }
  if (in.entropy && c.ent_coef != 0) { de = new_f32(env, n); g.dentropy = de.Data(); }
  rl::PPOStats st = rl::ppo_loss(in, c, g);
  Napi::Object r = Napi::Object::New(env);
  r.Set("loss", st.loss);
  r.Set("tokens", (double)st.tokens);
  if (pol) {
    r.Set("pgLoss", st.pg_loss);
    r.Set("pgClipfrac", st.pg_clipfrac);
    r.Set("approxkl", st.approxkl);
    r.Set("policykl", st.policykl);
    r.Set("ratioMean", st.ratio_mean);
    r.Set("ratioVar", st.ratio_var);
    r.Set("dlogp", dl);
  }
  if (val) {
    r.Set("vfLoss", st.vf_loss);
    r.Set("vfClipfrac", st.vf_clipfrac);
    r.Set("valueError", st.value_error);
    r.Set("vpredMean", st.vpred_mean);
    r.Set("dvalues", dv);
  }
  if (in.entropy) r.Set("entropy", st.entropy);
  if (g.dentropy) r.Set("dentropy", de);
  return r;
}

// bradleyTerry({r1, r2, label, normalizer = 0}) -> {loss, accuracy, margin, chosenMean, rejectedMean, dr1, dr2}
Napi::Value BradleyTerry(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = object_arg(info, 0, "bradleyTerry options");
  const int64_t n = length_of(o, "r1");
  if (n == 0) throw error(env, "bradleyTerry: empty batch");
  const std::string desc = "one per pair, " + std::to_string(n);
  const float* r1 = floats(o, "r1", n, desc);
  const float* r2 = floats(o, "r2", n, desc);
  const float* y = floats(o, "label", n, desc);
  for (int64_t i = 0; i < n; i++)
    if (y[i] < 0 || y[i] > 1) throw error(env, "label[" + std::to_string(i) + "] = " + num_str(y[i]) + " is outside [0, 1]");
  double norm = num_field(o, "normalizer", 0);
  if (norm < 0) throw error(env, "normalizer must be >= 0");
  Napi::Float32Array d1 = new_f32(env, n), d2 = new_f32(env, n);
  rl::PairStats st = rl::bradley_terry(r1, r2, y, n, norm, d1.Data(), d2.Data());
  Napi::Object r = Napi::Object::New(env);
  r.Set("loss", st.loss);
  r.Set("accuracy", st.accuracy);
  r.Set("margin", st.margin);
  r.Set("chosenMean", st.chosen_mean);
  r.Set("rejectedMean", st.rejected_mean);
  r.Set("dr1", d1);
  r.Set("dr2", d2);
  return r;
}

// dpoLoss({policyChosen, policyRejected, refChosen, refRejected, beta = 0.1, lossType = 'sigmoid',
//          labelSmoothing = 0, normalizer = 0}) -> {loss, rewardsChosen, rewardsRejected, accuracy, margin, ..., dChosen, dRejected}
Napi::Value DPOLossFn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = object_arg(info, 0, "dpoLoss options");
  const int64_t n = length_of(o, "policyChosen");
  if (n == 0) throw error(env, "dpoLoss: empty batch");
  const std::string desc = "one per pair, " + std::to_string(n);
  const float* pc = floats(o, "policyChosen", n, desc);
  const float* pr = floats(o, "policyRejected", n, desc);
  const float* rc = floats(o, "refChosen", n, desc);
  const float* rr = floats(o, "refRejected", n, desc);
  double beta = num_field(o, "beta", 0.1), ls = num_field(o, "labelSmoothing", 0), norm = num_field(o, "normalizer", 0);
  if (!(beta > 0)) throw error(env, "beta must be > 0, got " + num_str(beta));
  if (ls < 0 || ls >= 0.5) throw error(env, "labelSmoothing must be in [0, 0.5), got " + num_str(ls));
  if (norm < 0) throw error(env, "normalizer must be >= 0");
  rl::DPOLoss type = rl::DPOLoss::Sigmoid;
  if (present(o, "lossType")) {
    Napi::Value tv = o.Get("lossType");
    std::string t = tv.IsString() ? tv.As<Napi::String>().Utf8Value() : "";
    if (t == "sigmoid") type = rl::DPOLoss::Sigmoid;
    else if (t == "ipo") type = rl::DPOLoss::IPO;
    else throw error(env, "lossType must be 'sigmoid' or 'ipo' (cDPO is 'sigmoid' with labelSmoothing > 0)");
  }
  if (type == rl::DPOLoss::IPO && ls != 0) throw error(env, "labelSmoothing applies to the sigmoid loss only");
  Napi::Float32Array dc = new_f32(env, n), dr = new_f32(env, n);
  rl::DPOStats st = rl::dpo_loss(pc, pr, rc, rr, n, beta, type, ls, norm, dc.Data(), dr.Data());
  Napi::Object r = Napi::Object::New(env);
  r.Set("loss", st.loss);
  r.Set("rewardsChosen", st.rewards_chosen);
  r.Set("rewardsRejected", st.rewards_rejected);
  r.Set("accuracy", st.accuracy);
  r.Set("margin", st.margin);
  r.Set("logpsChosen", st.logps_chosen);
  r.Set("logpsRejected", st.logps_rejected);
  r.Set("dChosen", dc);
  r.Set("dRejected", dr);
  return r;
}

// sequenceLogRatio({logp, refLogp?, mask, batch, seqLen}) -> {logpSum, refLogpSum?, logRatioSum?,
//   weightedLogRatioSum?, tokens, logRatio?} (sums as Float64Array, one per row)
Napi::Value SequenceLogRatio(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = object_arg(info, 0, "sequenceLogRatio options");
  Shape s = shape_arg(o);
  const float* lp = floats(o, "logp", s.n, s.desc);
  const float* ref = opt_floats(o, "refLogp", s.n, s.desc);
  auto m = mask_arg(o, "mask", s.n, s.desc);
  Napi::Float64Array lsum = Napi::Float64Array::New(env, s.B);
  Napi::Int32Array tok = Napi::Int32Array::New(env, s.B);
  Napi::Object r = Napi::Object::New(env);
  if (ref) {
    Napi::Float64Array rsum = Napi::Float64Array::New(env, s.B), ratio = Napi::Float64Array::New(env, s.B),
                       wr = Napi::Float64Array::New(env, s.B);
    Napi::Float32Array lr = new_f32(env, s.n);
    rl::sequence_log_ratio(lp, ref, m.data(), s.B, s.T, lsum.Data(), rsum.Data(), ratio.Data(), wr.Data(), tok.Data(),
                           lr.Data());
    r.Set("refLogpSum", rsum);
    r.Set("logRatioSum", ratio);
    r.Set("weightedLogRatioSum", wr);
    r.Set("logRatio", lr);
  } else {
    rl::sequence_log_ratio(lp, nullptr, m.data(), s.B, s.T, lsum.Data(), nullptr, nullptr, nullptr, tok.Data(), nullptr);
  }
  r.Set("logpSum", lsum);
  r.Set("tokens", tok);
  return r;
}

// Wraps a binding so that farm::Error from a kernel becomes a JS Error too.
template <Napi::Value (*F)(const Napi::CallbackInfo&)>
Napi::Value guarded(const Napi::CallbackInfo& info) {
  try {
    return F(info);
  } catch (const farm::Error& e) {
    throw error(info.Env(), e.what());
  }
}

}  // namespace

void RegisterRL(Napi::Env env, Napi::Object exports) {
  Napi::Object rl = Napi::Object::New(env);
  rl.Set("gae", Napi::Function::New(env, guarded<Gae>));
  rl.Set("whiten", Napi::Function::New(env, guarded<Whiten>));
  rl.Set("moments", Napi::Function::New(env, guarded<Moments>));
  rl.Set("klRewards", Napi::Function::New(env, guarded<KLRewards>));
  rl.Set("ppoLoss", Napi::Function::New(env, guarded<PPOLoss>));
  rl.Set("bradleyTerry", Napi::Function::New(env, guarded<BradleyTerry>));
  rl.Set("dpoLoss", Napi::Function::New(env, guarded<DPOLossFn>));
  rl.Set("sequenceLogRatio", Napi::Function::New(env, guarded<SequenceLogRatio>));
  exports.Set("rl", rl);
}

}  // namespace farm::addon
