// KV-cache decoding on the GPU (see decode.h). The slot bookkeeping is farm::DecodeSession's
// (native/src/model/generate.cc), step for step; the compute is the device model's kernels.
#include "decode.h"
#include <algorithm>
#include <cmath>
#include <cstring>
#include "farm/common.h"
#include "farm/profile.h"
#include "farm/rng.h"
#include "ops.h"

namespace farm::cuda {

DeviceDecodeSession::DeviceDecodeSession(std::shared_ptr<DeviceModel> model, int max_slots, int max_len)
    : model_(std::move(model)), max_slots_(max_slots), max_len_(max_len) {
  const ModelConfig& c = model_->config();
  FARM_CHECK(c.lm_head || c.scalar_head, "model has no head");
  FARM_CHECK(max_slots >= 1 && max_slots <= (1 << 20), "max_slots must be in [1, 2^20], got ", max_slots);
  FARM_CHECK(max_len >= 1 && max_len <= c.max_position_embeddings, "max_len must be in [1, max_position_embeddings=",
             c.max_position_embeddings, "], got ", max_len);
  FARM_CHECK(c.head_dim() <= kMaxHeadDim, "the CUDA backend supports head_dim up to ", kMaxHeadDim);
  bind_thread();
  const size_t HD = c.head_dim(), NKV = c.num_key_value_heads, NH = c.num_attention_heads, C = c.hidden_size,
               I = c.intermediate_size, V = c.lm_head ? c.vocab_size : 0, L = c.num_hidden_layers;
  const size_t cache = L * (size_t)max_slots * max_len * NKV * HD;
  const DeviceInfo& dev = device_info();
  const double gib = 2.0 * cache * 4 / (1 << 30);
  FARM_CHECK(gib <= 0.75 * dev.total_memory / (1 << 30), "the KV cache would take ", gib, " GiB (", max_slots,
             " sequences x ", max_len, " tokens), more than 3/4 of the GPU's ", dev.total_memory / (1 << 30),
             " GiB; generate fewer sequences at once");
  kcache_.resize(cache, "KV cache (keys)");
  vcache_.resize(cache, "KV cache (values)");
  if (V) pending_.resize((size_t)max_slots * V, "next-token logits");
  pending_val_.resize(max_slots, "next-token values");
  pending_val_.zero();
  // Rows per run: bounded so that the workspace stays near 128 MiB.
  const size_t per_row = 3 * C + (NH + 2 * NKV) * HD + NH * HD + 2 * I + V + 4;
  rows_cap_ = (int)std::max<size_t>(16, std::min<size_t>(2048, ((size_t)1 << 25) / per_row));
  const size_t R = rows_cap_;
  auto pad = [](size_t n) { return (n + 63) / 64 * 64; };
  const size_t sizes[] = {R * C, R * C, R * C, R * NH * HD, R * NKV * HD, R * NKV * HD, R * NH * HD, R * I, R * I, R,
                          R * std::max<size_t>(V, 1), R, R, R};
  size_t total = 0;
  for (size_t s : sizes) total += pad(s);
  ws_.resize(total, "decode workspace");
  float* p = ws_.data();
  float** dst[] = {&x_, &xn_, &xh_, &q_, &k_, &v_, &att_, &gate_, &up_, &rstd_, &logits_, &values_, &lse_, &lp_};
  for (int i = 0; i < 14; i++) { *dst[i] = p; p += pad(sizes[i]); }
  ibuf_.resize(7 * R, "decode row data");
  slots_.resize(max_slots);
  for (int s = max_slots - 1; s >= 0; s--) free_.push_back(s);
  synchronize("decode session");
}

DeviceDecodeSession::~DeviceDecodeSession() = default;

size_t DeviceDecodeSession::cache_bytes() const { return 2 * kcache_.size() * sizeof(float); }

DeviceDecodeSession::Slot& DeviceDecodeSession::slot(int s) {
  FARM_CHECK(s >= 0 && s < max_slots_ && slots_[s].info.used, "sequence slot ", s, " is not in use");
  return slots_[s];
}
const DeviceDecodeSession::SlotInfo& DeviceDecodeSession::info(int s) const {
  FARM_CHECK(s >= 0 && s < max_slots_ && slots_[s].info.used, "sequence slot ", s, " is not in use");
  return slots_[s].info;
}

int DeviceDecodeSession::alloc_slot() {
  FARM_CHECK(!free_.empty(), "no free sequence slot (the session holds ", max_slots_, ")");
  int s = free_.back();
  free_.pop_back();
  slots_[s] = Slot();
  slots_[s].info.used = true;
  return s;
}

void DeviceDecodeSession::release(int s) {
  Slot& sl = slot(s);
  const int owner = sl.prefix_slot;
  if (sl.dependents > 0) {
    sl.info = SlotInfo();
    sl.pending = false;
    sl.zombie = true;
  } else {
    sl = Slot();
    free_.push_back(s);
  }
  if (owner >= 0) {
    Slot& o = slots_[owner];
    if (--o.dependents == 0 && o.zombie) {
      o = Slot();
      free_.push_back(owner);
    }
  }
}

void DeviceDecodeSession::copy_cache(int dst, int src, int from, int n) {
  const ModelConfig& c = model_->config();
  kv_copy(kcache_.data(), vcache_.data(), c.num_hidden_layers, max_slots_, c.num_key_value_heads, max_len_, c.head_dim(),
          dst, src, from, n);
}

int DeviceDecodeSession::run(const std::vector<Chunk>& chunks) {
  DeviceModel& M = *model_;
  M.push();
  const ModelConfig& c = M.config();
  const Transformer& host = M.host();
  const int C = c.hidden_size, I = c.intermediate_size, V = c.vocab_size, HD = c.head_dim();
  const int NH = c.num_attention_heads, NKV = c.num_key_value_heads, QD = NH * HD, KD = NKV * HD;
  const float eps = c.rms_norm_eps;
  // Row data on the host, then one upload.
  std::vector<int32_t> tok, rslot, rpos, pslot, plen, heads;
  int R = 0;
  for (const Chunk& ch : chunks) {
    Slot& s = slot(ch.slot);
    FARM_CHECK(s.len + ch.n <= max_len_, "sequence ", ch.slot, " would exceed the cache length ", max_len_);
    for (int i = 0; i < ch.n; i++) {
      FARM_CHECK(R < rows_cap_, "internal: too many rows in one run");
      const int32_t t = ch.tokens[i];
      FARM_CHECK(t >= 0 && t < V, "token id ", t, " is outside [0, vocab_size=", V, ")");
      tok.push_back(t);
      rslot.push_back(ch.slot);
      rpos.push_back(s.len + i);
      pslot.push_back(s.prefix_slot);
      plen.push_back(s.prefix_len);
      if (ch.want_all || i == ch.n - 1) heads.push_back(R);
      R++;
    }
  }
  if (R == 0) return 0;
  const int nout = (int)heads.size();
  // Row data in one upload: [tokens | slot | pos | prefix slot | prefix len | head rows], R each. (The last
  // rows_cap block of ibuf_ is keep_pending's and extend's.)
  int32_t* ib = ibuf_.data();
  int32_t *d_tok = ib, *d_slot = ib + R, *d_pos = ib + 2 * R, *d_pslot = ib + 3 * R, *d_plen = ib + 4 * R, *d_heads = ib + 5 * R;
  std::vector<int32_t> packed;
  packed.reserve((size_t)6 * R);
  for (const auto* v : {&tok, &rslot, &rpos, &pslot, &plen}) packed.insert(packed.end(), v->begin(), v->end());
  packed.insert(packed.end(), heads.begin(), heads.end());
  ibuf_.upload(packed.data(), packed.size());

  const Kernels& K = prof::instrument(kernels());  // profiled when on (farm/profile.h)
  const size_t layer_cache = (size_t)max_slots_ * NKV * max_len_ * HD;
  K.embedding_forward(x_, d_tok, M.dev(host.embed_weight()), R, C);
  for (int l = 0; l < c.num_hidden_layers; l++) {
    const Transformer::LayerWeights L = host.layer_weights(l);
    float* Kc = kcache_.data() + l * layer_cache;
    float* Vc = vcache_.data() + l * layer_cache;
    K.rmsnorm_forward(xn_, rstd_, x_, M.dev(L.ln1), R, C, eps);
    K.gemm(false, true, R, QD, C, xn_, C, M.dev(L.q), C, 0.f, q_, QD);
    K.gemm(false, true, R, KD, C, xn_, C, M.dev(L.k), C, 0.f, k_, KD);
    K.gemm(false, true, R, KD, C, xn_, C, M.dev(L.v), C, 0.f, v_, KD);
    rope_rows(q_, d_pos, M.rope_cos(), M.rope_sin(), R, NH, HD);
    rope_rows(k_, d_pos, M.rope_cos(), M.rope_sin(), R, NKV, HD);
    kv_write(Kc, Vc, k_, v_, d_slot, d_pos, R, NKV, HD, max_len_);
    decode_attention(att_, q_, Kc, Vc, d_slot, d_pos, d_pslot, d_plen, R, NH, NKV, HD, max_len_);
    K.gemm(false, true, R, C, QD, att_, QD, M.dev(L.o), QD, 1.f, x_, C);
    K.rmsnorm_forward(xn_, rstd_, x_, M.dev(L.ln2), R, C, eps);
    K.gemm(false, true, R, I, C, xn_, C, M.dev(L.gate), C, 0.f, gate_, I);
    K.gemm(false, true, R, I, C, xn_, C, M.dev(L.up), C, 0.f, up_, I);
    K.swiglu_forward(gate_, gate_, up_, (int64_t)R * I);
    K.gemm(false, true, R, C, I, gate_, I, M.dev(L.down), I, 1.f, x_, C);
  }
  for (const Chunk& ch : chunks) slots_[ch.slot].len += ch.n;
  gather_rows(xh_, x_, d_heads, nout, C);
  K.rmsnorm_forward(xn_, rstd_, xh_, M.dev(host.final_norm_weight()), nout, C, eps);
  if (c.lm_head) K.gemm(false, true, nout, V, C, xn_, C, M.dev(host.lm_head_weight()), C, 0.f, logits_, V);
  if (c.scalar_head) scalar_head_forward(values_, xn_, M.dev(host.score_weight()), M.dev(host.score_bias()), nout, C);
  return nout;
}

void DeviceDecodeSession::keep_pending(const std::vector<int>& slot_of_row, int n) {
  const ModelConfig& c = model_->config();
  if (n == 0) return;
  std::vector<int32_t> rows(slot_of_row.begin(), slot_of_row.begin() + n);
  int32_t* d_rows = ibuf_.data() + 6 * rows_cap_;
  ibuf_.upload(rows.data(), n, 6 * rows_cap_);
  if (c.lm_head) scatter_rows(pending_.data(), logits_, d_rows, n, c.vocab_size);
  if (c.scalar_head) scatter_rows(pending_val_.data(), values_, d_rows, n, 1);
  for (int i = 0; i < n; i++) slots_[slot_of_row[i]].pending = true;
}

void DeviceDecodeSession::copy_pending(int dst, int src) {
  const ModelConfig& c = model_->config();
  const size_t V = c.vocab_size;
  if (c.lm_head) copy_on_device(pending_.data() + (size_t)dst * V, pending_.data() + (size_t)src * V, sizeof(float) * V);
  copy_on_device(pending_val_.data() + dst, pending_val_.data() + src, sizeof(float));
  slots_[dst].pending = slots_[src].pending;
}

std::vector<int> DeviceDecodeSession::add_prompts(const std::vector<std::vector<int32_t>>& prompts, int copies,
                                                  const std::vector<uint64_t>& streams) {
  const ModelConfig& c = model_->config();
  FARM_CHECK(!prompts.empty(), "no prompts");
  FARM_CHECK(copies >= 1, "copies (samples per prompt) must be >= 1, got ", copies);
  FARM_CHECK(streams.size() == prompts.size() * copies, "need one stream per sequence: ", prompts.size() * copies, ", got ",
             streams.size());
  FARM_CHECK((size_t)prompts.size() * copies <= free_.size(), "session has ", free_.size(), " free sequence slots, ",
             prompts.size() * copies, " needed");
  for (size_t p = 0; p < prompts.size(); p++) {
    const auto& pr = prompts[p];
    FARM_CHECK(!pr.empty(), "prompt ", p, " is empty (start prompts with BOS)");
    FARM_CHECK((int)pr.size() <= max_len_ - 1 || ((int)pr.size() <= max_len_ && !c.lm_head), "prompt ", p, " has ", pr.size(),
               " tokens; the context holds ", max_len_, " (max_position_embeddings ", c.max_position_embeddings,
               "), leaving no room to generate");
    for (size_t i = 0; i < pr.size(); i++)
      FARM_CHECK(pr[i] >= 0 && pr[i] < c.vocab_size, "prompt ", p, " token ", i, " = ", pr[i], " is outside [0, vocab_size=",
                 c.vocab_size, ")");
  }
  bind_thread();
  std::vector<int> out(prompts.size() * copies);
  for (size_t p = 0; p < prompts.size(); p++) {
    int s = alloc_slot();
    out[p * copies] = s;
    slots_[s].info.tokens = prompts[p];
    slots_[s].info.prompt_len = (int)prompts[p].size();
    slots_[s].info.stream = streams[p * copies];
  }
  std::vector<Chunk> run_chunks;
  std::vector<int> finals;
  int rows = 0;
  auto flush = [&] {
    if (run_chunks.empty()) return;
    const int n = run(run_chunks);
    std::vector<int> dest;
    std::vector<int> keep_rows;
    // one head row per chunk (its last); keep those of chunks that end a prompt
    for (size_t i = 0; i < run_chunks.size(); i++) {
      if (finals[i] < 0) continue;
      keep_rows.push_back((int)i);
      dest.push_back(out[(size_t)finals[i] * copies]);
    }
    FARM_CHECK(n == (int)run_chunks.size(), "internal: head rows");
    // head row i is chunk i's last row; keep those that end a prompt as their slot's next-token state
    for (size_t j = 0; j < keep_rows.size(); j++) {
      const int row = keep_rows[j], s = dest[j];
      if (c.lm_head)
        copy_on_device(pending_.data() + (size_t)s * c.vocab_size, logits_ + (size_t)row * c.vocab_size,
                       sizeof(float) * c.vocab_size);
      if (c.scalar_head) copy_on_device(pending_val_.data() + s, values_ + row, sizeof(float));
      slots_[s].pending = true;
    }
    run_chunks.clear();
    finals.clear();
    rows = 0;
  };
  for (size_t p = 0; p < prompts.size(); p++) {
    const auto& pr = prompts[p];
    int s = out[p * copies];
    for (int off = 0; off < (int)pr.size(); off += rows_cap_) {
      int n = std::min(rows_cap_, (int)pr.size() - off);
      if (rows + n > rows_cap_) flush();
      run_chunks.push_back({s, pr.data() + off, n, false});
      finals.push_back(off + n == (int)pr.size() ? (int)p : -1);
      rows += n;
      if (off + n < (int)pr.size()) flush();  // the next piece reads this one's cache
    }
  }
  flush();
  for (size_t p = 0; p < prompts.size(); p++) {
    int src = out[p * copies];
    for (int j = 1; j < copies; j++) {
      int s = alloc_slot();
      Slot& d = slots_[s];
      const Slot& from = slots_[src];
      d.info = from.info;
      d.info.stream = streams[p * copies + j];
      d.len = from.len;
      d.prefix_slot = src;  // the prompt's cache is read from its first copy, not copied
      d.prefix_len = from.len;
      copy_pending(s, src);
      slots_[src].dependents++;
      out[p * copies + j] = s;
    }
  }
  synchronize("prefill");
  return out;
}

std::vector<int> DeviceDecodeSession::fork(int parent, const std::vector<uint64_t>& streams) {
  slot(parent);
  FARM_CHECK(streams.size() <= free_.size(), "session has ", free_.size(), " free sequence slots, ", streams.size(), " needed");
  bind_thread();
  std::vector<int> out;
  for (uint64_t st : streams) {
    int s = alloc_slot();
    const Slot& from = slots_[parent];
    Slot& d = slots_[s];
    d = from;
    d.info.stream = st;
    d.dependents = 0;
    d.zombie = false;
    if (d.prefix_slot >= 0) slots_[d.prefix_slot].dependents++;
    copy_cache(s, parent, d.prefix_len, from.len - d.prefix_len);
    if (from.pending) copy_pending(s, parent);
    out.push_back(s);
  }
  synchronize("fork");
  return out;
}

void DeviceDecodeSession::feed_pending(const std::vector<int>& list) {
  std::vector<Chunk> chunks;
  auto flush = [&] {
    if (chunks.empty()) return;
    const int n = run(chunks);
    std::vector<int> dest;
    for (const Chunk& ch : chunks) dest.push_back(ch.slot);
    keep_pending(dest, n);
    for (const Chunk& ch : chunks) slots_[ch.slot].unfed = -1;
    chunks.clear();
  };
  for (int id : list) {
    Slot& s = slot(id);
    if (s.unfed < 0) continue;
    FARM_CHECK(s.len < max_len_, "sequence ", id, " is at the cache length ", max_len_, "; no further token fits");
    chunks.push_back({id, &s.unfed, 1, false});
    if ((int)chunks.size() == rows_cap_) flush();
  }
  flush();
}

void DeviceDecodeSession::sample(const std::vector<int>& list, int steps, const SampleOptions& opt,
                                 std::vector<TokenRecord>* out) {
  const ModelConfig& c = model_->config();
  FARM_CHECK(c.lm_head, "this model has no LM head; it cannot generate");
  opt.validate(c.vocab_size);
  FARM_CHECK(steps >= 0, "steps must be >= 0");
  for (int id : list) slot(id);
  bind_thread();
  std::vector<int> live, batch;
  std::vector<int32_t> rows;
  std::vector<double> u;
  std::vector<TokenRecord> recs;
  for (int step = 0; step < steps; step++) {
    live.clear();
    for (int id : list) {
      Slot& s = slots_[id];
      if (s.info.finish != Finish::None) continue;
      if (s.info.generated >= opt.max_new_tokens) { s.info.finish = Finish::Length; continue; }
      if ((int)s.info.tokens.size() >= max_len_) { s.info.finish = Finish::Context; continue; }
      live.push_back(id);
    }
    if (live.empty()) break;
    for (size_t g0 = 0; g0 < live.size(); g0 += rows_cap_) {
      batch.assign(live.begin() + g0, live.begin() + std::min(live.size(), g0 + rows_cap_));
      for (int id : batch) {
        const Slot& s = slots_[id];
        FARM_CHECK(s.pending || s.unfed >= 0, "internal: sequence ", id, " has neither logits nor a token to feed");
      }
      feed_pending(batch);  // sequences whose last token is not in the cache yet
      const int nb = (int)batch.size();
      rows.assign(batch.begin(), batch.end());
      u.resize(nb);
      for (int i = 0; i < nb; i++) {
        const Slot& s = slots_[batch[i]];
        u[i] = rand_uniform_d(opt.seed, s.info.stream, (uint64_t)s.info.tokens.size());
      }
      recs.resize(nb);
      sample_rows(pending_.data(), c.vocab_size, rows.data(), nb, c.scalar_head ? pending_val_.data() : nullptr, opt, u.data(),
                  recs.data());
      for (int i = 0; i < nb; i++)
        FARM_CHECK(recs[i].token >= 0, "the model produced non-finite logits for sequence ", batch[i],
                   " (NaN or infinite weights?)");
      for (int i = 0; i < nb; i++) {
        Slot& s = slots_[batch[i]];
        const TokenRecord& r = recs[i];
        out->push_back(r);
        s.info.tokens.push_back(r.token);
        s.info.generated++;
        s.pending = false;
        s.unfed = r.token;
        if (std::find(opt.stop_tokens.begin(), opt.stop_tokens.end(), r.token) != opt.stop_tokens.end())
          s.info.finish = Finish::Stop;
        else if (s.info.generated >= opt.max_new_tokens)
          s.info.finish = Finish::Length;
        else if ((int)s.info.tokens.size() >= max_len_)
          s.info.finish = Finish::Context;
      }
    }
  }
  synchronize("sample");
}

void DeviceDecodeSession::extend(int id, const int32_t* tokens, int n, float* logprob, float* value) {
  const ModelConfig& c = model_->config();
  const int V = c.vocab_size;
  Slot& s = slot(id);
  FARM_CHECK(n >= 1, "extend needs at least one token");
  FARM_CHECK((int)s.info.tokens.size() + n <= max_len_, "sequence ", id, " has ", s.info.tokens.size(), " tokens; ", n,
             " more exceed the cache length ", max_len_);
  for (int i = 0; i < n; i++)
    FARM_CHECK(tokens[i] >= 0 && tokens[i] < V, "token ", i, " = ", tokens[i], " is outside [0, vocab_size=", V, ")");
  bind_thread();
  feed_pending({id});
  FARM_CHECK(s.pending, "internal: sequence ", id, " has no next-token state");
  const Kernels& K = prof::instrument(kernels());  // profiled when on (farm/profile.h)
  int32_t* d_tg = ibuf_.data() + 6 * rows_cap_;
  // The first token's log-prob from the pending logits.
  if (c.lm_head) {
    ibuf_.upload(tokens, 1, 6 * rows_cap_);
    K.logsoftmax_forward(lp_, nullptr, lse_, pending_.data() + (size_t)id * V, d_tg, 1, V);
    copy_to_host(logprob, lp_, sizeof(float));
  } else {
    logprob[0] = 0.f;
  }
  copy_to_host(value, pending_val_.data() + id, sizeof(float));
  for (int off = 0; off < n; off += rows_cap_) {
    const int k = std::min(rows_cap_, n - off);
    const int nout = run({{id, tokens + off, k, true}});
    // row i predicts token off + i + 1
    std::vector<int32_t> tg(k, -1);
    for (int i = 0; i < k; i++)
      if (off + i + 1 < n) tg[i] = tokens[off + i + 1];
    std::vector<float> lp(k, 0.f), val(k, 0.f);
    if (c.lm_head) {
      ibuf_.upload(tg.data(), k, 6 * rows_cap_);
      K.logsoftmax_forward(lp_, nullptr, lse_, logits_, d_tg, nout, V);
      copy_to_host(lp.data(), lp_, sizeof(float) * k);
    }
    if (c.scalar_head) copy_to_host(val.data(), values_, sizeof(float) * k);
    for (int i = 0; i < k; i++) {
      const int next = off + i + 1;
      if (next < n) {
        logprob[next] = lp[i];
        value[next] = c.scalar_head ? val[i] : 0.f;
      }
    }
    if (off + k == n) {  // the last row's state is the sequence's next-token state
      if (c.lm_head)
        copy_on_device(pending_.data() + (size_t)id * V, logits_ + (size_t)(k - 1) * V, sizeof(float) * V);
      copy_on_device(pending_val_.data() + id, c.scalar_head ? values_ + (k - 1) : pending_val_.data() + id, sizeof(float));
      s.pending = true;
    }
  }
  s.unfed = -1;
  s.info.tokens.insert(s.info.tokens.end(), tokens, tokens + n);
  synchronize("extend");
}

std::vector<float> DeviceDecodeSession::next_logits(int id, float* value) {
  Slot& s = slot(id);
  bind_thread();
  if (!s.pending) {
    FARM_CHECK(s.unfed >= 0, "sequence ", id, " has no next-token state");
    feed_pending({id});
  }
  const ModelConfig& c = model_->config();
  std::vector<float> z;
  if (c.lm_head) {
    z.resize(c.vocab_size);
    copy_to_host(z.data(), pending_.data() + (size_t)id * c.vocab_size, sizeof(float) * c.vocab_size);
  }
  if (value) copy_to_host(value, pending_val_.data() + id, sizeof(float));
  return z;
}

}  // namespace farm::cuda
