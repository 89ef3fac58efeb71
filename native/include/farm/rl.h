// RL kernels: GAE, whitening, per-token KL penalty, PPO policy/value losses, Bradley-Terry and DPO losses,
// sequence log-ratios. Plain functions over [B,T] row-major buffers; position t of a row holds what
// concerns the token at t+1 (the action), as the model's per-position log-probs do. `mask` marks the
// response positions (1) against prompt and padding (0). Sums accumulate in double, in a fixed order, so
// results are deterministic. Gradients are of the returned loss; masked-out positions get 0.
#pragma once
#include <cstdint>

namespace farm::rl {

// Generalized advantage estimation over the masked positions of each row (holes are skipped: the value
// after the last masked position is 0). delta_t = r_t + gamma V_next - V_t; A_t = delta_t + gamma lam A_next;
// returns = A + V. Masked-out positions get 0.
void gae(const float* rewards, const float* values, const uint8_t* mask, int B, int T, double gamma, double lam,
         float* advantages, float* returns);

struct Moments {
  double mean = 0, var = 0, min = 0, max = 0;  // var: biased (1/N) unless asked otherwise
  int64_t count = 0;
};
// Mean/var/min/max of x over masked positions (all positions when mask is null).
Moments masked_moments(const float* x, const uint8_t* mask, int64_t n, bool unbiased);

// out = (x - mean) / sqrt(var + eps) (+ mean when !shift_mean) over masked positions; 0 elsewhere.
// Returns the moments of x used. out may alias x.
Moments whiten(const float* x, const uint8_t* mask, int64_t n, bool shift_mean, bool unbiased, double eps, float* out);

enum class KLEstimator { K1 = 1, K2 = 2, K3 = 3 };
// kl_t from log pi - log pi_ref: k1 = d (clamped at 0 when clamp), k2 = d^2/2, k3 = exp(-d) - 1 + d.
// rewards_t = -kl_coef * kl_t on masked positions, plus scores[b] on the last masked position of row b.
// Per row: kl_sum[b] = sum of kl_t (the estimator, before the coefficient). Every row needs a masked position.
struct KLStats {
  double kl_mean = 0;        // mean over rows of kl_sum
  double non_score_mean = 0;  // mean over rows of -kl_coef * kl_sum
  double score_mean = 0;
  double kl_token_mean = 0;  // mean over masked tokens
};
KLStats kl_penalized_rewards(const float* logp, const float* ref_logp, const uint8_t* mask, const float* scores, int B,
                             int T, double kl_coef, KLEstimator est, bool clamp, float* rewards, float* kl,
                             float* kl_sum);

struct PPOConfig {
  double cliprange = 0.2;        // epsilon of the ratio clip
  double cliprange_value = 0.2;  // value clip around the old values (<= 0: no value clipping)
  double vf_coef = 0.1;
  double ent_coef = 0.0;         // entropy bonus: loss -= ent_coef * mean entropy
  double normalizer = 0;         // divide token sums by this (> 0), e.g. a whole minibatch's token count
};
// Which parts are present: logp/old_logp/advantages (policy), values/old_values/returns (value), entropy.
struct PPOInputs {
  const float* logp = nullptr;
  const float* old_logp = nullptr;
  const float* advantages = nullptr;
  const float* values = nullptr;
  const float* old_values = nullptr;
  const float* returns = nullptr;
  const float* entropy = nullptr;
  const uint8_t* mask = nullptr;
  int64_t n = 0;
};
struct PPOGrads {
  float* dlogp = nullptr;      // [n] (policy part)
  float* dvalues = nullptr;    // [n] (value part)
  float* dentropy = nullptr;   // [n] (when ent_coef != 0 and entropy given)
};
// Statistics are means over the masked tokens of this call (TRL names in comments).
struct PPOStats {
  double loss = 0;             // pg_loss + vf_coef * vf_loss - ent_coef * entropy (sums / normalizer)
  double pg_loss = 0;          // loss/policy_avg
  double vf_loss = 0;          // loss/value_avg: 0.5 * max((V-R)^2, (Vclip-R)^2)
  double pg_clipfrac = 0;      // policy/clipfrac_avg
  double vf_clipfrac = 0;      // val/clipfrac_avg
  double approxkl = 0;         // policy/approxkl_avg: 0.5 * (logp - old)^2
  double policykl = 0;         // mean(old - logp)
  double ratio_mean = 0, ratio_var = 0;  // val/ratio, val/ratio_var
  double entropy = 0;          // policy/entropy_avg
  double value_error = 0;      // val/error: (V - R)^2
  double vpred_mean = 0;       // val/vpred
  int64_t tokens = 0;
};
PPOStats ppo_loss(const PPOInputs& in, const PPOConfig& cfg, const PPOGrads& grads);

// Bradley-Terry: z = r2 - r1, loss = mean BCE-with-logits(z, label), label = P(output 2 preferred) in [0,1].
struct PairStats {
  double loss = 0, accuracy = 0, margin = 0;  // margin: mean of (preferred - other) reward
  double chosen_mean = 0, rejected_mean = 0;
};
PairStats bradley_terry(const float* r1, const float* r2, const float* label, int64_t n, double normalizer, float* dr1,
                        float* dr2);

enum class DPOLoss { Sigmoid = 0, IPO = 1 };
// Summed response log-probs of chosen (w) and rejected (l) under policy and reference. Sigmoid with
// label_smoothing > 0 is cDPO: (1-ls) * -log sigma(h) + ls * -log sigma(-h), h = beta * (logratio_w - logratio_l).
// IPO: ((logratio_w - logratio_l) - 1/(2 beta))^2.
struct DPOStats {
  double loss = 0, rewards_chosen = 0, rewards_rejected = 0, accuracy = 0, margin = 0;
  double logps_chosen = 0, logps_rejected = 0;
};
DPOStats dpo_loss(const float* pc, const float* pr, const float* rc, const float* rr, int64_t n, double beta,
                  DPOLoss type, double label_smoothing, double normalizer, float* dpc, float* dpr);

// Per row sums over masked positions: logp_sum, ref_sum (when ref given), log-ratio sum, and the
// position-weighted log-ratio sum with weights w_k = 1/(k+1) (k = index among the row's masked
// positions; TreeBoN's partial reward). log_ratio[i] = logp - ref on masked positions (optional output).
void sequence_log_ratio(const float* logp, const float* ref_logp, const uint8_t* mask, int B, int T, double* logp_sum,
                        double* ref_sum, double* ratio_sum, double* weighted_ratio_sum, int32_t* tokens,
                        float* log_ratio);

}  // namespace farm::rl
