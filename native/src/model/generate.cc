// KV-cache decoding and sampling (see farm/generate.h).
#include "farm/generate.h"
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <numeric>
#include <sys/mman.h>
#include <unistd.h>
#include "cpu/vecmath.h"
#include "decode_kernels.h"
#include "farm/common.h"
#include "farm/profile.h"
#include "farm/rng.h"

namespace farm {

// ---------------------------------------------------------------------------------------------------
// Weights

DecoderWeights DecoderWeights::of(const Transformer& m) {
  DecoderWeights w;
  w.cfg = m.config();
  for (int l = 0; l < w.cfg.num_hidden_layers; l++) {
    auto L = m.layer_weights(l);
    w.layers.push_back({L.ln1, L.q, L.k, L.v, L.o, L.ln2, L.gate, L.up, L.down});
  }
  w.embed = m.embed_weight();
  w.norm = m.final_norm_weight();
  w.lm_head = m.lm_head_weight();
  w.score_w = m.score_weight();
  w.score_b = m.score_bias();
  const size_t n = (size_t)w.cfg.max_position_embeddings * (w.cfg.head_dim() / 2);
  w.rope_cos.assign(m.rope_cos(), m.rope_cos() + n);
  w.rope_sin.assign(m.rope_sin(), m.rope_sin() + n);
  return w;
}

// The same float math as the Transformer constructor, so both paths rotate identically.
void DecoderWeights::compute_rope(int positions) {
  const int HD = cfg.head_dim(), half = HD / 2, P = std::min(positions, cfg.max_position_embeddings);
  rope_cos.resize((size_t)P * half);
  rope_sin.resize((size_t)P * half);
  for (int i = 0; i < half; i++) {
    float inv_freq = 1.0f / std::pow(cfg.rope_theta, (float)(2 * i) / (float)HD);
    for (int t = 0; t < P; t++) {
      float ang = (float)t * inv_freq;
      rope_cos[(size_t)t * half + i] = std::cos(ang);
      rope_sin[(size_t)t * half + i] = std::sin(ang);
    }
  }
}

const char* finish_name(Finish f) {
  switch (f) {
    case Finish::None: return "none";
    case Finish::Stop: return "stop";
    case Finish::Length: return "length";
    case Finish::Context: return "context";
  }
  return "?";
}

void SampleOptions::validate(int vocab) const {
  FARM_CHECK(std::isfinite(temperature) && temperature >= 0, "temperature must be >= 0 (0 = greedy), got ", temperature);
  FARM_CHECK(top_k >= 0, "top_k must be >= 0 (0 = off), got ", top_k);
  FARM_CHECK(std::isfinite(top_p) && top_p > 0 && top_p <= 1, "top_p must be in (0, 1], got ", top_p);
  FARM_CHECK(max_new_tokens >= 1, "max_new_tokens must be >= 1, got ", max_new_tokens);
  for (int32_t t : stop_tokens)
    FARM_CHECK(t >= 0 && t < vocab, "stop token id ", t, " is outside [0, vocab_size=", vocab, ")");
}

// ---------------------------------------------------------------------------------------------------
// Sampling

namespace {
// Candidates ordered by probability, ties by lower id: a total order, so selection is deterministic.
struct ByProb {
  const float* e;
  bool operator()(int32_t a, int32_t b) const { return e[a] > e[b] || (e[a] == e[b] && a < b); }
};
}  // namespace

TokenRecord sample_logits(const float* z, int V, const SampleOptions& opt, double u, float* scratch, int32_t* idx) {
  const cpu::VecMath& M = cpu::vm();
  TokenRecord r{};
  const float m = M.max(z, V);
  float* e = scratch;
  const float s1 = M.exp_shift_sum(e, z, m, V);  // e[i] = exp(z_i - max)
  const float lse1 = m + std::log(s1);
  if (!std::isfinite(lse1)) {  // NaN/inf logits: the caller reports it (no throwing inside parallel regions)
    r.token = -1;
    return r;
  }
  if (opt.temperature == 0.f) {
    int best = 0;
    for (int i = 1; i < V; i++)
      if (z[i] > z[best]) best = i;
    r.token = best;
    r.logprob = z[best] - lse1;
    r.scaled_logprob = r.sample_logprob = 0.f;
    return r;
  }
  const float invT = 1.f / opt.temperature;
  double S = s1;  // at temperature 1, e already holds the weights
  if (invT != 1.f) {
    // The max maps to 0 exactly, also when a tiny temperature makes invT infinite (0 * inf would be NaN).
#pragma omp simd
    for (int i = 0; i < V; i++) e[i] = z[i] == m ? 0.f : (z[i] - m) * invT;
    S = M.exp_shift_sum(e, e, 0.f, V);  // e[i] = exp((z_i - max) / T), summed in index order
  }
  auto scaled_lp = [&](int t) { return (float)((z[t] == m ? 0.0 : (double)(z[t] - m) * invT) - std::log(S)); };
  const bool truncate = (opt.top_k > 0 && opt.top_k < V) || opt.top_p < 1.f;
  if (!truncate) {
    const double target = u * S;
    double cum = 0;
    int tok = -1;
    for (int i = 0; i < V; i++) {
      if (e[i] <= 0.f) continue;
      cum += e[i];
      tok = i;
      if (cum > target) break;
    }
    r.token = tok;
    r.logprob = z[tok] - lse1;
    r.scaled_logprob = r.sample_logprob = scaled_lp(tok);
    return r;
  }
  // Sorted candidate prefix: the top-k, or for top-p alone a prefix growing until it holds the nucleus.
  const ByProb cmp{e};
  std::iota(idx, idx + V, 0);
  int kk;
  double universe;  // mass the nucleus is measured against (top-k renormalizes first, as transformers does)
  if (opt.top_k > 0 && opt.top_k < V) {
    kk = opt.top_k;
    std::nth_element(idx, idx + kk - 1, idx + V, cmp);
    std::sort(idx, idx + kk, cmp);
    universe = 0;
    for (int i = 0; i < kk; i++) universe += e[idx[i]];
  } else {
    universe = S;
    kk = std::min(V, 64);
    for (;;) {
      if (kk < V) std::nth_element(idx, idx + kk - 1, idx + V, cmp);
      std::sort(idx, idx + kk, cmp);
      double mass = 0;
      for (int i = 0; i < kk; i++) mass += e[idx[i]];
      if (kk == V || mass >= (double)opt.top_p * S) break;
      kk = std::min(V, kk * 4);
    }
  }
  int keep = kk;
  double kept = 0;
  if (opt.top_p < 1.f) {
    const double need = (double)opt.top_p * universe;
    keep = 0;
    for (int i = 0; i < kk; i++) {
      if (i > 0 && kept >= need) break;  // keep a token while the mass before it is below top_p
      kept += e[idx[i]];
      keep = i + 1;
    }
  } else {
    kept = universe;
  }
  const double target = u * kept;
  double cum = 0;
  int tok = idx[0];
  for (int i = 0; i < keep; i++) {
    if (e[idx[i]] <= 0.f) break;
    cum += e[idx[i]];
    tok = idx[i];
    if (cum > target) break;
  }
  r.token = tok;
  r.logprob = z[tok] - lse1;
  r.scaled_logprob = scaled_lp(tok);
  r.sample_logprob = (float)((z[tok] == m ? 0.0 : (double)(z[tok] - m) * invT) - std::log(kept));
  return r;
}

// ---------------------------------------------------------------------------------------------------
// Session

struct DecodeSession::Slot {
  SlotInfo info;
  int len = 0;          // tokens in the cache
  int32_t unfed = -1;   // last sampled token, not yet in the cache
  std::shared_ptr<const std::vector<float>> pending;  // next-token logits when known (after prefill/extend)
  float pending_value = 0.f;
  // Positions [0, prefix_len) live in prefix_slot's cache (the samples of a prompt share its prefill; caches
  // only grow, so the shared part never changes). -1: the whole sequence is in this slot's cache.
  int prefix_slot = -1, prefix_len = 0;
  int dependents = 0;   // slots reading their prefix from this one
  bool zombie = false;  // released while dependents remain: its cache stays until they are released
};

struct DecodeSession::Workspace {
  std::shared_ptr<float> buf;  // big_alloc
  float *x, *xn, *q, *k, *v, *att, *gate, *up, *logits, *values;
  std::vector<int> row_slot, row_pos;
};


// Session buffers (KV cache, workspace, packed weights): 2 MiB pages where the kernel allows, and a small
// pool of freed buffers that the next session of the same shape reuses. generate() makes a session per
// call; without the pool every call would fault in its buffers page by page (microseconds a page in a VM).
namespace {
struct BigPool {
  std::mutex mu;
  std::vector<std::pair<size_t, void*>> free;  // (size, buffer), newest last
  size_t held = 0;
  static constexpr size_t kMaxHeld = (size_t)512 << 20, kMaxBuffers = 8;
};
BigPool& big_pool() {
  static BigPool* p = new BigPool();  // never destroyed: sessions may be freed during static teardown
  return *p;
}
size_t big_size(size_t bytes) {
  const size_t huge = (size_t)2 << 20, align = bytes >= huge ? huge : 64;
  return (bytes + align - 1) / align * align;
}
}  // namespace
static void* big_alloc(size_t bytes) {
  const size_t size = big_size(bytes);
  {
    BigPool& bp = big_pool();
    std::lock_guard<std::mutex> lk(bp.mu);
    for (size_t i = bp.free.size(); i-- > 0;)
      if (bp.free[i].first == size) {
        void* p = bp.free[i].second;
        bp.held -= size;
        bp.free.erase(bp.free.begin() + i);
        return p;
      }
  }
  const size_t align = size % ((size_t)2 << 20) == 0 ? (size_t)2 << 20 : 64;
  void* p = std::aligned_alloc(align, size);
#ifdef MADV_HUGEPAGE
  if (p && align > 64) madvise(p, size, MADV_HUGEPAGE);
#endif
  return p;
}
// Deleter of big_alloc buffers (returns them to the pool).
struct BigFree {
  size_t bytes;
  void operator()(void* p) const {
    if (!p) return;
    const size_t size = big_size(bytes);
    BigPool& bp = big_pool();
    std::lock_guard<std::mutex> lk(bp.mu);
    if (size <= BigPool::kMaxHeld) {
      bp.free.push_back({size, p});
      bp.held += size;
    } else {
      std::free(p);
    }
    while (bp.held > BigPool::kMaxHeld || bp.free.size() > BigPool::kMaxBuffers) {
      bp.held -= bp.free.front().first;
      std::free(bp.free.front().second);
      bp.free.erase(bp.free.begin());
    }
  }
};

// Next-token state after a run: the logits row (empty for a model without an LM head).
static std::shared_ptr<const std::vector<float>> pending_of(const ModelConfig& c, const float* logits, size_t row) {
  if (!c.lm_head) return std::make_shared<const std::vector<float>>();
  const float* z = logits + row * (size_t)c.vocab_size;
  return std::make_shared<const std::vector<float>>(z, z + c.vocab_size);
}

// The linear weights in the decode kernels' packed layout (decode_kernels.h).
struct DecodeSession::Packed {
  struct Layer { decode::PackedMatrix q, k, v, o, gate, up, down; };
  std::vector<Layer> layers;
  decode::PackedMatrix lm_head;
  std::shared_ptr<uint8_t> arena;  // all of them, one allocation (big_alloc)
  size_t bytes = 0;
};

void DecodeSession::pack_weights() {
  const DecoderWeights& w = *w_;
  const ModelConfig& c = w.cfg;
  const int C = c.hidden_size, I = c.intermediate_size, QD = c.num_attention_heads * c.head_dim(),
            KD = c.num_key_value_heads * c.head_dim();
  const decode::WeightType t = bf16_ ? decode::WeightType::BF16 : decode::WeightType::F32;
  auto p = std::make_unique<Packed>();
  p->layers.resize(c.num_hidden_layers);
  using PM = decode::PackedMatrix;
  const size_t per_layer = PM::storage_bytes(QD, C, t) + 2 * PM::storage_bytes(KD, C, t) + PM::storage_bytes(C, QD, t) +
                           2 * PM::storage_bytes(I, C, t) + PM::storage_bytes(C, I, t);
  p->bytes = per_layer * c.num_hidden_layers + (c.lm_head ? PM::storage_bytes(c.vocab_size, C, t) : 0);
  p->arena.reset(static_cast<uint8_t*>(big_alloc(p->bytes)), BigFree{p->bytes});
  FARM_CHECK(p->arena != nullptr, "out of memory packing the decode weights (", p->bytes, " bytes)");
  uint8_t* at = p->arena.get();
  auto pack = [&](PM& m, const float* W, int N, int K) {
    m.pack(W, N, K, t, team_.get(), at);
    at += PM::storage_bytes(N, K, t);
  };
  for (int l = 0; l < c.num_hidden_layers; l++) {
    const DecoderWeights::Layer& L = w.layers[l];
    Packed::Layer& P = p->layers[l];
    pack(P.q, L.q, QD, C);
    pack(P.k, L.k, KD, C);
    pack(P.v, L.v, KD, C);
    pack(P.o, L.o, C, QD);
    pack(P.gate, L.gate, I, C);
    pack(P.up, L.up, I, C);
    pack(P.down, L.down, C, I);
  }
  if (c.lm_head) pack(p->lm_head, w.lm_head, c.vocab_size, C);
  packed_ = std::move(p);
}

size_t DecodeSession::packed_weight_bytes() const { return packed_ ? packed_->bytes : 0; }

DecodeSession::DecodeSession(std::shared_ptr<const DecoderWeights> w, int max_slots, int max_len, bool bf16_weights,
                             bool bf16_kv)
    : w_(std::move(w)), max_slots_(max_slots), max_len_(max_len), bf16_(bf16_weights), kv_bf16_(bf16_kv) {
  const ModelConfig& c = w_->cfg;
  FARM_CHECK(c.lm_head || c.scalar_head, "model has no head");
  FARM_CHECK(max_slots >= 1 && max_slots <= (1 << 20), "max_slots must be in [1, 2^20], got ", max_slots);
  FARM_CHECK(max_len >= 1 && max_len <= c.max_position_embeddings, "max_len must be in [1, max_position_embeddings=",
             c.max_position_embeddings, "], got ", max_len);
  FARM_CHECK(w_->rope_cos.size() >= (size_t)max_len * (c.head_dim() / 2), "rotary tables cover fewer than ", max_len,
             " positions");
  const size_t HD = c.head_dim(), NKV = c.num_key_value_heads, NH = c.num_attention_heads, C = c.hidden_size,
               I = c.intermediate_size, V = c.lm_head ? c.vocab_size : 0;
  const size_t per_layer = (size_t)max_slots * max_len * NKV * HD, es = kv_es();
  const double gib = 2.0 * c.num_hidden_layers * per_layer * es / (1 << 30);
  const double ram_gib = (double)sysconf(_SC_PHYS_PAGES) * sysconf(_SC_PAGESIZE) / (1 << 30);
  FARM_CHECK(gib <= 0.75 * ram_gib, "the KV cache would take ", gib, " GiB (", max_slots, " sequences x ", max_len,
             " tokens), more than 3/4 of this machine's ", ram_gib, " GiB; generate fewer sequences at once");
  // One allocation for the K and V caches of every layer (big_alloc); the per-layer pointers are views.
  const size_t layer_bytes = (per_layer * es + 63) / 64 * 64, kv_bytes = layer_bytes * 2 * c.num_hidden_layers;
  uint8_t* kv = static_cast<uint8_t*>(big_alloc(kv_bytes));
  FARM_CHECK(kv != nullptr, "out of memory allocating the KV cache (", kv_bytes, " bytes)");
  kv_arena_.reset(kv, BigFree{kv_bytes});
  for (int l = 0; l < c.num_hidden_layers; l++) {
    kcache_.push_back(kv + (size_t)(2 * l) * layer_bytes);
    vcache_.push_back(kv + (size_t)(2 * l + 1) * layer_bytes);
  }
  // Rows per model run: all live sequences of a step at once, bounded so the workspace stays small.
  const size_t per_row = 2 * C + (NH + 2 * NKV) * HD + NH * HD + 2 * I + V + 1;
  rows_cap_ = (int)std::max<size_t>(16, std::min<size_t>(512, ((size_t)1 << 23) / per_row));
  ws_ = std::make_unique<Workspace>();
  Workspace& W = *ws_;
  const size_t R = rows_cap_;
  auto pad = [](size_t n) { return (n + 15) / 16 * 16; };
  size_t sizes[] = {R * C, R * C, R * NH * HD, R * NKV * HD, R * NKV * HD, R * NH * HD, R * I, R * I, R * V, R};
  size_t total = 0;
  for (size_t s : sizes) total += pad(s);
  // Not zeroed: every row is written before it is read, and pages of rows never used stay untouched.
  W.buf.reset(static_cast<float*>(big_alloc(total * sizeof(float))), BigFree{total * sizeof(float)});
  FARM_CHECK(W.buf != nullptr, "out of memory allocating the decode workspace (", total * sizeof(float), " bytes)");
  float* p = W.buf.get();
  float** dst[] = {&W.x, &W.xn, &W.q, &W.k, &W.v, &W.att, &W.gate, &W.up, &W.logits, &W.values};
  for (int i = 0; i < 10; i++) { *dst[i] = p; p += pad(sizes[i]); }
  W.row_slot.resize(R);
  W.row_pos.resize(R);
  slots_.resize(max_slots);
  for (int s = max_slots - 1; s >= 0; s--) free_.push_back(s);
}

DecodeSession::~DecodeSession() = default;

size_t DecodeSession::cache_bytes() const {
  const ModelConfig& c = w_->cfg;
  return 2 * (size_t)c.num_hidden_layers * max_slots_ * max_len_ * c.num_key_value_heads * c.head_dim() * kv_es();
}

bool DecodeSession::info_used(int s) const { return slots_[s].info.used; }

DecodeSession::Slot& DecodeSession::slot(int s) {
  FARM_CHECK(s >= 0 && s < max_slots_ && slots_[s].info.used, "sequence slot ", s, " is not in use");
  return slots_[s];
}
const DecodeSession::SlotInfo& DecodeSession::info(int s) const {
  FARM_CHECK(s >= 0 && s < max_slots_ && slots_[s].info.used, "sequence slot ", s, " is not in use");
  return slots_[s].info;
}

int DecodeSession::alloc_slot() {
  FARM_CHECK(!free_.empty(), "no free sequence slot (the session holds ", max_slots_, ")");
  int s = free_.back();
  free_.pop_back();
  slots_[s] = Slot();
  slots_[s].info.used = true;
  return s;
}

void DecodeSession::release(int s) {
  Slot& sl = slot(s);
  const int owner = sl.prefix_slot;
  if (sl.dependents > 0) {
    sl.info = SlotInfo();  // gone for the caller; the cache stays for the dependents
    sl.pending.reset();
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

void DecodeSession::copy_cache(int dst, int src, int from, int n) {
  const ModelConfig& c = w_->cfg;
  const size_t HD = c.head_dim(), head = (size_t)max_len_ * HD, slot = c.num_key_value_heads * head;
  for (int l = 0; l < c.num_hidden_layers; l++)
    for (int h = 0; h < c.num_key_value_heads; h++) {
      size_t d = dst * slot + h * head + (size_t)from * HD, s = src * slot + h * head + (size_t)from * HD;
      const size_t es = kv_es();
      std::memcpy(kcache_[l] + d * es, kcache_[l] + s * es, es * n * HD);
      std::memcpy(vcache_[l] + d * es, vcache_[l] + s * es, es * n * HD);
    }
}

namespace {
void rmsnorm_rows(float* out, const float* x, const float* w, int R, int C, float eps, const char* op) {
  prof::next_op(op);
  prof::Scope scope("decode.rmsnorm", 4.0 * R * C, 4.0 * (2.0 * R * C + C));
  scope.dims(R, C);
  const cpu::VecMath& M = cpu::vm();
  for (int r = 0; r < R; r++) {
    const float* xi = x + (size_t)r * C;
    float* oi = out + (size_t)r * C;
    float rs = 1.0f / std::sqrt(M.sumsq(xi, C) / C + eps);
#pragma omp simd
    for (int c = 0; c < C; c++) oi[c] = (xi[c] * rs) * w[c];
  }
}
void rope_row(float* v, const float* cs, const float* sn, int H, int HD) {
  const int half = HD / 2;
  for (int h = 0; h < H; h++, v += HD) {
#pragma omp simd
    for (int i = 0; i < half; i++) {
      float a = v[i], b = v[i + half];
      v[i] = a * cs[i] - b * sn[i];
      v[i + half] = b * cs[i] + a * sn[i];
    }
  }
}
}  // namespace

decode::Team& DecodeSession::team() {
  const int n = std::max(1, num_threads());
  if (!team_ || team_->size() != n) {
    team_.reset();
    team_ = std::make_unique<decode::Team>(n);
  }
  return *team_;
}

int DecodeSession::run(const std::vector<Chunk>& chunks) {
  team();
  const DecoderWeights& w = *w_;
  const ModelConfig& c = w.cfg;
  const int C = c.hidden_size, I = c.intermediate_size, V = c.vocab_size, HD = c.head_dim(), half = HD / 2;
  const int NH = c.num_attention_heads, NKV = c.num_key_value_heads, group = NH / NKV;
  const int QD = NH * HD, KD = NKV * HD;
  const float eps = c.rms_norm_eps, scale = 1.0f / std::sqrt((float)HD);
  Workspace& W = *ws_;
  int R = 0;
  for (const Chunk& ch : chunks) {
    Slot& s = slot(ch.slot);
    FARM_CHECK(s.len + ch.n <= max_len_, "sequence ", ch.slot, " would exceed the cache length ", max_len_);
    for (int i = 0; i < ch.n; i++) {
      FARM_CHECK(R < rows_cap_, "internal: too many rows in one run");
      int32_t t = ch.tokens[i];
      FARM_CHECK(t >= 0 && t < V, "token id ", t, " is outside [0, vocab_size=", V, ")");
      W.row_slot[R] = ch.slot;
      W.row_pos[R] = s.len + i;
      std::memcpy(W.x + (size_t)R * C, w.embed + (size_t)t * C, sizeof(float) * C);
      R++;
    }
  }
  if (R == 0) return 0;
  if (!packed_) pack_weights();
  const Packed& PW = *packed_;
  const int* rslot = W.row_slot.data();
  const int* rpos = W.row_pos.data();
  const size_t slot_stride = (size_t)max_len_ * KD;
  for (int l = 0; l < c.num_hidden_layers; l++) {
    const DecoderWeights::Layer& L = w.layers[l];
    const Packed::Layer& PL = PW.layers[l];
    uint8_t* Kc = kcache_[l];
    uint8_t* Vc = vcache_[l];
    const size_t es = kv_es();
    prof::set_layer(l);
    rmsnorm_rows(W.xn, W.x, L.ln1, R, C, eps, "attn_norm");
    const decode::PackedSeg qkv[3] = {{&PL.q, W.q, QD}, {&PL.k, W.k, KD}, {&PL.v, W.v, KD}};
    prof::next_op("qkv_proj");
    decode::linear(W.xn, C, R, qkv, 3, false, team_.get());
    {
    prof::Scope rope_scope("decode.rope_kv_store", 3.0 * R * (QD + KD), 4.0 * R * (2 * QD + 3 * KD));
    rope_scope.dims(R, QD + KD);
    for (int r = 0; r < R; r++) {
      const float* cs = w.rope_cos.data() + (size_t)rpos[r] * half;
      const float* sn = w.rope_sin.data() + (size_t)rpos[r] * half;
      rope_row(W.q + (size_t)r * QD, cs, sn, NH, HD);
      rope_row(W.k + (size_t)r * KD, cs, sn, NKV, HD);
      for (int h = 0; h < NKV; h++) {
        size_t at = rslot[r] * slot_stride + ((size_t)h * max_len_ + rpos[r]) * HD;
        const float *kr = W.k + (size_t)r * KD + h * HD, *vr = W.v + (size_t)r * KD + h * HD;
        if (kv_bf16_) {
          decode::to_bf16(reinterpret_cast<uint16_t*>(Kc + at * es), kr, HD);
          decode::to_bf16(reinterpret_cast<uint16_t*>(Vc + at * es), vr, HD);
        } else {
          std::memcpy(Kc + at * es, kr, sizeof(float) * HD);
          std::memcpy(Vc + at * es, vr, sizeof(float) * HD);
        }
      }
    }
    }
    // Attention of each (row, head) over its sequence's cache up to its own position.
    const int tasks = R * NH;
    auto attend_tasks = [&](int64_t t0, int64_t t1) {
      static thread_local std::vector<float> sc;
      if ((int)sc.size() < max_len_) sc.resize(max_len_);
      for (int t = (int)t0; t < (int)t1; t++) {
        const int r = t / NH, h = t % NH, kvh = h / group, n = rpos[r] + 1;
        const float* q = W.q + (size_t)r * QD + h * HD;
        const size_t head = (size_t)kvh * max_len_ * HD;
        const Slot& sl = slots_[rslot[r]];
        decode::KVSegment seg[2];
        int ns = 0;
        int from = 0;
        if (sl.prefix_slot >= 0) {  // the shared prompt, read from its owner's cache
          const size_t base = sl.prefix_slot * slot_stride + head;
          seg[ns++] = {Kc + base * es, Vc + base * es, sl.prefix_len};
          from = sl.prefix_len;
        }
        const size_t base = rslot[r] * slot_stride + head + (size_t)from * HD;
        seg[ns++] = {Kc + base * es, Vc + base * es, n - from};
        decode::attend(q, seg, ns, HD, HD, scale, W.att + (size_t)r * QD + h * HD, sc.data(), kv_bf16_);
      }
    };
    {
      // Scores and weighted sums over each row's context: reads its K and V rows (the KV cache's traffic).
      double ctx = 0;
      for (int r = 0; r < R; r++) ctx += rpos[r] + 1;
      prof::Scope att("decode.attention", 4.0 * ctx * NH * HD + 5.0 * ctx * NH, 2.0 * es * ctx * KD + 8.0 * R * QD);
      att.dims(R, NH, HD).flags(kv_bf16_ ? 8 : 0);  // the context length varies by step: in FLOPs and bytes, not the key
      if ((int64_t)tasks * (rpos[R - 1] + 1) * HD >= (1 << 14)) team_->split(tasks, attend_tasks);
      else attend_tasks(0, tasks);
    }
    const decode::PackedSeg oseg = {&PL.o, W.x, C};
    prof::next_op("o_proj");
    decode::linear(W.att, QD, R, &oseg, 1, true, team_.get());
    rmsnorm_rows(W.xn, W.x, L.ln2, R, C, eps, "mlp_norm");
    // h = silu(gate) * up straight from the tiles (gate and up never reach memory)
    prof::next_op("gate_up_proj");
    decode::linear_swiglu(W.xn, C, R, PL.gate, PL.up, W.gate, I, team_.get());
    const decode::PackedSeg dseg = {&PL.down, W.x, C};
    prof::next_op("down_proj");
    decode::linear(W.gate, I, R, &dseg, 1, true, team_.get());
  }
  prof::set_layer(-1);
  // Heads on the wanted rows (last of each chunk, or all), compacted in order.
  int out = 0, r0 = 0;
  for (const Chunk& ch : chunks) {
    for (int i = 0; i < ch.n; i++) {
      int r = r0 + i;
      if (ch.want_all || i == ch.n - 1) {
        if (out != r) std::memcpy(W.x + (size_t)out * C, W.x + (size_t)r * C, sizeof(float) * C);
        out++;
      }
    }
    r0 += ch.n;
    slots_[ch.slot].len += ch.n;
  }
  rmsnorm_rows(W.xn, W.x, w.norm, out, C, eps, "final_norm");
  if (c.lm_head) {
    const decode::PackedSeg head = {&PW.lm_head, W.logits, V};
    prof::next_op("lm_head");
    decode::linear(W.xn, C, out, &head, 1, false, team_.get());
  }
  if (c.scalar_head) {
    prof::Scope score("decode.score_head", 2.0 * out * C, 4.0 * out * C);
    for (int r = 0; r < out; r++) W.values[r] = decode::dot(W.xn + (size_t)r * C, w.score_w, C) + *w.score_b;
  }
  return out;
}

std::vector<int> DecodeSession::add_prompts(const std::vector<std::vector<int32_t>>& prompts, int copies,
                                            const std::vector<uint64_t>& streams) {
  const ModelConfig& c = w_->cfg;
  FARM_CHECK(!prompts.empty(), "no prompts");
  FARM_CHECK(copies >= 1, "copies (samples per prompt) must be >= 1, got ", copies);
  FARM_CHECK(streams.size() == prompts.size() * copies, "need one stream per sequence: ", prompts.size() * copies,
             ", got ", streams.size());
  FARM_CHECK((size_t)prompts.size() * copies <= free_.size(), "session has ", free_.size(), " free sequence slots, ",
             prompts.size() * copies, " needed");
  for (size_t p = 0; p < prompts.size(); p++) {
    const auto& pr = prompts[p];
    FARM_CHECK(!pr.empty(), "prompt ", p, " is empty (start prompts with BOS)");
    FARM_CHECK((int)pr.size() <= max_len_ - 1 || ((int)pr.size() <= max_len_ && !c.lm_head), "prompt ", p, " has ",
               pr.size(), " tokens; the context holds ", max_len_, " (max_position_embeddings ",
               c.max_position_embeddings, "), leaving no room to generate");
    for (size_t i = 0; i < pr.size(); i++)
      FARM_CHECK(pr[i] >= 0 && pr[i] < c.vocab_size, "prompt ", p, " token ", i, " = ", pr[i],
                 " is outside [0, vocab_size=", c.vocab_size, ")");
  }
  std::vector<int> out(prompts.size() * copies);
  for (size_t p = 0; p < prompts.size(); p++) {
    int s = alloc_slot();
    out[p * copies] = s;
    slots_[s].info.tokens = prompts[p];
    slots_[s].info.prompt_len = (int)prompts[p].size();
    slots_[s].info.stream = streams[p * copies];
  }
  // Prefill: chunks packed into runs of at most rows_cap rows; a long prompt goes in pieces, in order.
  std::vector<Chunk> run_chunks;
  std::vector<int> finals;  // prompt index of each chunk that ends its prompt, in order
  int rows = 0;
  auto flush = [&] {
    if (run_chunks.empty()) return;
    run(run_chunks);
    // run() wrote one row per chunk (its last); keep the logits of the chunks that end a prompt.
    for (size_t i = 0; i < run_chunks.size(); i++) {
      int p = finals[i];
      if (p < 0) continue;
      Slot& s = slots_[out[(size_t)p * copies]];
      s.pending = pending_of(w_->cfg, ws_->logits, i);
      s.pending_value = w_->cfg.scalar_head ? ws_->values[i] : 0.f;
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
      d.pending = from.pending;
      d.pending_value = from.pending_value;
      d.prefix_slot = src;  // the prompt's cache is read from its first copy, not copied
      d.prefix_len = from.len;
      slots_[src].dependents++;
      out[p * copies + j] = s;
    }
  }
  return out;
}

std::vector<int> DecodeSession::fork(int parent, const std::vector<uint64_t>& streams) {
  slot(parent);
  FARM_CHECK(streams.size() <= free_.size(), "session has ", free_.size(), " free sequence slots, ", streams.size(),
             " needed");
  std::vector<int> out;
  for (uint64_t st : streams) {
    int s = alloc_slot();
    const Slot& from = slots_[parent];
    Slot& d = slots_[s];
    d = from;
    d.info.stream = st;
    d.dependents = 0;
    if (d.prefix_slot >= 0) slots_[d.prefix_slot].dependents++;  // shares the parent's prompt owner
    copy_cache(s, parent, d.prefix_len, from.len - d.prefix_len);
    out.push_back(s);
  }
  return out;
}

// Feeds the last sampled token of the listed slots (those that have one), batched.
void DecodeSession::feed_pending(const std::vector<int>& list) {
  const ModelConfig& c = w_->cfg;
  std::vector<Chunk> chunks;
  auto flush = [&] {
    if (chunks.empty()) return;
    run(chunks);
    for (size_t i = 0; i < chunks.size(); i++) {
      Slot& s = slots_[chunks[i].slot];
      s.pending = pending_of(c, ws_->logits, i);
      s.pending_value = c.scalar_head ? ws_->values[i] : 0.f;
      s.unfed = -1;
    }
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

void DecodeSession::sample(const std::vector<int>& list, int steps, const SampleOptions& opt,
                           std::vector<TokenRecord>* out) {
  const ModelConfig& c = w_->cfg;
  FARM_CHECK(c.lm_head, "this model has no LM head; it cannot generate");
  opt.validate(c.vocab_size);
  FARM_CHECK(steps >= 0, "steps must be >= 0");
  for (int id : list) slot(id);
  team();
  const int V = c.vocab_size;
  std::vector<int> live, batch;
  std::vector<const float*> logit_ptr;
  std::vector<float> value_of;
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
    // Rows are processed in groups of rows_cap: feed, then sample the group.
    for (size_t g0 = 0; g0 < live.size(); g0 += rows_cap_) {
      batch.assign(live.begin() + g0, live.begin() + std::min(live.size(), g0 + rows_cap_));
      std::vector<Chunk> chunks;
      std::vector<int> from_run(batch.size(), -1);
      for (size_t i = 0; i < batch.size(); i++) {
        Slot& s = slots_[batch[i]];
        if (!s.pending) {
          FARM_CHECK(s.unfed >= 0, "internal: sequence ", batch[i], " has neither logits nor a token to feed");
          from_run[i] = (int)chunks.size();
          chunks.push_back({batch[i], &s.unfed, 1, false});
        }
      }
      if (!chunks.empty()) run(chunks);
      logit_ptr.resize(batch.size());
      value_of.resize(batch.size());
      for (size_t i = 0; i < batch.size(); i++) {
        const Slot& s = slots_[batch[i]];
        if (from_run[i] >= 0) {
          logit_ptr[i] = ws_->logits + (size_t)from_run[i] * V;
          value_of[i] = c.scalar_head ? ws_->values[from_run[i]] : 0.f;
        } else {
          logit_ptr[i] = s.pending->data();
          value_of[i] = s.pending_value;
        }
      }
      recs.resize(batch.size());
      const int nb = (int)batch.size();
      {
      prof::Scope sampling("sample_logits", 0, 4.0 * nb * V);
      sampling.dims(nb, V);
      team_->split(nb, [&](int64_t i0, int64_t i1) {
        static thread_local std::vector<float> fs;
        static thread_local std::vector<int32_t> is;
        if ((int)fs.size() < V) { fs.resize(V); is.resize(V); }
        for (int i = (int)i0; i < (int)i1; i++) {
          const Slot& s = slots_[batch[i]];
          double u = rand_uniform_d(opt.seed, s.info.stream, (uint64_t)s.info.tokens.size());
          TokenRecord r = sample_logits(logit_ptr[i], V, opt, u, fs.data(), is.data());
          r.slot = batch[i];
          r.value = value_of[i];
          recs[i] = r;
        }
      });
      }
      for (int i = 0; i < nb; i++)
        FARM_CHECK(recs[i].token >= 0, "the model produced non-finite logits for sequence ", batch[i],
                   " (NaN or infinite weights?)");
      for (int i = 0; i < nb; i++) {
        Slot& s = slots_[batch[i]];
        const TokenRecord& r = recs[i];
        out->push_back(r);
        s.info.tokens.push_back(r.token);
        s.info.generated++;
        s.pending.reset();
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
}

void DecodeSession::extend(int id, const int32_t* tokens, int n, float* logprob, float* value) {
  const ModelConfig& c = w_->cfg;
  const int V = c.vocab_size;
  Slot& s = slot(id);
  FARM_CHECK(n >= 1, "extend needs at least one token");
  FARM_CHECK((int)s.info.tokens.size() + n <= max_len_, "sequence ", id, " has ", s.info.tokens.size(), " tokens; ",
             n, " more exceed the cache length ", max_len_);
  for (int i = 0; i < n; i++)
    FARM_CHECK(tokens[i] >= 0 && tokens[i] < V, "token ", i, " = ", tokens[i], " is outside [0, vocab_size=", V, ")");
  feed_pending({id});
  const cpu::VecMath& M = cpu::vm();
  auto lp = [&](const float* z, int t) {
    if (!c.lm_head) return 0.f;
    std::vector<float> tmp(V);
    float m = M.max(z, V);
    return z[t] - (m + std::log(M.exp_shift_sum(tmp.data(), z, m, V)));
  };
  logprob[0] = lp(s.pending ? s.pending->data() : nullptr, tokens[0]);
  value[0] = s.pending_value;
  for (int off = 0; off < n; off += rows_cap_) {
    int k = std::min(rows_cap_, n - off);
    run({{id, tokens + off, k, true}});
    for (int i = 0; i < k; i++) {
      int next = off + i + 1;
      if (next < n) {
        logprob[next] = lp(ws_->logits + (size_t)i * V, tokens[next]);
        value[next] = c.scalar_head ? ws_->values[i] : 0.f;
      } else {
        s.pending = pending_of(c, ws_->logits, i);
        s.pending_value = c.scalar_head ? ws_->values[i] : 0.f;
      }
    }
  }
  s.unfed = -1;
  s.info.tokens.insert(s.info.tokens.end(), tokens, tokens + n);
}

const float* DecodeSession::next_logits(int id, float* value) {
  Slot& s = slot(id);
  if (!s.pending) {
    FARM_CHECK(s.unfed >= 0, "sequence ", id, " has no next-token state");
    feed_pending({id});
  }
  if (value) *value = s.pending_value;
  return w_->cfg.lm_head ? s.pending->data() : nullptr;
}

}  // namespace farm
