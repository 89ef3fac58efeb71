// The decoder on the GPU (see model.h). The forward and backward below follow Transformer::forward and
// Transformer::backward statement by statement, with device buffers and the CUDA kernel table.
#include "model.h"
#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <string>
#include "farm/common.h"
#include "farm/profile.h"
#include "ops.h"

namespace farm::cuda {

// The profiler times this backend's table calls as kernels, not launches: it synchronizes around each
// profiled call (a fault is reported by the backend's next own synchronize, not from the profiler).
static const bool kProfilerSync = (prof::set_device_sync("cuda", [] {
  try {
    synchronize("profiler");
  } catch (...) {
  }
}), true);

struct DeviceModel::Acts {
  int B = 0, T = 0, layers = 0;
  bool backward = false;
  DeviceArray<float> buf;
  size_t floats = 0;
  std::vector<float*> res, xn1, rstd1, q, k, v, att, atty, xmid, xn2, rstd2, gate, up, h;
  float *xnf = nullptr, *rstdf = nullptr, *logits = nullptr, *lse = nullptr, *logp = nullptr, *entropy = nullptr,
        *values = nullptr;
  // LM head over target rows: gathered inputs and per-row results
  float *head_x = nullptr, *head_lse = nullptr, *head_logp = nullptr, *head_entropy = nullptr, *head_dx = nullptr;
  // per-position gradients from the host
  float *dlogp = nullptr, *dentropy = nullptr, *dvalues = nullptr, *cdl = nullptr, *cde = nullptr;
  float *dres = nullptr, *dxn = nullptr, *dh = nullptr, *dgate = nullptr, *dup = nullptr, *datty = nullptr, *dq = nullptr,
        *dk = nullptr, *dv = nullptr;
  // int32 data: tokens, targets, head rows, head targets, embedding-backward order and segments
  DeviceArray<int32_t> ibuf;
  int32_t *tokens = nullptr, *targets = nullptr, *head_rows = nullptr, *head_targets = nullptr, *order = nullptr,
          *seg_start = nullptr, *seg_token = nullptr;
  int nseg = 0;
};

DeviceModel::DeviceModel(std::shared_ptr<Transformer> host) : host_(std::move(host)) {
  require_device();
  const ModelConfig& c = host_->config();
  FARM_CHECK(c.head_dim() <= kMaxHeadDim, "the CUDA backend supports head_dim up to ", kMaxHeadDim, " (this model has ",
             c.head_dim(), ")");
  n_ = host_->num_params();
  std::map<std::string, size_t> idx;
  for (size_t i = 0; i < host_->params().size(); i++) idx[host_->params()[i].name] = i;
  auto at = [&](const std::string& name) {
    auto it = idx.find(name);
    FARM_CHECK(it != idx.end(), "internal: no parameter ", name);
    return it->second;
  };
  i_embed_ = at("model.embed_tokens.weight");
  for (int l = 0; l < c.num_hidden_layers; l++) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    layers_.push_back({at(p + "input_layernorm.weight"), at(p + "self_attn.q_proj.weight"), at(p + "self_attn.k_proj.weight"),
                       at(p + "self_attn.v_proj.weight"), at(p + "self_attn.o_proj.weight"),
                       at(p + "post_attention_layernorm.weight"), at(p + "mlp.gate_proj.weight"),
                       at(p + "mlp.up_proj.weight"), at(p + "mlp.down_proj.weight")});
  }
  i_norm_ = at("model.norm.weight");
  if (c.lm_head && !c.tie_word_embeddings) i_lm_ = at("lm_head.weight");
  if (c.scalar_head) {
    i_score_w_ = at("score.weight");
    i_score_b_ = at("score.bias");
  }
  w_.resize(n_, "model weights");
  g_.resize(n_, "model gradients");
  w_.upload(host_->param_buffer()->data, n_);
  g_.upload(host_->grad_buffer()->data, n_);
  const size_t nr = (size_t)c.max_position_embeddings * (c.head_dim() / 2);
  rope_cos_.resize(nr, "rotary table");
  rope_sin_.resize(nr, "rotary table");
  rope_cos_.upload(host_->rope_cos(), nr);
  rope_sin_.upload(host_->rope_sin(), nr);
  // Weight decay per 16-float group (every tensor starts on a 16-float boundary).
  const size_t groups = (n_ + 15) / 16;
  std::vector<uint32_t> bits((groups + 31) / 32, 0);
  for (const ParamInfo& p : host_->params())
    if (p.decay)
      for (size_t gidx = p.offset / 16; gidx < (p.offset + p.size + 15) / 16; gidx++) bits[gidx / 32] |= 1u << (gidx % 32);
  decay_bits_.resize(bits.size(), "weight-decay mask");
  decay_bits_.upload(bits.data(), bits.size());
  synchronize("model upload");
}

DeviceModel::~DeviceModel() = default;

const float* DeviceModel::dev(const float* host_weight) const {
  const float* base = host_->param_buffer()->data;
  FARM_CHECK(host_weight >= base && host_weight < base + n_, "internal: not a weight of this model");
  return w_.data() + (host_weight - base);
}

void DeviceModel::pull_weights() {
  if (weights_fresh_ == Fresh::Device) w_.download(host_->param_buffer()->data, n_);
  weights_fresh_ = Fresh::Host;
}
void DeviceModel::pull_grads() {
  if (grads_fresh_ == Fresh::Device) g_.download(host_->grad_buffer()->data, n_);
  grads_fresh_ = Fresh::Host;
}
void DeviceModel::push() {
  bind_thread();
  if (weights_fresh_ == Fresh::Host) {
    w_.upload(host_->param_buffer()->data, n_);
    weights_fresh_ = Fresh::Both;
  }
  if (grads_fresh_ == Fresh::Host) {
    g_.upload(host_->grad_buffer()->data, n_);
    grads_fresh_ = Fresh::Both;
  }
}

size_t DeviceModel::activation_bytes() const { return acts_ ? acts_->floats * sizeof(float) : 0; }

void DeviceModel::ensure_acts(int B, int T, bool need_backward) {
  if (acts_ && acts_->B == B && acts_->T == T && acts_->backward == need_backward) return;
  const ModelConfig& c = host_->config();
  const size_t BT = (size_t)B * T, C = c.hidden_size, I = c.intermediate_size, V = c.vocab_size;
  const size_t HD = c.head_dim(), NH = c.num_attention_heads, NKV = c.num_key_value_heads;
  const int L = c.num_hidden_layers, Lb = need_backward ? L : 1;
  auto a = std::make_unique<Acts>();
  a->B = B; a->T = T; a->layers = Lb; a->backward = need_backward;
  std::vector<std::pair<float**, size_t>> plan;
  auto one = [&](float** p, size_t n) { plan.push_back({p, (n + 63) / 64 * 64}); };
  const int nres = need_backward ? L + 1 : 2;
  a->res.resize(nres);
  for (int i = 0; i < nres; i++) one(&a->res[i], BT * C);
  for (auto* vec : {&a->xn1, &a->rstd1, &a->q, &a->k, &a->v, &a->att, &a->atty, &a->xmid, &a->xn2, &a->rstd2, &a->gate,
                    &a->up, &a->h})
    vec->resize(Lb);
  for (int l = 0; l < Lb; l++) {
    one(&a->xn1[l], BT * C); one(&a->rstd1[l], BT);
    one(&a->q[l], BT * NH * HD); one(&a->k[l], BT * NKV * HD); one(&a->v[l], BT * NKV * HD);
    one(&a->att[l], attention_saved_floats(B, T, (int)NH)); one(&a->atty[l], BT * NH * HD);
    one(&a->xmid[l], BT * C); one(&a->xn2[l], BT * C); one(&a->rstd2[l], BT);
    one(&a->gate[l], BT * I); one(&a->up[l], BT * I); one(&a->h[l], BT * I);
  }
  one(&a->xnf, BT * C); one(&a->rstdf, BT);
  if (c.lm_head) {
    one(&a->logits, BT * V); one(&a->lse, BT); one(&a->logp, BT); one(&a->entropy, BT);
    one(&a->head_x, BT * C); one(&a->head_lse, BT); one(&a->head_logp, BT); one(&a->head_entropy, BT);
    one(&a->dlogp, BT); one(&a->dentropy, BT); one(&a->cdl, BT); one(&a->cde, BT);
  }
  if (c.scalar_head) { one(&a->values, BT); one(&a->dvalues, BT); }
  if (need_backward) {
    one(&a->dres, BT * C); one(&a->dxn, BT * C);
    one(&a->dh, BT * I); one(&a->dgate, BT * I); one(&a->dup, BT * I);
    one(&a->datty, BT * NH * HD); one(&a->dq, BT * NH * HD); one(&a->dk, BT * NKV * HD); one(&a->dv, BT * NKV * HD);
    if (c.lm_head) one(&a->head_dx, BT * C);
  }
  size_t total = 0;
  for (auto& pr : plan) total += pr.second;
  // A larger shape frees the old buffers first, so peak memory stays one set of activations.
  acts_.reset();
  a->buf.resize(total, "activations");
  a->floats = total;
  size_t off = 0;
  for (auto& pr : plan) { *pr.first = a->buf.data() + off; off += pr.second; }
  // tokens, targets, head rows, head targets, order, seg_start (BT + 1), seg_token
  const size_t ni = 7 * BT + 1;
  a->ibuf.resize(ni, "token ids");
  int32_t* ip = a->ibuf.data();
  a->tokens = ip; a->targets = ip + BT; a->head_rows = ip + 2 * BT; a->head_targets = ip + 3 * BT;
  a->order = ip + 4 * BT; a->seg_token = ip + 5 * BT; a->seg_start = ip + 6 * BT;
  acts_ = std::move(a);
}

void DeviceModel::forward(const int32_t* tokens, const int32_t* targets, int B, int T, bool need_backward,
                          bool with_entropy, bool keep_logits, Outputs* out, bool want_hidden) {
  const ModelConfig& c = host_->config();
  FARM_CHECK(B >= 1 && T >= 1, "batch shape must be at least [1, 1], got [", B, ", ", T, "]");
  FARM_CHECK(T <= c.max_position_embeddings, "sequence length ", T, " exceeds max_position_embeddings ",
             c.max_position_embeddings);
  const int BT = B * T, C = c.hidden_size, I = c.intermediate_size, V = c.vocab_size, HD = c.head_dim();
  const int NH = c.num_attention_heads, NKV = c.num_key_value_heads, L = c.num_hidden_layers;
  for (int i = 0; i < BT; i++) {
    FARM_CHECK(tokens[i] >= 0 && tokens[i] < V, "token id ", tokens[i], " at index ", i, " is outside [0, vocab_size=", V, ")");
    if (targets) FARM_CHECK(targets[i] < V, "target id ", targets[i], " at index ", i, " is >= vocab_size=", V);
  }
  push();
  ensure_acts(B, T, need_backward);
  Acts& a = *acts_;
  B_ = B; T_ = T;
  have_backward_acts_ = false;  // until this forward completes
  std::vector<int32_t> tg(BT, -1);
  if (targets) std::copy(targets, targets + BT, tg.begin());
  a.ibuf.upload(tokens, BT, a.tokens - a.ibuf.data());
  a.ibuf.upload(tg.data(), BT, a.targets - a.ibuf.data());
  const Kernels& K = prof::instrument(kernels());  // profiled when on (farm/profile.h)
  const float eps = c.rms_norm_eps;
  const float *rc = rope_cos_.data(), *rs = rope_sin_.data();

  K.embedding_forward(a.res[0], a.tokens, W(i_embed_), BT, C);
  for (int l = 0; l < L; l++) {
    const LayerIdx& w = layers_[l];
    const int li = need_backward ? l : 0;
    float* x = need_backward ? a.res[l] : a.res[l % 2];
    float* xnext = need_backward ? a.res[l + 1] : a.res[(l + 1) % 2];
    K.rmsnorm_forward(a.xn1[li], a.rstd1[li], x, W(w.ln1), BT, C, eps);
    K.gemm(false, true, BT, NH * HD, C, a.xn1[li], C, W(w.q), C, 0.f, a.q[li], NH * HD);
    K.gemm(false, true, BT, NKV * HD, C, a.xn1[li], C, W(w.k), C, 0.f, a.k[li], NKV * HD);
    K.gemm(false, true, BT, NKV * HD, C, a.xn1[li], C, W(w.v), C, 0.f, a.v[li], NKV * HD);
    K.rope(a.q[li], rc, rs, B, T, NH, HD, false);
    K.rope(a.k[li], rc, rs, B, T, NKV, HD, false);
    K.attention_forward(a.atty[li], a.att[li], a.q[li], a.k[li], a.v[li], B, T, NH, NKV, HD);
    copy_on_device(a.xmid[li], x, sizeof(float) * (size_t)BT * C);
    K.gemm(false, true, BT, C, NH * HD, a.atty[li], NH * HD, W(w.o), NH * HD, 1.f, a.xmid[li], C);
    K.rmsnorm_forward(a.xn2[li], a.rstd2[li], a.xmid[li], W(w.ln2), BT, C, eps);
    K.gemm(false, true, BT, I, C, a.xn2[li], C, W(w.gate), C, 0.f, a.gate[li], I);
    K.gemm(false, true, BT, I, C, a.xn2[li], C, W(w.up), C, 0.f, a.up[li], I);
    K.swiglu_forward(a.h[li], a.gate[li], a.up[li], (int64_t)BT * I);
    copy_on_device(xnext, a.xmid[li], sizeof(float) * (size_t)BT * C);
    K.gemm(false, true, BT, C, I, a.h[li], I, W(w.down), I, 1.f, xnext, C);
  }
  float* xL = need_backward ? a.res[L] : a.res[L % 2];
  K.rmsnorm_forward(a.xnf, a.rstdf, xL, W(i_norm_), BT, C, eps);
  entropy_done_ = false;
  head_rows_.clear();
  head_skipped_ = false;
  out->logp.clear(); out->entropy.clear(); out->values.clear(); out->logits.clear();
  if (c.lm_head) {
    const float* wlm = c.tie_word_embeddings ? W(i_embed_) : W(i_lm_);
    if (targets && !keep_logits) {
      for (int i = 0; i < BT; i++)
        if (targets[i] >= 0) head_rows_.push_back(i);
      if ((int)head_rows_.size() == BT) head_rows_.clear();  // every row: no gather needed
    }
    if (targets && !keep_logits && !head_rows_.empty()) {
      const int R = (int)head_rows_.size();
      std::vector<int32_t> ht(R);
      for (int r = 0; r < R; r++) ht[r] = targets[head_rows_[r]];
      a.ibuf.upload(head_rows_.data(), R, a.head_rows - a.ibuf.data());
      a.ibuf.upload(ht.data(), R, a.head_targets - a.ibuf.data());
      gather_rows(a.head_x, a.xnf, a.head_rows, R, C);
      K.gemm(false, true, R, V, C, a.head_x, C, wlm, C, 0.f, a.logits, V);
      K.logsoftmax_forward(a.head_logp, with_entropy ? a.head_entropy : nullptr, a.head_lse, a.logits, a.head_targets, R, V);
      zero_device(a.logp, sizeof(float) * BT);
      scatter_rows(a.logp, a.head_logp, a.head_rows, R, 1);
      if (with_entropy) {
        zero_device(a.entropy, sizeof(float) * BT);
        scatter_rows(a.entropy, a.head_entropy, a.head_rows, R, 1);
      }
    } else if (targets && !keep_logits && std::none_of(targets, targets + BT, [](int32_t t) { return t >= 0; })) {
      head_skipped_ = true;
      zero_device(a.logp, sizeof(float) * BT);
      if (with_entropy) zero_device(a.entropy, sizeof(float) * BT);
    } else {
      K.gemm(false, true, BT, V, C, a.xnf, C, wlm, C, 0.f, a.logits, V);
      K.logsoftmax_forward(a.logp, with_entropy ? a.entropy : nullptr, a.lse, a.logits, a.targets, BT, V);
    }
    entropy_done_ = with_entropy;
  }
  if (c.scalar_head) scalar_head_forward(a.values, a.xnf, W(i_score_w_), W(i_score_b_), BT, C);
  if (need_backward) {
    // Embedding backward: rows grouped by token, ascending within a token (the CPU kernel's order).
    std::vector<int32_t> order(BT), seg_start, seg_token;
    for (int i = 0; i < BT; i++) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](int32_t x, int32_t y) { return tokens[x] < tokens[y]; });
    for (int j = 0; j < BT; j++)
      if (j == 0 || tokens[order[j]] != tokens[order[j - 1]]) {
        seg_start.push_back(j);
        seg_token.push_back(tokens[order[j]]);
      }
    a.nseg = (int)seg_token.size();
    seg_start.push_back(BT);
    a.ibuf.upload(order.data(), BT, a.order - a.ibuf.data());
    a.ibuf.upload(seg_token.data(), seg_token.size(), a.seg_token - a.ibuf.data());
    a.ibuf.upload(seg_start.data(), seg_start.size(), a.seg_start - a.ibuf.data());
  }
  // Outputs to the host (the API boundary).
  if (c.lm_head) {
    out->logp.resize(BT);
    copy_to_host(out->logp.data(), a.logp, sizeof(float) * BT);
    if (with_entropy) {
      out->entropy.resize(BT);
      copy_to_host(out->entropy.data(), a.entropy, sizeof(float) * BT);
    }
    if (keep_logits) {
      out->logits.resize((size_t)BT * V);
      copy_to_host(out->logits.data(), a.logits, sizeof(float) * (size_t)BT * V);
    }
  }
  if (c.scalar_head) {
    out->values.resize(BT);
    copy_to_host(out->values.data(), a.values, sizeof(float) * BT);
  }
  if (want_hidden) {
    out->hidden.resize((size_t)BT * C);
    copy_to_host(out->hidden.data(), a.xnf, sizeof(float) * (size_t)BT * C);
  }
  synchronize("forward");
  have_backward_acts_ = need_backward;
}

void DeviceModel::backward(const float* dlogp, const float* dentropy, const float* dvalues, const float* dhidden) {
  const ModelConfig& c = host_->config();
  FARM_CHECK(acts_ && have_backward_acts_, "backward() needs a preceding forward() with training activations");
  FARM_CHECK(!dentropy || entropy_done_, "an entropy gradient needs a forward() that computed the entropy");
  FARM_CHECK(!dvalues || c.scalar_head, "a value gradient needs a model with a scalar head");
  FARM_CHECK(!(dlogp || dentropy) || c.lm_head, "a log-prob gradient needs a model with an LM head");
  have_backward_acts_ = false;  // the logits buffer becomes dlogits below: one backward per forward
  push();
  grads_fresh_ = Fresh::Device;
  const Kernels& K = prof::instrument(kernels());  // profiled when on (farm/profile.h)
  Acts& a = *acts_;
  const int B = B_, T = T_, BT = B * T, C = c.hidden_size, I = c.intermediate_size, V = c.vocab_size;
  const int HD = c.head_dim(), NH = c.num_attention_heads, NKV = c.num_key_value_heads, L = c.num_hidden_layers;
  const float *rc = rope_cos_.data(), *rs = rope_sin_.data();

  float* dxnf = a.dxn;
  zero_device(dxnf, sizeof(float) * (size_t)BT * C);
  if (c.lm_head && (dlogp || dentropy) && !head_skipped_) {
    const float* wlm = c.tie_word_embeddings ? W(i_embed_) : W(i_lm_);
    float* dwlm = c.tie_word_embeddings ? G(i_embed_) : G(i_lm_);
    if (dlogp) copy_to_device(a.dlogp, dlogp, sizeof(float) * BT);
    if (dentropy) copy_to_device(a.dentropy, dentropy, sizeof(float) * BT);
    if (head_rows_.empty()) {
      K.logsoftmax_backward(a.logits, dlogp ? a.dlogp : nullptr, dentropy ? a.dentropy : nullptr, a.lse, a.entropy,
                            a.targets, BT, V);
      K.gemm(false, false, BT, C, V, a.logits, V, wlm, C, 0.f, dxnf, C);
      K.gemm(true, false, V, C, BT, a.logits, V, a.xnf, C, 1.f, dwlm, C);
    } else {
      const int R = (int)head_rows_.size();
      if (dlogp) gather_rows(a.cdl, a.dlogp, a.head_rows, R, 1);
      if (dentropy) gather_rows(a.cde, a.dentropy, a.head_rows, R, 1);
      K.logsoftmax_backward(a.logits, dlogp ? a.cdl : nullptr, dentropy ? a.cde : nullptr, a.head_lse, a.head_entropy,
                            a.head_targets, R, V);
      K.gemm(false, false, R, C, V, a.logits, V, wlm, C, 0.f, a.head_dx, C);
      K.gemm(true, false, V, C, R, a.logits, V, a.head_x, C, 1.f, dwlm, C);
      scatter_rows(dxnf, a.head_dx, a.head_rows, R, C);
    }
  }
  if (c.scalar_head && dvalues) {
    copy_to_device(a.dvalues, dvalues, sizeof(float) * BT);
    scalar_head_backward(dxnf, G(i_score_w_), G(i_score_b_), a.dvalues, a.xnf, W(i_score_w_), BT, C);
  }
  if (dhidden) {
    const size_t n = (size_t)BT * C;
    float* d = static_cast<float*>(workspace(sizeof(float) * n));
    copy_to_device(d, dhidden, sizeof(float) * n);
    add_inplace(dxnf, d, n);
  }
  K.rmsnorm_backward(a.dres, G(i_norm_), dxnf, a.res[L], W(i_norm_), a.rstdf, BT, C, false);

  for (int l = L - 1; l >= 0; l--) {
    const LayerIdx& w = layers_[l];
    K.gemm(false, false, BT, I, C, a.dres, C, W(w.down), I, 0.f, a.dh, I);
    K.gemm(true, false, C, I, BT, a.dres, C, a.h[l], I, 1.f, G(w.down), I);
    K.swiglu_backward(a.dgate, a.dup, a.dh, a.gate[l], a.up[l], (int64_t)BT * I);
    K.gemm(false, false, BT, C, I, a.dgate, I, W(w.gate), C, 0.f, a.dxn, C);
    K.gemm(false, false, BT, C, I, a.dup, I, W(w.up), C, 1.f, a.dxn, C);
    K.gemm(true, false, I, C, BT, a.dgate, I, a.xn2[l], C, 1.f, G(w.gate), C);
    K.gemm(true, false, I, C, BT, a.dup, I, a.xn2[l], C, 1.f, G(w.up), C);
    K.rmsnorm_backward(a.dres, G(w.ln2), a.dxn, a.xmid[l], W(w.ln2), a.rstd2[l], BT, C, true);
    K.gemm(false, false, BT, NH * HD, C, a.dres, C, W(w.o), NH * HD, 0.f, a.datty, NH * HD);
    K.gemm(true, false, C, NH * HD, BT, a.dres, C, a.atty[l], NH * HD, 1.f, G(w.o), NH * HD);
    K.attention_backward(a.dq, a.dk, a.dv, a.datty, a.att[l], a.q[l], a.k[l], a.v[l], B, T, NH, NKV, HD);
    K.rope(a.dq, rc, rs, B, T, NH, HD, true);
    K.rope(a.dk, rc, rs, B, T, NKV, HD, true);
    K.gemm(false, false, BT, C, NH * HD, a.dq, NH * HD, W(w.q), C, 0.f, a.dxn, C);
    K.gemm(false, false, BT, C, NKV * HD, a.dk, NKV * HD, W(w.k), C, 1.f, a.dxn, C);
    K.gemm(false, false, BT, C, NKV * HD, a.dv, NKV * HD, W(w.v), C, 1.f, a.dxn, C);
    K.gemm(true, false, NH * HD, C, BT, a.dq, NH * HD, a.xn1[l], C, 1.f, G(w.q), C);
    K.gemm(true, false, NKV * HD, C, BT, a.dk, NKV * HD, a.xn1[l], C, 1.f, G(w.k), C);
    K.gemm(true, false, NKV * HD, C, BT, a.dv, NKV * HD, a.xn1[l], C, 1.f, G(w.v), C);
    K.rmsnorm_backward(a.dres, G(w.ln1), a.dxn, a.res[l], W(w.ln1), a.rstd1[l], BT, C, true);
  }
  embedding_backward_sorted(G(i_embed_), a.dres, a.order, a.seg_start, a.seg_token, a.nseg, C);
  synchronize("backward");
}

void DeviceModel::zero_grad() {
  push();
  g_.zero();
  grads_fresh_ = Fresh::Device;
  synchronize("zero_grad");
}

double DeviceModel::grad_norm() {
  push();
  return std::sqrt(sum_squares(g_.data(), n_));
}

void DeviceModel::scale_grads(float s) {
  push();
  scale(g_.data(), n_, s);
  grads_fresh_ = Fresh::Device;
  synchronize("scale_grads");
}

DeviceAdamW::DeviceAdamW(std::shared_ptr<DeviceModel> model, const AdamWConfig& c) : cfg(c), model_(std::move(model)) {
  FARM_CHECK(c.beta1 >= 0 && c.beta1 < 1, "beta1 must be in [0, 1)");
  FARM_CHECK(c.beta2 >= 0 && c.beta2 < 1, "beta2 must be in [0, 1)");
  FARM_CHECK(c.eps > 0 && std::isfinite(c.eps), "eps must be > 0");
  FARM_CHECK(c.weight_decay >= 0 && std::isfinite(c.weight_decay), "weight_decay must be >= 0");
  const size_t n = model_->num_params();
  m_host = std::make_shared<FloatBuffer>(n);
  v_host = std::make_shared<FloatBuffer>(n);
  m_.resize(n, "AdamW first moments");
  v_.resize(n, "AdamW second moments");
  m_.zero();
  v_.zero();
  synchronize("AdamW state");
}

void DeviceAdamW::pull_state() {
  if (fresh_ == Fresh::Device) {
    m_.download(m_host->data, m_host->size);
    v_.download(v_host->data, v_host->size);
  }
  fresh_ = Fresh::Host;
}
void DeviceAdamW::push_state() {
  if (fresh_ == Fresh::Host) {
    m_.upload(m_host->data, m_host->size);
    v_.upload(v_host->data, v_host->size);
  }
  fresh_ = Fresh::Both;
}

// The host AdamW::step's float math: bias corrections in double, rounded once.
void DeviceAdamW::step(float lr) {
  FARM_CHECK(std::isfinite(lr) && lr >= 0, "learning rate must be finite and >= 0, got ", lr);
  model_->push();
  push_state();
  t += 1;
  const float b1 = cfg.beta1, b2 = cfg.beta2, eps = cfg.eps;
  const float bc1 = 1.f - (float)std::pow((double)b1, (double)t), bc2 = 1.f - (float)std::pow((double)b2, (double)t);
  const float step = lr / bc1, sbc2 = std::sqrt(bc2);
  adamw(model_->weights(), model_->grads(), m_.data(), v_.data(), model_->decay_bits(), model_->num_params(), b1, b2, eps,
        1.f - lr * cfg.weight_decay, step, sbc2);
  model_->weights_changed_on_device();
  fresh_ = Fresh::Device;
  synchronize("AdamW step");
}

}  // namespace farm::cuda
