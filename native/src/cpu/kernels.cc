// CPU kernels of the transformer (fp32). Parallel loops split work so that each output element is
// computed by exactly one thread in a fixed order: results do not depend on the thread count.
#include "farm/kernels.h"
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>
#include "farm/common.h"
#include "farm/gemm.h"
#include "vecmath.h"

namespace farm::cpu {
namespace {

// Below this many elements a kernel stays on the calling thread: a parallel region costs microseconds on an
// idle machine, and a scheduler time slice (milliseconds) when another process holds the other core. The
// split of the work never changes a result, so neither does this.
constexpr int64_t kParallelMin = 1 << 15;

void embedding_forward(float* out, const int32_t* tokens, const float* wte, int BT, int C) {
#pragma omp parallel for schedule(static) if ((int64_t)BT * C >= kParallelMin)
  for (int i = 0; i < BT; i++) std::memcpy(out + (size_t)i * C, wte + (size_t)tokens[i] * C, sizeof(float) * C);
}

void embedding_backward(float* dwte, const float* dout, const int32_t* tokens, int BT, int C) {
  // Column blocks in parallel, rows in order: deterministic for any thread count.
  const int CB = 16;
  int nblk = (C + CB - 1) / CB;
#pragma omp parallel for schedule(static) if ((int64_t)BT * C >= kParallelMin)
  for (int b = 0; b < nblk; b++) {
    int c0 = b * CB, c1 = std::min(C, c0 + CB);
    for (int i = 0; i < BT; i++) {
      float* d = dwte + (size_t)tokens[i] * C;
      const float* s = dout + (size_t)i * C;
      for (int c = c0; c < c1; c++) d[c] += s[c];
    }
  }
}

void rmsnorm_forward(float* out, float* rstd, const float* x, const float* w, int BT, int C, float eps) {
  const VecMath& V = vm();
#pragma omp parallel for schedule(static) if ((int64_t)BT * C >= kParallelMin)
  for (int i = 0; i < BT; i++) {
    const float* xi = x + (size_t)i * C;
    float* oi = out + (size_t)i * C;
    float r = 1.0f / std::sqrt(V.sumsq(xi, C) / C + eps);
    rstd[i] = r;
#pragma omp simd
    for (int c = 0; c < C; c++) oi[c] = (xi[c] * r) * w[c];
  }
}

void rmsnorm_backward(float* dx, float* dw, const float* dout, const float* x, const float* w, const float* rstd,
                      int BT, int C, bool accumulate) {
  const VecMath& V = vm();
#pragma omp parallel if ((int64_t)BT * C >= kParallelMin)
  {
    std::vector<float> gw(C);
#pragma omp for schedule(static)
    for (int i = 0; i < BT; i++) {
      const float* xi = x + (size_t)i * C;
      const float* di = dout + (size_t)i * C;
      float* dxi = dx + (size_t)i * C;
      float r = rstd[i];
      for (int c = 0; c < C; c++) gw[c] = di[c] * w[c];
      float proj = V.dot(gw.data(), xi, C) * (r * r * r) / C;
      if (accumulate) {
#pragma omp simd
        for (int c = 0; c < C; c++) dxi[c] += gw[c] * r - xi[c] * proj;
      } else {
#pragma omp simd
        for (int c = 0; c < C; c++) dxi[c] = gw[c] * r - xi[c] * proj;
      }
    }
    // dweight[c] += sum_i dout[i,c] * x[i,c] * rstd[i]: column blocks, rows in order.
    const int CB = 16;
    int nblk = (C + CB - 1) / CB;
#pragma omp for schedule(static)
    for (int b = 0; b < nblk; b++) {
      int c0 = b * CB, c1 = std::min(C, c0 + CB);
      float acc[CB] = {0};
      for (int i = 0; i < BT; i++) {
        const float* xi = x + (size_t)i * C;
        const float* di = dout + (size_t)i * C;
        float r = rstd[i];
        for (int c = c0; c < c1; c++) acc[c - c0] += di[c] * xi[c] * r;
      }
      for (int c = c0; c < c1; c++) dw[c] += acc[c - c0];
    }
  }
}

void rope(float* x, const float* cosv, const float* sinv, int B, int T, int H, int HD, bool inverse) {
  const int half = HD / 2;
  const float sgn = inverse ? -1.f : 1.f;
#pragma omp parallel for schedule(static) if ((int64_t)B * T * H * HD >= kParallelMin)
  for (int bt = 0; bt < B * T; bt++) {
    int t = bt % T;
    const float* cs = cosv + (size_t)t * half;
    const float* sn = sinv + (size_t)t * half;
    for (int h = 0; h < H; h++) {
      float* v = x + ((size_t)bt * H + h) * HD;
#pragma omp simd
      for (int i = 0; i < half; i++) {
        float a = v[i], b = v[i + half], c = cs[i], s = sgn * sn[i];
        v[i] = a * c - b * s;
        v[i + half] = b * c + a * s;
      }
    }
  }
}

// Row blocks of the causal attention: rows [r0, r1) attend to columns [0, r1).
constexpr int ATT_BLOCK = 64;

void attention_forward(float* out, float* att, const float* q, const float* k, const float* v, int B, int T, int NH,
                       int NKV, int HD) {
  const VecMath& V = vm();
  const int group = NH / NKV, ldq = NH * HD, ldk = NKV * HD;
  const float scale = 1.0f / std::sqrt((float)HD);
#pragma omp parallel for schedule(static) if ((int64_t)B * NH * T * T >= kParallelMin)
  for (int bh = 0; bh < B * NH; bh++) {
    int b = bh / NH, h = bh % NH, kvh = h / group;
    const float* Q = q + (size_t)b * T * ldq + h * HD;
    const float* K = k + (size_t)b * T * ldk + kvh * HD;
    const float* Vv = v + (size_t)b * T * ldk + kvh * HD;
    float* P = att + (size_t)bh * T * T;
    float* O = out + (size_t)b * T * ldq + h * HD;
    for (int r0 = 0; r0 < T; r0 += ATT_BLOCK) {
      int r1 = std::min(T, r0 + ATT_BLOCK);
      sgemm(false, true, r1 - r0, r1, HD, Q + (size_t)r0 * ldq, ldq, K, ldk, 0.f, P + (size_t)r0 * T, T);
      for (int t = r0; t < r1; t++) {
        float* row = P + (size_t)t * T;
        for (int j = 0; j <= t; j++) row[j] *= scale;
        float m = V.max(row, t + 1);
        float s = V.exp_shift_sum(row, row, m, t + 1);
        float inv = 1.f / s;
        for (int j = 0; j <= t; j++) row[j] *= inv;
        std::memset(row + t + 1, 0, sizeof(float) * (T - t - 1));
      }
      sgemm(false, false, r1 - r0, HD, r1, P + (size_t)r0 * T, T, Vv, ldk, 0.f, O + (size_t)r0 * ldq, ldq);
    }
  }
}

void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* att, const float* q,
                        const float* k, const float* v, int B, int T, int NH, int NKV, int HD) {
  const VecMath& V = vm();
  const int group = NH / NKV, ldq = NH * HD, ldk = NKV * HD;
  const float scale = 1.0f / std::sqrt((float)HD);
#pragma omp parallel if ((int64_t)B * NH * T * T >= kParallelMin)
  {
    static thread_local std::vector<float> dS;
    if (dS.size() < (size_t)T * T) dS.resize((size_t)T * T);
#pragma omp for schedule(static)
    for (int bk = 0; bk < B * NKV; bk++) {
      int b = bk / NKV, kvh = bk % NKV;
      const float* K = k + (size_t)b * T * ldk + kvh * HD;
      const float* Vv = v + (size_t)b * T * ldk + kvh * HD;
      float* dK = dk + (size_t)b * T * ldk + kvh * HD;
      float* dV = dv + (size_t)b * T * ldk + kvh * HD;
      for (int g = 0; g < group; g++) {
        int h = kvh * group + g;
        const float* Q = q + (size_t)b * T * ldq + h * HD;
        const float* dO = dout + (size_t)b * T * ldq + h * HD;
        const float* P = att + ((size_t)b * NH + h) * T * T;
        float* dQ = dq + (size_t)b * T * ldq + h * HD;
        float beta = g == 0 ? 0.f : 1.f;
        // dV[j] (+)= sum_{t >= j} P[t,j] dO[t]: column blocks of P.
        for (int c0 = 0; c0 < T; c0 += ATT_BLOCK) {
          int c1 = std::min(T, c0 + ATT_BLOCK);
          sgemm(true, false, c1 - c0, HD, T - c0, P + (size_t)c0 * T + c0, T, dO + (size_t)c0 * ldq, ldq, beta,
                dV + (size_t)c0 * ldk, ldk);
        }
        // dP = dO V^T on the causal part, then dS = P * (dP - rowsum(dP * P)) * scale.
        for (int r0 = 0; r0 < T; r0 += ATT_BLOCK) {
          int r1 = std::min(T, r0 + ATT_BLOCK);
          sgemm(false, true, r1 - r0, r1, HD, dO + (size_t)r0 * ldq, ldq, Vv, ldk, 0.f, dS.data() + (size_t)r0 * T, T);
          for (int t = r0; t < r1; t++) {
            float* ds = dS.data() + (size_t)t * T;
            const float* p = P + (size_t)t * T;
            float dot = V.dot(ds, p, t + 1);
            for (int j = 0; j <= t; j++) ds[j] = p[j] * (ds[j] - dot) * scale;
            std::memset(ds + t + 1, 0, sizeof(float) * (r1 - t - 1));
          }
          // dQ[rows] = dS[rows, :r1] K[:r1]
          sgemm(false, false, r1 - r0, HD, r1, dS.data() + (size_t)r0 * T, T, K, ldk, 0.f, dQ + (size_t)r0 * ldq, ldq);
        }
        // dK[j] (+)= sum_{t >= j} dS[t,j] Q[t]
        for (int c0 = 0; c0 < T; c0 += ATT_BLOCK) {
          int c1 = std::min(T, c0 + ATT_BLOCK);
          // Rows t >= c0 lie in row blocks ending at or after c1, so dS[t, c0:c1) was written above.
          sgemm(true, false, c1 - c0, HD, T - c0, dS.data() + (size_t)c0 * T + c0, T, Q + (size_t)c0 * ldq, ldq, beta,
                dK + (size_t)c0 * ldk, ldk);
        }
      }
    }
  }
}

// Elementwise: chunks of a fixed size (not per-thread shares), so results never depend on the thread count.
constexpr int64_t kElemChunk = 16384;
void swiglu_forward(float* h, const float* gate, const float* up, int64_t n) {
  const VecMath& M = vm();
#pragma omp parallel for schedule(static) if (n > kElemChunk)
  for (int64_t c = 0; c < n; c += kElemChunk) M.silu_mul(h + c, gate + c, up + c, std::min(kElemChunk, n - c));
}

void swiglu_backward(float* dgate, float* dup, const float* dh, const float* gate, const float* up, int64_t n) {
  const VecMath& M = vm();
#pragma omp parallel for schedule(static) if (n > kElemChunk)
  for (int64_t c = 0; c < n; c += kElemChunk)
    M.silu_mul_backward(dgate + c, dup + c, dh + c, gate + c, up + c, std::min(kElemChunk, n - c));
}

void logsoftmax_forward(float* logp, float* entropy, float* lse, const float* logits, const int32_t* targets, int BT,
                        int V) {
  const VecMath& M = vm();
#pragma omp parallel for schedule(static) if ((int64_t)BT * V >= kParallelMin)
  for (int i = 0; i < BT; i++) {
    const float* z = logits + (size_t)i * V;
    float m = M.max(z, V);
    float l, s;
    float w;
    s = M.exp_shift_sum_weighted(z, m, V, &w);
    l = m + std::log(s);
    if (entropy) entropy[i] = l - w / s;
    lse[i] = l;
    int t = targets ? targets[i] : -1;
    logp[i] = t >= 0 ? z[t] - l : 0.f;
  }
}

void logsoftmax_backward(float* z_to_dz, const float* dlogp, const float* dentropy, const float* lse,
                         const float* entropy, const int32_t* targets, int BT, int V) {
  const VecMath& M = vm();
#pragma omp parallel for schedule(static) if ((int64_t)BT * V >= kParallelMin)
  for (int i = 0; i < BT; i++) {
    float* z = z_to_dz + (size_t)i * V;
    float gl = dlogp ? dlogp[i] : 0.f, ge = dentropy ? dentropy[i] : 0.f;
    int t = targets ? targets[i] : -1;
    if (t < 0) gl = 0.f;
    if (gl == 0.f && ge == 0.f) { std::memset(z, 0, sizeof(float) * V); continue; }
    float l = lse[i];
    if (ge == 0.f) {
      // dz = gl * (onehot - p)
      M.exp_shift_sum(z, z, l, V);
#pragma omp simd
      for (int v = 0; v < V; v++) z[v] = -gl * z[v];
    } else {
      // dH/dz_v = -p_v (log p_v + H); dz = gl (onehot - p) + ge dH/dz
      float H = entropy[i];
      for (int v = 0; v < V; v++) {
        float lp = z[v] - l, p = std::exp(lp);
        z[v] = -gl * p - ge * p * (lp + H);
      }
    }
    if (t >= 0) z[t] += gl;
  }
}

}  // namespace

const Kernels& cpu_kernels_impl() {
  static const Kernels k = {"cpu",           sgemm,          embedding_forward, embedding_backward,
                            rmsnorm_forward, rmsnorm_backward, rope,            attention_forward,
                            attention_backward, swiglu_forward, swiglu_backward, logsoftmax_forward,
                            logsoftmax_backward};
  return k;
}

}  // namespace farm::cpu

namespace farm {
const Kernels& cpu_kernels() { return cpu::cpu_kernels_impl(); }
}  // namespace farm
