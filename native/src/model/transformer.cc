// The decoder: parameter layout (Hugging Face names), forward and backward over a padded batch.
#include "farm/model.h"
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include "farm/common.h"
#include "farm/kernels.h"
#include "farm/profile.h"
#include "farm/rng.h"

namespace farm {

FloatBuffer::FloatBuffer(size_t n) : size(n) {
  size_t bytes = ((n * sizeof(float) + 63) / 64) * 64;
  data = static_cast<float*>(std::aligned_alloc(64, bytes ? bytes : 64));
  FARM_CHECK(data != nullptr, "out of memory allocating ", bytes, " bytes");
  std::memset(data, 0, bytes);
}
FloatBuffer::~FloatBuffer() { std::free(data); }

void ModelConfig::validate() const {
  auto pos = [](const char* name, long v, long hi) {
    FARM_CHECK(v >= 1 && v <= hi, "config.", name, " must be in [1, ", hi, "], got ", v);
  };
  pos("vocab_size", vocab_size, 1 << 22);
  pos("hidden_size", hidden_size, 1 << 16);
  pos("intermediate_size", intermediate_size, 1 << 18);
  pos("num_hidden_layers", num_hidden_layers, 1024);
  pos("num_attention_heads", num_attention_heads, 1024);
  pos("num_key_value_heads", num_key_value_heads, 1024);
  pos("max_position_embeddings", max_position_embeddings, 1 << 20);
  FARM_CHECK(hidden_size % num_attention_heads == 0, "config.hidden_size (", hidden_size,
             ") must be divisible by num_attention_heads (", num_attention_heads, ")");
  FARM_CHECK(head_dim() % 2 == 0, "head_dim = hidden_size / num_attention_heads must be even for rotary embeddings, got ",
             head_dim());
  FARM_CHECK(num_attention_heads % num_key_value_heads == 0, "config.num_attention_heads (", num_attention_heads,
             ") must be divisible by num_key_value_heads (", num_key_value_heads, ")");
  FARM_CHECK(std::isfinite(rms_norm_eps) && rms_norm_eps > 0, "config.rms_norm_eps must be > 0");
  FARM_CHECK(std::isfinite(rope_theta) && rope_theta > 0, "config.rope_theta must be > 0");
  FARM_CHECK(lm_head || scalar_head, "a model needs an LM head or a scalar head");
}

// Activations of one batch shape, in one allocation. Per layer l (all layers when training, one when not):
struct Transformer::Acts {
  int B = 0, T = 0, layers = 0;
  bool backward = false, logits_kept = false;
  FloatBufferPtr buf;
  std::vector<float*> res;                        // residual stream inputs [BT,C], layers+1 (2 when not training)
  std::vector<float*> xn1, rstd1, q, k, v, att, atty, xmid, xn2, rstd2, gate, up, h;
  float *xnf = nullptr, *rstdf = nullptr, *logits = nullptr, *lse = nullptr, *logp = nullptr, *entropy = nullptr,
        *values = nullptr;
  // backward scratch
  float *dres = nullptr, *dxn = nullptr, *dh = nullptr, *dgate = nullptr, *dup = nullptr, *datty = nullptr,
        *dq = nullptr, *dk = nullptr, *dv = nullptr;
};

Transformer::Transformer(const ModelConfig& cfg, uint64_t seed, float init_std) : cfg_(cfg) {
  cfg_.validate();
  FARM_CHECK(std::isfinite(init_std) && init_std >= 0, "init_std must be >= 0");
  const int64_t C = cfg.hidden_size, I = cfg.intermediate_size, V = cfg.vocab_size, HD = cfg_.head_dim();
  const int64_t NH = cfg.num_attention_heads, NKV = cfg.num_key_value_heads;
  auto add = [&](std::string name, std::vector<int64_t> shape, bool decay) {
    ParamInfo p;
    p.name = std::move(name);
    p.shape = std::move(shape);
    p.size = 1;
    for (auto d : p.shape) p.size *= d;
    p.offset = n_params_;
    p.decay = decay;
    n_params_ += (p.size + 15) / 16 * 16;  // keep every tensor 64-byte aligned
    params_.push_back(p);
    return params_.size() - 1;
  };
  i_embed_ = add("model.embed_tokens.weight", {V, C}, true);
  for (int l = 0; l < cfg.num_hidden_layers; l++) {
    std::string pre = "model.layers." + std::to_string(l) + ".";
    LayerIdx L;
    L.ln1 = add(pre + "input_layernorm.weight", {C}, false);
    L.q = add(pre + "self_attn.q_proj.weight", {NH * HD, C}, true);
    L.k = add(pre + "self_attn.k_proj.weight", {NKV * HD, C}, true);
    L.v = add(pre + "self_attn.v_proj.weight", {NKV * HD, C}, true);
    L.o = add(pre + "self_attn.o_proj.weight", {C, NH * HD}, true);
    L.ln2 = add(pre + "post_attention_layernorm.weight", {C}, false);
    L.gate = add(pre + "mlp.gate_proj.weight", {I, C}, true);
    L.up = add(pre + "mlp.up_proj.weight", {I, C}, true);
    L.down = add(pre + "mlp.down_proj.weight", {C, I}, true);
    layers_.push_back(L);
  }
  i_norm_ = add("model.norm.weight", {C}, false);
  if (cfg.lm_head && !cfg.tie_word_embeddings) i_lm_ = add("lm_head.weight", {V, C}, true);
  if (cfg.scalar_head) {
    i_score_w_ = add("score.weight", {1, C}, true);
    i_score_b_ = add("score.bias", {1}, false);
  }
  weights_ = std::make_shared<FloatBuffer>(n_params_);
  grads_ = std::make_shared<FloatBuffer>(n_params_);
  // Init as transformers' LlamaPreTrainedModel: normal(0, initializer_range) weights, ones for norms;
  // the scalar head starts at zero (a fresh value head, as AlpacaFarm's PPO).
  for (size_t i = 0; i < params_.size(); i++) {
    const ParamInfo& pi = params_[i];
    float* w = weights_->data + pi.offset;
    bool is_norm = pi.shape.size() == 1 && i != i_score_b_;
    if (is_norm) { std::fill(w, w + pi.size, 1.0f); continue; }
    if (i == i_score_w_ || i == i_score_b_) continue;
#pragma omp parallel for schedule(static)
    for (int64_t j = 0; j < (int64_t)pi.size; j++) w[j] = init_std * rand_normal(seed, 1000 + i, (uint64_t)j);
  }
  // Rotary tables as transformers computes them: inv_freq in fp32, angle = pos * inv_freq in fp32.
  const int half = (int)HD / 2, P = cfg.max_position_embeddings;
  rope_cos_.resize((size_t)P * half);
  rope_sin_.resize((size_t)P * half);
  for (int i = 0; i < half; i++) {
    float inv_freq = 1.0f / std::pow(cfg.rope_theta, (float)(2 * i) / (float)HD);
    for (int t = 0; t < P; t++) {
      float ang = (float)t * inv_freq;
      rope_cos_[(size_t)t * half + i] = std::cos(ang);
      rope_sin_[(size_t)t * half + i] = std::sin(ang);
    }
  }
}

Transformer::~Transformer() = default;

size_t Transformer::activation_bytes() const { return acts_ && acts_->buf ? acts_->buf->size * sizeof(float) : 0; }

void Transformer::ensure_acts(int B, int T, bool need_backward, bool keep_logits) {
  if (acts_ && acts_->B == B && acts_->T == T && acts_->backward == need_backward && acts_->logits_kept == keep_logits)
    return;
  // Batches of varying length reuse one buffer when it is large enough (no allocation, no page faults per
  // step); a larger shape frees the old buffer first so peak memory stays one set of activations.
  FloatBufferPtr keep = acts_ ? acts_->buf : nullptr;
  acts_.reset();
  auto a = std::make_unique<Acts>();
  const size_t BT = (size_t)B * T, C = cfg_.hidden_size, I = cfg_.intermediate_size, V = cfg_.vocab_size;
  const size_t HD = cfg_.head_dim(), NH = cfg_.num_attention_heads, NKV = cfg_.num_key_value_heads;
  const int L = cfg_.num_hidden_layers, Lb = need_backward ? L : 1;
  a->B = B; a->T = T; a->layers = Lb; a->backward = need_backward; a->logits_kept = keep_logits;
  // Layout pass: offsets first, then one allocation.
  std::vector<std::pair<float**, size_t>> plan;
  std::vector<std::vector<float*>*> lists;
  auto one = [&](float** p, size_t n) { plan.push_back({p, (n + 15) / 16 * 16}); };
  int nres = need_backward ? L + 1 : 2;
  a->res.resize(nres);
  for (int i = 0; i < nres; i++) one(&a->res[i], BT * C);
  for (auto* vec : {&a->xn1, &a->rstd1, &a->q, &a->k, &a->v, &a->att, &a->atty, &a->xmid, &a->xn2, &a->rstd2, &a->gate,
                    &a->up, &a->h})
    vec->resize(Lb);
  for (int l = 0; l < Lb; l++) {
    one(&a->xn1[l], BT * C); one(&a->rstd1[l], BT);
    one(&a->q[l], BT * NH * HD); one(&a->k[l], BT * NKV * HD); one(&a->v[l], BT * NKV * HD);
    one(&a->att[l], (size_t)B * NH * T * T); one(&a->atty[l], BT * NH * HD);
    one(&a->xmid[l], BT * C); one(&a->xn2[l], BT * C); one(&a->rstd2[l], BT);
    one(&a->gate[l], BT * I); one(&a->up[l], BT * I); one(&a->h[l], BT * I);
  }
  one(&a->xnf, BT * C); one(&a->rstdf, BT);
  if (cfg_.lm_head) { one(&a->logits, BT * V); one(&a->lse, BT); one(&a->logp, BT); one(&a->entropy, BT); }
  if (cfg_.scalar_head) one(&a->values, BT);
  if (need_backward) {
    one(&a->dres, BT * C); one(&a->dxn, BT * C);
    one(&a->dh, BT * I); one(&a->dgate, BT * I); one(&a->dup, BT * I);
    one(&a->datty, BT * NH * HD); one(&a->dq, BT * NH * HD); one(&a->dk, BT * NKV * HD); one(&a->dv, BT * NKV * HD);
  }
  size_t total = 0;
  for (auto& [ptr, n] : plan) total += n;
  if (keep && keep->size >= total) {
    a->buf = std::move(keep);
  } else {
    keep.reset();
    a->buf = std::make_shared<FloatBuffer>(total);
  }
  size_t off = 0;
  for (auto& [ptr, n] : plan) { *ptr = a->buf->data + off; off += n; }
  acts_ = std::move(a);
}

ForwardOutputs Transformer::forward(const int32_t* tokens, const int32_t* targets, int B, int T, bool need_backward,
                                    bool with_entropy, bool keep_logits) {
  FARM_CHECK(B >= 1 && T >= 1, "batch shape must be at least [1, 1], got [", B, ", ", T, "]");
  FARM_CHECK(T <= cfg_.max_position_embeddings, "sequence length ", T, " exceeds max_position_embeddings ",
             cfg_.max_position_embeddings);
  const Kernels& K = prof::instrument(cpu_kernels());
  const int BT = B * T, C = cfg_.hidden_size, I = cfg_.intermediate_size, V = cfg_.vocab_size, HD = cfg_.head_dim();
  const int NH = cfg_.num_attention_heads, NKV = cfg_.num_key_value_heads, L = cfg_.num_hidden_layers;
  for (int i = 0; i < BT; i++) {
    FARM_CHECK(tokens[i] >= 0 && tokens[i] < V, "token id ", tokens[i], " at index ", i, " is outside [0, vocab_size=", V, ")");
    if (targets) FARM_CHECK(targets[i] < V, "target id ", targets[i], " at index ", i, " is >= vocab_size=", V);
  }
  ensure_acts(B, T, need_backward, true);
  Acts& a = *acts_;
  B_ = B; T_ = T;
  have_backward_acts_ = need_backward;
  last_tokens_.assign(tokens, tokens + BT);
  if (targets) last_targets_.assign(targets, targets + BT);
  else last_targets_.assign(BT, -1);
  const float eps = cfg_.rms_norm_eps;

  K.embedding_forward(a.res[0], tokens, p(i_embed_), BT, C);
  for (int l = 0; l < L; l++) {
    const LayerIdx& w = layers_[l];
    int li = need_backward ? l : 0;
    prof::set_layer(l);
    float* x = need_backward ? a.res[l] : a.res[l % 2];
    float* xnext = need_backward ? a.res[l + 1] : a.res[(l + 1) % 2];
    K.rmsnorm_forward(a.xn1[li], a.rstd1[li], x, p(w.ln1), BT, C, eps);
    prof::next_op("q_proj");
    K.gemm(false, true, BT, NH * HD, C, a.xn1[li], C, p(w.q), C, 0.f, a.q[li], NH * HD);
    prof::next_op("k_proj");
    K.gemm(false, true, BT, NKV * HD, C, a.xn1[li], C, p(w.k), C, 0.f, a.k[li], NKV * HD);
    prof::next_op("v_proj");
    K.gemm(false, true, BT, NKV * HD, C, a.xn1[li], C, p(w.v), C, 0.f, a.v[li], NKV * HD);
    K.rope(a.q[li], rope_cos_.data(), rope_sin_.data(), B, T, NH, HD, false);
    K.rope(a.k[li], rope_cos_.data(), rope_sin_.data(), B, T, NKV, HD, false);
    K.attention_forward(a.atty[li], a.att[li], a.q[li], a.k[li], a.v[li], B, T, NH, NKV, HD);
    {
      prof::Scope copy("residual_copy", 0, 8.0 * BT * C);
      std::memcpy(a.xmid[li], x, sizeof(float) * (size_t)BT * C);
    }
    prof::next_op("o_proj");
    K.gemm(false, true, BT, C, NH * HD, a.atty[li], NH * HD, p(w.o), NH * HD, 1.f, a.xmid[li], C);
    K.rmsnorm_forward(a.xn2[li], a.rstd2[li], a.xmid[li], p(w.ln2), BT, C, eps);
    prof::next_op("gate_proj");
    K.gemm(false, true, BT, I, C, a.xn2[li], C, p(w.gate), C, 0.f, a.gate[li], I);
    prof::next_op("up_proj");
    K.gemm(false, true, BT, I, C, a.xn2[li], C, p(w.up), C, 0.f, a.up[li], I);
    K.swiglu_forward(a.h[li], a.gate[li], a.up[li], (int64_t)BT * I);
    {
      prof::Scope copy("residual_copy", 0, 8.0 * BT * C);
      std::memcpy(xnext, a.xmid[li], sizeof(float) * (size_t)BT * C);
    }
    prof::next_op("down_proj");
    K.gemm(false, true, BT, C, I, a.h[li], I, p(w.down), I, 1.f, xnext, C);
  }
  prof::set_layer(-1);
  float* xL = need_backward ? a.res[L] : a.res[L % 2];
  K.rmsnorm_forward(a.xnf, a.rstdf, xL, p(i_norm_), BT, C, eps);
  ForwardOutputs out;
  entropy_done_ = false;
  head_rows_.clear();
  head_skipped_ = false;
  if (cfg_.lm_head) {
    const float* wlm = cfg_.tie_word_embeddings ? p(i_embed_) : p(i_lm_);
    if (targets && !keep_logits) {
      for (int i = 0; i < BT; i++)
        if (targets[i] >= 0) head_rows_.push_back(i);
      if ((int)head_rows_.size() == BT) head_rows_.clear();  // every row: no gather needed
    }
    if (targets && !keep_logits && !head_rows_.empty()) {
      const int R = (int)head_rows_.size();
      head_x_.resize((size_t)R * C);
      head_targets_.resize(R);
      head_lse_.resize(R); head_logp_.resize(R); head_entropy_.resize(R);
      {
        prof::Scope gather("lm_head_gather", 0, 8.0 * R * C);
        for (int r = 0; r < R; r++) {
          std::memcpy(head_x_.data() + (size_t)r * C, a.xnf + (size_t)head_rows_[r] * C, sizeof(float) * C);
          head_targets_[r] = targets[head_rows_[r]];
        }
      }
      prof::next_op("lm_head");
      K.gemm(false, true, R, V, C, head_x_.data(), C, wlm, C, 0.f, a.logits, V);
      K.logsoftmax_forward(head_logp_.data(), with_entropy ? head_entropy_.data() : nullptr, head_lse_.data(), a.logits,
                           head_targets_.data(), R, V);
      std::memset(a.logp, 0, sizeof(float) * BT);
      if (with_entropy) std::memset(a.entropy, 0, sizeof(float) * BT);
      for (int r = 0; r < R; r++) {
        a.logp[head_rows_[r]] = head_logp_[r];
        if (with_entropy) a.entropy[head_rows_[r]] = head_entropy_[r];
      }
    } else if (targets && !keep_logits && std::none_of(targets, targets + BT, [](int32_t t) { return t >= 0; })) {
      head_skipped_ = true;
      std::memset(a.logp, 0, sizeof(float) * BT);
      if (with_entropy) std::memset(a.entropy, 0, sizeof(float) * BT);
    } else {
      prof::next_op("lm_head");
      K.gemm(false, true, BT, V, C, a.xnf, C, wlm, C, 0.f, a.logits, V);
      K.logsoftmax_forward(a.logp, with_entropy ? a.entropy : nullptr, a.lse, a.logits, last_targets_.data(), BT, V);
    }
    entropy_done_ = with_entropy;
    out.logits = keep_logits ? a.logits : nullptr;
    out.logp = a.logp;
    out.entropy = with_entropy ? a.entropy : nullptr;
  }
  if (cfg_.scalar_head) {
    prof::Scope score("score_head", 2.0 * BT * C, 4.0 * BT * C);
    const float* ws = p(i_score_w_);
    const float b = *p(i_score_b_);
#pragma omp parallel for schedule(static)
    for (int i = 0; i < BT; i++) {
      const float* xi = a.xnf + (size_t)i * C;
      float s = 0.f;
      for (int c = 0; c < C; c++) s += xi[c] * ws[c];
      a.values[i] = s + b;
    }
    out.values = a.values;
  }
  out.hidden = a.xnf;
  return out;
}

void Transformer::backward(const float* dlogp, const float* dentropy, const float* dvalues, const float* dhidden) {
  FARM_CHECK(acts_ && have_backward_acts_, "backward() needs a preceding forward() with training activations");
  FARM_CHECK(!dentropy || entropy_done_, "an entropy gradient needs a forward() that computed the entropy");
  FARM_CHECK(!dvalues || cfg_.scalar_head, "a value gradient needs a model with a scalar head");
  FARM_CHECK(!(dlogp || dentropy) || cfg_.lm_head, "a log-prob gradient needs a model with an LM head");
  have_backward_acts_ = false;  // the logits buffer becomes dlogits below: one backward per forward
  const Kernels& K = prof::instrument(cpu_kernels());
  Acts& a = *acts_;
  const int B = B_, T = T_, BT = B * T, C = cfg_.hidden_size, I = cfg_.intermediate_size, V = cfg_.vocab_size;
  const int HD = cfg_.head_dim(), NH = cfg_.num_attention_heads, NKV = cfg_.num_key_value_heads, L = cfg_.num_hidden_layers;

  float* dxnf = a.dxn;
  {
    prof::Scope zero("zero_fill", 0, 4.0 * BT * C);
    std::memset(dxnf, 0, sizeof(float) * (size_t)BT * C);
  }
  if (cfg_.lm_head && (dlogp || dentropy) && !head_skipped_) {
    const float* wlm = cfg_.tie_word_embeddings ? p(i_embed_) : p(i_lm_);
    float* dwlm = cfg_.tie_word_embeddings ? g(i_embed_) : g(i_lm_);
    if (head_rows_.empty()) {
      K.logsoftmax_backward(a.logits, dlogp, dentropy, a.lse, a.entropy, last_targets_.data(), BT, V);
      prof::next_op("lm_head.dx");
      K.gemm(false, false, BT, C, V, a.logits, V, wlm, C, 0.f, dxnf, C);
      prof::next_op("lm_head.dw");
      K.gemm(true, false, V, C, BT, a.logits, V, a.xnf, C, 1.f, dwlm, C);
    } else {
      // compact rows: gather the per-row gradients, backward through the head, scatter dx back
      const int R = (int)head_rows_.size();
      head_grad_.resize((size_t)2 * R);
      float *cdl = head_grad_.data(), *cde = head_grad_.data() + R;
      for (int r = 0; r < R; r++) {
        cdl[r] = dlogp ? dlogp[head_rows_[r]] : 0.f;
        cde[r] = dentropy ? dentropy[head_rows_[r]] : 0.f;
      }
      K.logsoftmax_backward(a.logits, dlogp ? cdl : nullptr, dentropy ? cde : nullptr, head_lse_.data(), head_entropy_.data(),
                            head_targets_.data(), R, V);
      float* dxc = a.dh;  // [BT, I] scratch, free until the MLP backward; R*C <= BT*I is not guaranteed, so check
      std::vector<float> big;
      if ((size_t)R * C > (size_t)BT * I) { big.resize((size_t)R * C); dxc = big.data(); }
      prof::next_op("lm_head.dx");
      K.gemm(false, false, R, C, V, a.logits, V, wlm, C, 0.f, dxc, C);
      prof::next_op("lm_head.dw");
      K.gemm(true, false, V, C, R, a.logits, V, head_x_.data(), C, 1.f, dwlm, C);
      prof::Scope scatter("lm_head_scatter", 0, 8.0 * R * C);
      for (int r = 0; r < R; r++) std::memcpy(dxnf + (size_t)head_rows_[r] * C, dxc + (size_t)r * C, sizeof(float) * C);
    }
  }
  if (cfg_.scalar_head && dvalues) {
    prof::Scope score("score_head.backward", 4.0 * BT * C, 12.0 * BT * C);
    const float* ws = p(i_score_w_);
    float* dws = g(i_score_w_);
    double db = 0;
    for (int i = 0; i < BT; i++) {
      float d = dvalues[i];
      if (d == 0.f) continue;
      db += d;
      const float* xi = a.xnf + (size_t)i * C;
      float* dxi = dxnf + (size_t)i * C;
      for (int c = 0; c < C; c++) { dxi[c] += d * ws[c]; dws[c] += d * xi[c]; }
    }
    *g(i_score_b_) += (float)db;
  }
  if (dhidden) add_hidden_grad(dxnf, dhidden, (size_t)BT * C);
  K.rmsnorm_backward(a.dres, g(i_norm_), dxnf, a.res[L], p(i_norm_), a.rstdf, BT, C, false);

  for (int l = L - 1; l >= 0; l--) {
    const LayerIdx& w = layers_[l];
    prof::set_layer(l);
    // MLP: res[l+1] = xmid + h Wd^T
    prof::next_op("down_proj.dx");
    K.gemm(false, false, BT, I, C, a.dres, C, p(w.down), I, 0.f, a.dh, I);
    prof::next_op("down_proj.dw");
    K.gemm(true, false, C, I, BT, a.dres, C, a.h[l], I, 1.f, g(w.down), I);
    K.swiglu_backward(a.dgate, a.dup, a.dh, a.gate[l], a.up[l], (int64_t)BT * I);
    prof::next_op("gate_proj.dx");
    K.gemm(false, false, BT, C, I, a.dgate, I, p(w.gate), C, 0.f, a.dxn, C);
    prof::next_op("up_proj.dx");
    K.gemm(false, false, BT, C, I, a.dup, I, p(w.up), C, 1.f, a.dxn, C);
    prof::next_op("gate_proj.dw");
    K.gemm(true, false, I, C, BT, a.dgate, I, a.xn2[l], C, 1.f, g(w.gate), C);
    prof::next_op("up_proj.dw");
    K.gemm(true, false, I, C, BT, a.dup, I, a.xn2[l], C, 1.f, g(w.up), C);
    K.rmsnorm_backward(a.dres, g(w.ln2), a.dxn, a.xmid[l], p(w.ln2), a.rstd2[l], BT, C, true);
    // Attention: xmid = res[l] + atty Wo^T
    prof::next_op("o_proj.dx");
    K.gemm(false, false, BT, NH * HD, C, a.dres, C, p(w.o), NH * HD, 0.f, a.datty, NH * HD);
    prof::next_op("o_proj.dw");
    K.gemm(true, false, C, NH * HD, BT, a.dres, C, a.atty[l], NH * HD, 1.f, g(w.o), NH * HD);
    K.attention_backward(a.dq, a.dk, a.dv, a.datty, a.att[l], a.q[l], a.k[l], a.v[l], B, T, NH, NKV, HD);
    K.rope(a.dq, rope_cos_.data(), rope_sin_.data(), B, T, NH, HD, true);
    K.rope(a.dk, rope_cos_.data(), rope_sin_.data(), B, T, NKV, HD, true);
    prof::next_op("q_proj.dx");
    K.gemm(false, false, BT, C, NH * HD, a.dq, NH * HD, p(w.q), C, 0.f, a.dxn, C);
    prof::next_op("k_proj.dx");
    K.gemm(false, false, BT, C, NKV * HD, a.dk, NKV * HD, p(w.k), C, 1.f, a.dxn, C);
    prof::next_op("v_proj.dx");
    K.gemm(false, false, BT, C, NKV * HD, a.dv, NKV * HD, p(w.v), C, 1.f, a.dxn, C);
    prof::next_op("q_proj.dw");
    K.gemm(true, false, NH * HD, C, BT, a.dq, NH * HD, a.xn1[l], C, 1.f, g(w.q), C);
    prof::next_op("k_proj.dw");
    K.gemm(true, false, NKV * HD, C, BT, a.dk, NKV * HD, a.xn1[l], C, 1.f, g(w.k), C);
    prof::next_op("v_proj.dw");
    K.gemm(true, false, NKV * HD, C, BT, a.dv, NKV * HD, a.xn1[l], C, 1.f, g(w.v), C);
    K.rmsnorm_backward(a.dres, g(w.ln1), a.dxn, a.res[l], p(w.ln1), a.rstd1[l], BT, C, true);
  }
  prof::set_layer(-1);
  K.embedding_backward(g(i_embed_), a.dres, last_tokens_.data(), BT, C);
}

// dL/dhidden from outside the model joins the heads' gradients on the final hidden state.
void Transformer::add_hidden_grad(float* dxnf, const float* dhidden, size_t n) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < (int64_t)n; i++) dxnf[i] += dhidden[i];
}

void Transformer::zero_grad() {
  prof::Scope scope("zero_grad", 0, 4.0 * grads_->size);
  std::memset(grads_->data, 0, sizeof(float) * grads_->size);
}

// Fixed chunks summed in order: the same value for any thread count.
double Transformer::grad_norm() const {
  const size_t CH = 1 << 16, n = grads_->size, nch = (n + CH - 1) / CH;
  prof::Scope scope("grad_norm", 2.0 * n, 4.0 * n);
  std::vector<double> part(nch);
  const float* gd = grads_->data;
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < (int64_t)nch; c++) {
    size_t lo = c * CH, hi = std::min(n, lo + CH);
    double s = 0;
    for (size_t i = lo; i < hi; i++) s += (double)gd[i] * gd[i];
    part[c] = s;
  }
  double s = 0;
  for (double v : part) s += v;
  return std::sqrt(s);
}

void Transformer::scale_grads(float s) {
  float* gd = grads_->data;
  const int64_t n = grads_->size;
  prof::Scope scope("scale_grads", (double)n, 8.0 * n);
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; i++) gd[i] *= s;
}

AdamW::AdamW(const Transformer& model, const AdamWConfig& c) : cfg(c) {
  FARM_CHECK(c.beta1 >= 0 && c.beta1 < 1, "beta1 must be in [0, 1)");
  FARM_CHECK(c.beta2 >= 0 && c.beta2 < 1, "beta2 must be in [0, 1)");
  FARM_CHECK(c.eps > 0 && std::isfinite(c.eps), "eps must be > 0");
  FARM_CHECK(c.weight_decay >= 0 && std::isfinite(c.weight_decay), "weight_decay must be >= 0");
  m = std::make_shared<FloatBuffer>(model.num_params());
  v = std::make_shared<FloatBuffer>(model.num_params());
  for (const ParamInfo& p : model.params()) (p.decay ? decay_ranges_ : nodecay_ranges_).push_back({p.offset, p.size});
}

// PyTorch AdamW: p *= 1 - lr*wd; m, v moments; p -= lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps).
void AdamW::step(Transformer& model, float lr) {
  FARM_CHECK(std::isfinite(lr) && lr >= 0, "learning rate must be finite and >= 0, got ", lr);
  t += 1;
  // reads w, g, m, v and writes w, m, v: 7 floats a parameter
  prof::Scope scope("adamw", 12.0 * model.num_params(), 28.0 * model.num_params());
  const float b1 = cfg.beta1, b2 = cfg.beta2, eps = cfg.eps;
  const float bc1 = 1.f - (float)std::pow((double)b1, (double)t), bc2 = 1.f - (float)std::pow((double)b2, (double)t);
  const float step = lr / bc1, sbc2 = std::sqrt(bc2);
  float* w = model.param_buffer()->data;
  const float* gr = model.grad_buffer()->data;
  float* mm = m->data;
  float* vv = v->data;
  auto run = [&](const std::vector<std::pair<size_t, size_t>>& ranges, float decay) {
    for (auto [off, n] : ranges) {
#pragma omp parallel for simd schedule(static)
      for (int64_t j = 0; j < (int64_t)n; j++) {
        size_t i = off + j;
        float gi = gr[i];
        float mi = b1 * mm[i] + (1.f - b1) * gi;
        float vi = b2 * vv[i] + (1.f - b2) * gi * gi;
        mm[i] = mi;
        vv[i] = vi;
        w[i] = w[i] * decay - step * mi / (std::sqrt(vi) / sbc2 + eps);
      }
    }
  };
  run(decay_ranges_, 1.f - lr * cfg.weight_decay);
  run(nodecay_ranges_, 1.f);
}

}  // namespace farm
