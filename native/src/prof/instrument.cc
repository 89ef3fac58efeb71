// Timing shims around a backend's Kernels table: each entry times the inner call and records its shape with
// modelled FLOPs and compulsory bytes (fp32: every input read once, every output written once). A Kernels
// entry is a plain function pointer without context, so each wrapped backend gets its own instantiation
// (slot S) of the shims, reading its inner table from a static.
#include <cstring>
#include <mutex>
#include <string>
#include <vector>
#include "farm/common.h"
#include "farm/kernels.h"
#include "farm/profile.h"

namespace farm::prof {
namespace {

constexpr int kSlots = 4;
struct SlotState {
  const Kernels* inner = nullptr;
  Kernels wrapped{};
  void (*sync)() = nullptr;
};
SlotState g_slots[kSlots];
std::mutex g_mu;
struct PendingSync { std::string name; void (*sync)(); };
std::vector<PendingSync>& pending_syncs() {
  static std::vector<PendingSync> v;
  return v;
}

constexpr double F = 4.0;  // bytes per float

// Times one inner call: syncs a device backend before and after, so the span is the kernel's.
template <int S>
struct Timed {
  Record r;
  int64_t t0;
  explicit Timed(const char* name) {
    r.name = name;
    r.op = detail::tl_op;
    detail::tl_op = nullptr;
    if (g_slots[S].sync) g_slots[S].sync();
    t0 = now_ns();
  }
  ~Timed() {
    if (g_slots[S].sync) g_slots[S].sync();
    record(r, t0);
  }
  void dims(int64_t a, int64_t b = 0, int64_t c = 0, int64_t d = 0) {
    r.dims[0] = a; r.dims[1] = b; r.dims[2] = c; r.dims[3] = d;
    r.ndims = d ? 4 : c ? 3 : b ? 2 : 1;
  }
};

template <int S>
struct Shims {
  static const Kernels& K() { return *g_slots[S].inner; }

  static void gemm(bool ta, bool tb, int M, int N, int K_, const float* A, int lda, const float* B, int ldb, float beta,
                   float* C, int ldc) {
    Timed<S> t("gemm");
    t.dims(M, N, K_);
    t.r.flags = (ta ? 1u : 0u) | (tb ? 2u : 0u) | (beta != 0.f ? 4u : 0u);
    t.r.flops = 2.0 * M * N * K_;
    t.r.bytes = F * ((double)M * K_ + (double)K_ * N + (double)M * N * (beta != 0.f ? 2 : 1));
    K().gemm(ta, tb, M, N, K_, A, lda, B, ldb, beta, C, ldc);
  }
  static void embedding_forward(float* out, const int32_t* tokens, const float* wte, int BT, int C) {
    Timed<S> t("embedding_forward");
    t.dims(BT, C);
    t.r.bytes = F * 2.0 * BT * C + 4.0 * BT;
    K().embedding_forward(out, tokens, wte, BT, C);
  }
  static void embedding_backward(float* dwte, const float* dout, const int32_t* tokens, int BT, int C) {
    Timed<S> t("embedding_backward");
    t.dims(BT, C);
    t.r.flops = (double)BT * C;
    t.r.bytes = F * 3.0 * BT * C + 4.0 * BT;
    K().embedding_backward(dwte, dout, tokens, BT, C);
  }
  static void rmsnorm_forward(float* out, float* rstd, const float* x, const float* w, int BT, int C, float eps) {
    Timed<S> t("rmsnorm_forward");
    t.dims(BT, C);
    t.r.flops = 4.0 * BT * C;
    t.r.bytes = F * (2.0 * BT * C + C + BT);
    K().rmsnorm_forward(out, rstd, x, w, BT, C, eps);
  }
  static void rmsnorm_backward(float* dx, float* dw, const float* dout, const float* x, const float* w,
                               const float* rstd, int BT, int C, bool acc) {
    Timed<S> t("rmsnorm_backward");
    t.dims(BT, C);
    t.r.flops = 9.0 * BT * C;
    t.r.bytes = F * ((3.0 + (acc ? 1 : 0)) * BT * C + 3.0 * C + BT);
    K().rmsnorm_backward(dx, dw, dout, x, w, rstd, BT, C, acc);
  }
  static void rope(float* x, const float* cs, const float* sn, int B, int T, int H, int HD, bool inverse) {
    Timed<S> t(inverse ? "rope_backward" : "rope_forward");
    t.dims(B, T, H, HD);
    const double n = (double)B * T * H * HD;
    t.r.flops = 3.0 * n;
    t.r.bytes = F * (2.0 * n + (double)T * HD);
    K().rope(x, cs, sn, B, T, H, HD, inverse);
  }
  static void attention_forward(float* out, float* att, const float* q, const float* k, const float* v, int B, int T,
                                int NH, int NKV, int HD) {
    Timed<S> t("attention_forward");
    t.dims(B, T, NH, HD);
    // Causal: half of the T x T scores, for QK^T and PV; softmax ~5 operations a score.
    const double tri = (double)B * NH * T * (T + 1) / 2;
    t.r.flops = 4.0 * tri * HD + 5.0 * tri;
    t.r.bytes = F * ((double)B * T * (2.0 * NH + 2.0 * NKV) * HD + (double)B * NH * T * T);
    K().attention_forward(out, att, q, k, v, B, T, NH, NKV, HD);
  }
  static void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* att, const float* q,
                                 const float* k, const float* v, int B, int T, int NH, int NKV, int HD) {
    Timed<S> t("attention_backward");
    t.dims(B, T, NH, HD);
    const double tri = (double)B * NH * T * (T + 1) / 2;
    t.r.flops = 8.0 * tri * HD + 4.0 * tri;
    t.r.bytes = F * ((double)B * T * (4.0 * NH + 4.0 * NKV) * HD + (double)B * NH * T * T);
    K().attention_backward(dq, dk, dv, dout, att, q, k, v, B, T, NH, NKV, HD);
  }
  static void swiglu_forward(float* h, const float* gate, const float* up, int64_t n) {
    Timed<S> t("swiglu_forward");
    t.dims(n);
    t.r.flops = 6.0 * n;
    t.r.bytes = F * 3.0 * n;
    K().swiglu_forward(h, gate, up, n);
  }
  static void swiglu_backward(float* dgate, float* dup, const float* dh, const float* gate, const float* up, int64_t n) {
    Timed<S> t("swiglu_backward");
    t.dims(n);
    t.r.flops = 12.0 * n;
    t.r.bytes = F * 5.0 * n;
    K().swiglu_backward(dgate, dup, dh, gate, up, n);
  }
  static void logsoftmax_forward(float* logp, float* ent, float* lse, const float* logits, const int32_t* targets,
                                 int BT, int V) {
    Timed<S> t("logsoftmax_forward");
    t.dims(BT, V);
    t.r.flops = (ent ? 5.0 : 3.0) * BT * V;
    t.r.bytes = F * ((double)BT * V + 3.0 * BT);
    K().logsoftmax_forward(logp, ent, lse, logits, targets, BT, V);
  }
  static void logsoftmax_backward(float* z, const float* dlogp, const float* dent, const float* lse, const float* ent,
                                  const int32_t* targets, int BT, int V) {
    Timed<S> t("logsoftmax_backward");
    t.dims(BT, V);
    t.r.flops = (dent ? 6.0 : 3.0) * BT * V;
    t.r.bytes = F * (2.0 * BT * V + 4.0 * BT);
    K().logsoftmax_backward(z, dlogp, dent, lse, ent, targets, BT, V);
  }

  // Entries this file does not know (added to kernels.h later) pass through unprofiled.
  static Kernels table(const Kernels& inner) {
    Kernels k = inner;
    k.gemm = gemm;
    k.embedding_forward = embedding_forward;
    k.embedding_backward = embedding_backward;
    k.rmsnorm_forward = rmsnorm_forward;
    k.rmsnorm_backward = rmsnorm_backward;
    k.rope = rope;
    k.attention_forward = attention_forward;
    k.attention_backward = attention_backward;
    k.swiglu_forward = swiglu_forward;
    k.swiglu_backward = swiglu_backward;
    k.logsoftmax_forward = logsoftmax_forward;
    k.logsoftmax_backward = logsoftmax_backward;
    return k;
  }
};

Kernels make_table(int slot, const Kernels& inner) {
  switch (slot) {
    case 0: return Shims<0>::table(inner);
    case 1: return Shims<1>::table(inner);
    case 2: return Shims<2>::table(inner);
    default: return Shims<3>::table(inner);
  }
}

void (*sync_for(const char* name))() {
  for (auto& p : pending_syncs())
    if (p.name == name) return p.sync;
  return nullptr;
}

}  // namespace

const Kernels& instrument(const Kernels& k) {
  if (!enabled()) return k;
  std::lock_guard<std::mutex> lk(g_mu);
  for (int s = 0; s < kSlots; s++) {
    if (g_slots[s].inner == &k) return g_slots[s].wrapped;
    if (&g_slots[s].wrapped == &k) return k;  // already wrapped
  }
  for (int s = 0; s < kSlots; s++) {
    if (g_slots[s].inner) continue;
    g_slots[s].sync = sync_for(k.name);
    g_slots[s].wrapped = make_table(s, k);
    g_slots[s].inner = &k;
    return g_slots[s].wrapped;
  }
  return k;  // more backends than slots: unprofiled rather than wrong
}

void set_device_sync(const char* backend_name, void (*sync)()) {
  std::lock_guard<std::mutex> lk(g_mu);
  pending_syncs().push_back({backend_name, sync});
  for (auto& s : g_slots)
    if (s.inner && std::strcmp(s.inner->name, backend_name) == 0) s.sync = sync;
}

}  // namespace farm::prof
