// RL kernels (see farm/rl.h). Sizes are a rollout batch (B*T ~ 1e4..1e6), far below a forward pass, so
// the loops are single-threaded, in a fixed order, with double accumulators: deterministic and exact enough.
#include "farm/rl.h"
#include <algorithm>
#include <cmath>
#include <limits>
#include "farm/common.h"

namespace farm::rl {
namespace {
inline double softplus(double z) { return std::max(z, 0.0) + std::log1p(std::exp(-std::fabs(z))); }
inline double sigmoid(double z) {
  if (z >= 0) return 1.0 / (1.0 + std::exp(-z));
  double e = std::exp(z);
  return e / (1.0 + e);
}
}  // namespace

void gae(const float* rewards, const float* values, const uint8_t* mask, int B, int T, double gamma, double lam,
         float* advantages, float* returns) {
  for (int b = 0; b < B; b++) {
    const size_t row = (size_t)b * T;
    double next_value = 0, next_adv = 0;
    for (int t = T - 1; t >= 0; t--) {
      const size_t i = row + t;
      if (!mask[i]) {
        advantages[i] = 0.f;
        returns[i] = 0.f;
        continue;
      }
      const double v = values[i];
      const double delta = (double)rewards[i] + gamma * next_value - v;
      const double a = delta + gamma * lam * next_adv;
      advantages[i] = (float)a;
      returns[i] = (float)(a + v);
      next_value = v;
      next_adv = a;
    }
  }
}

Moments masked_moments(const float* x, const uint8_t* mask, int64_t n, bool unbiased) {
  Moments m;
  double sum = 0;
  m.min = std::numeric_limits<double>::infinity();
  m.max = -std::numeric_limits<double>::infinity();
  for (int64_t i = 0; i < n; i++) {
    if (mask && !mask[i]) continue;
    sum += x[i];
    m.count++;
    m.min = std::min(m.min, (double)x[i]);
    m.max = std::max(m.max, (double)x[i]);
  }
  if (m.count == 0) {
    m.min = m.max = 0;
    return m;
  }
  m.mean = sum / (double)m.count;
  double ss = 0;  // two-pass variance: no cancellation
  for (int64_t i = 0; i < n; i++) {
    if (mask && !mask[i]) continue;
    const double d = x[i] - m.mean;
    ss += d * d;
  }
  const int64_t denom = unbiased ? m.count - 1 : m.count;
  m.var = denom > 0 ? ss / (double)denom : 0.0;
  return m;
}

Moments whiten(const float* x, const uint8_t* mask, int64_t n, bool shift_mean, bool unbiased, double eps, float* out) {
  Moments m = masked_moments(x, mask, n, unbiased);
  const double inv = 1.0 / std::sqrt(m.var + eps);
  for (int64_t i = 0; i < n; i++) {
    if (mask && !mask[i]) {
      out[i] = 0.f;
      continue;
    }
    double w = (x[i] - m.mean) * inv;
    if (!shift_mean) w += m.mean;
    out[i] = (float)w;
  }
  return m;
}

KLStats kl_penalized_rewards(const float* logp, const float* ref_logp, const uint8_t* mask, const float* scores, int B,
                             int T, double kl_coef, KLEstimator est, bool clamp, float* rewards, float* kl,
                             float* kl_sum) {
  KLStats s;
  double kl_all = 0, score_all = 0;
  int64_t tokens = 0;
  for (int b = 0; b < B; b++) {
    const size_t row = (size_t)b * T;
    int last = -1;
    double row_kl = 0;
    for (int t = 0; t < T; t++) {
      const size_t i = row + t;
      if (!mask[i]) {
        rewards[i] = 0.f;
        if (kl) kl[i] = 0.f;
        continue;
      }
      const double d = (double)logp[i] - (double)ref_logp[i];
      double k;
      switch (est) {
        case KLEstimator::K2: k = 0.5 * d * d; break;
        case KLEstimator::K3: k = std::expm1(-d) + d; break;
        default: k = clamp ? std::max(d, 0.0) : d; break;
      }
      rewards[i] = (float)(-kl_coef * k);
      if (kl) kl[i] = (float)k;
      row_kl += k;
      tokens++;
      last = t;
    }
    FARM_CHECK(last >= 0, "row ", b, " has no response position (its mask is all 0)");
    if (scores) {
      rewards[row + last] = (float)((double)rewards[row + last] + (double)scores[b]);
      score_all += scores[b];
    }
    if (kl_sum) kl_sum[b] = (float)row_kl;
    kl_all += row_kl;
  }
  s.kl_mean = kl_all / B;
  s.non_score_mean = -kl_coef * s.kl_mean;
  s.score_mean = score_all / B;
  s.kl_token_mean = tokens ? kl_all / (double)tokens : 0.0;
  return s;
}

PPOStats ppo_loss(const PPOInputs& in, const PPOConfig& cfg, const PPOGrads& grads) {
  PPOStats s;
  const bool policy = in.logp && in.old_logp && in.advantages;
  const bool value = in.values && in.old_values && in.returns;
  int64_t count = 0;
  for (int64_t i = 0; i < in.n; i++) count += in.mask[i] ? 1 : 0;
  s.tokens = count;
  const double N = cfg.normalizer > 0 ? cfg.normalizer : (double)std::max<int64_t>(count, 1);
  const double lo = 1.0 - cfg.cliprange, hi = 1.0 + cfg.cliprange;
  const double vclip = cfg.cliprange_value;
  const bool want_dent = grads.dentropy && in.entropy && cfg.ent_coef != 0;
  double pg_sum = 0, vf_sum = 0, ent_sum = 0, pg_clip = 0, vf_clip = 0, akl = 0, pkl = 0, r_sum = 0, verr = 0, v_sum = 0;
  for (int64_t i = 0; i < in.n; i++) {
    const bool m = in.mask[i] != 0;
    if (policy) {
      float g = 0.f;
      if (m) {
        const double d = (double)in.logp[i] - (double)in.old_logp[i];
        const double ratio = std::exp(d), A = in.advantages[i];
        const double l1 = -A * ratio, l2 = -A * std::min(std::max(ratio, lo), hi);
        // The clipped branch wins only when it is strictly larger; then the loss is flat in logp.
        const bool clipped = l2 > l1;
        pg_sum += clipped ? l2 : l1;
        pg_clip += clipped;
        if (!clipped) g = (float)(-A * ratio / N);
        akl += 0.5 * d * d;
        pkl += -d;
        r_sum += ratio;
      }
      if (grads.dlogp) grads.dlogp[i] = g;
    }
    if (value) {
      float g = 0.f;
      if (m) {
        const double V = in.values[i], Vo = in.old_values[i], R = in.returns[i];
        const double Vc = vclip > 0 ? Vo + std::min(std::max(V - Vo, -vclip), vclip) : V;
        const double l1 = (V - R) * (V - R), l2 = (Vc - R) * (Vc - R);
        const bool clipped = l2 > l1;
        vf_sum += 0.5 * (clipped ? l2 : l1);
        vf_clip += clipped;
        if (!clipped) g = (float)(cfg.vf_coef * (V - R) / N);
        verr += l1;
        v_sum += V;
      }
      if (grads.dvalues) grads.dvalues[i] = g;
    }
    if (in.entropy && m) ent_sum += in.entropy[i];
    if (grads.dentropy) grads.dentropy[i] = (want_dent && m) ? (float)(-cfg.ent_coef / N) : 0.f;
  }
  s.loss = (pg_sum + cfg.vf_coef * vf_sum - (in.entropy ? cfg.ent_coef * ent_sum : 0.0)) / N;
  if (count > 0) {
    const double c = (double)count;
    s.pg_loss = pg_sum / c;
    s.vf_loss = vf_sum / c;
    s.pg_clipfrac = pg_clip / c;
    s.vf_clipfrac = vf_clip / c;
    s.approxkl = akl / c;
    s.policykl = pkl / c;
    s.ratio_mean = r_sum / c;
    s.entropy = ent_sum / c;
    s.value_error = verr / c;
    s.vpred_mean = v_sum / c;
    if (policy) {  // second pass: variance of the ratio without cancellation
      double ss = 0;
      for (int64_t i = 0; i < in.n; i++) {
        if (!in.mask[i]) continue;
        const double r = std::exp((double)in.logp[i] - (double)in.old_logp[i]) - s.ratio_mean;
        ss += r * r;
      }
      s.ratio_var = ss / c;
    }
  }
  return s;
}

PairStats bradley_terry(const float* r1, const float* r2, const float* label, int64_t n, double normalizer, float* dr1,
                        float* dr2) {
  PairStats s;
  const double N = normalizer > 0 ? normalizer : (double)std::max<int64_t>(n, 1);
  double loss = 0, acc = 0, margin = 0, chosen = 0, rejected = 0;
  for (int64_t i = 0; i < n; i++) {
    const double z = (double)r2[i] - (double)r1[i], y = label[i];
    loss += softplus(z) - y * z;
    const double g = (sigmoid(z) - y) / N;
    if (dr2) dr2[i] = (float)g;
    if (dr1) dr1[i] = (float)-g;
    // A tie label (0.5) counts half whatever the prediction; a zero margin counts as predicting output 1.
    if (y == 0.5) acc += 0.5;
    else acc += ((z > 0) == (y > 0.5)) ? 1.0 : 0.0;
    margin += (2 * y - 1) * z;
    const bool second = y >= 0.5;
    chosen += second ? r2[i] : r1[i];
    rejected += second ? r1[i] : r2[i];
  }
  s.loss = loss / N;
  if (n > 0) {
    s.accuracy = acc / n;
    s.margin = margin / n;
    s.chosen_mean = chosen / n;
    s.rejected_mean = rejected / n;
  }
  return s;
}

DPOStats dpo_loss(const float* pc, const float* pr, const float* rc, const float* rr, int64_t n, double beta,
                  DPOLoss type, double ls, double normalizer, float* dpc, float* dpr) {
  DPOStats s;
  const double N = normalizer > 0 ? normalizer : (double)std::max<int64_t>(n, 1);
  double loss = 0, rw = 0, rl = 0, acc = 0, margin = 0, lw = 0, ll = 0;
  for (int64_t i = 0; i < n; i++) {
    const double lrw = (double)pc[i] - (double)rc[i], lrl = (double)pr[i] - (double)rr[i];
    const double h = lrw - lrl;
    double g;  // dloss/dh
    if (type == DPOLoss::IPO) {
      const double e = h - 1.0 / (2.0 * beta);
      loss += e * e;
      g = 2 * e;
    } else {
      const double z = beta * h;
      loss += (1 - ls) * softplus(-z) + ls * softplus(z);
      g = beta * (-(1 - ls) * sigmoid(-z) + ls * sigmoid(z));
    }
    if (dpc) dpc[i] = (float)(g / N);
    if (dpr) dpr[i] = (float)(-g / N);
    const double cw = beta * lrw, cl = beta * lrl;
    rw += cw;
    rl += cl;
    acc += cw > cl ? 1.0 : 0.0;
    margin += cw - cl;
    lw += pc[i];
    ll += pr[i];
  }
  s.loss = loss / N;
  if (n > 0) {
    s.rewards_chosen = rw / n;
    s.rewards_rejected = rl / n;
    s.accuracy = acc / n;
    s.margin = margin / n;
    s.logps_chosen = lw / n;
    s.logps_rejected = ll / n;
  }
  return s;
}

void sequence_log_ratio(const float* logp, const float* ref_logp, const uint8_t* mask, int B, int T, double* logp_sum,
                        double* ref_sum, double* ratio_sum, double* weighted_ratio_sum, int32_t* tokens,
                        float* log_ratio) {
  for (int b = 0; b < B; b++) {
    const size_t row = (size_t)b * T;
    double lp = 0, rf = 0, ra = 0, wr = 0;
    int32_t k = 0;
    for (int t = 0; t < T; t++) {
      const size_t i = row + t;
      if (!mask[i]) {
        if (log_ratio) log_ratio[i] = 0.f;
        continue;
      }
      lp += logp[i];
      if (ref_logp) {
        const double d = (double)logp[i] - (double)ref_logp[i];
        rf += ref_logp[i];
        ra += d;
        wr += d / (double)(k + 1);
        if (log_ratio) log_ratio[i] = (float)d;
      } else if (log_ratio) {
        log_ratio[i] = 0.f;
      }
      k++;
    }
    if (logp_sum) logp_sum[b] = lp;
    if (ref_sum) ref_sum[b] = rf;
    if (ratio_sum) ratio_sum[b] = ra;
    if (weighted_ratio_sum) weighted_ratio_sum[b] = wr;
    if (tokens) tokens[b] = k;
  }
}

}  // namespace farm::rl
