#include "decode_kernels.h"
#include <immintrin.h>
#include <cstdlib>
#include <cstring>
#include <string>
#include "cpu/vecmath.h"
#include <algorithm>
#include <cmath>
#include <vector>

namespace farm::decode {
namespace {

// Micro-tiles of 4 rows of x by 3 rows of W: 12 accumulators + 3 W + 1 x = 16 ymm registers. (An AVX-512
// 8x3 tile measured slower on Zen 4, which splits 512-bit operations in two.)
constexpr int MR = 4;
constexpr int NR = 3;

using MicroFn = void (*)(const float* x, int ldx, const float* W, int ldw, int K, float* out, int ldo, bool acc);

// ---- portable ----
template <int mr, int nr>
void micro_portable(const float* x, int ldx, const float* W, int ldw, int K, float* out, int ldo, bool acc) {
  for (int i = 0; i < mr; i++)
    for (int j = 0; j < nr; j++) {
      const float* a = x + (size_t)i * ldx;
      const float* b = W + (size_t)j * ldw;
      float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      int k = 0;
      for (; k + 8 <= K; k += 8)
        for (int l = 0; l < 8; l++) s[l] += a[k + l] * b[k + l];
      for (; k < K; k++) s[k & 7] += a[k] * b[k];
      float t = ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
      float* o = out + (size_t)i * ldo + j;
      *o = acc ? *o + t : t;
    }
}
float dot_portable(const float* a, const float* b, int n) {
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int i = 0;
  for (; i + 4 <= n; i += 4) { s0 += a[i] * b[i]; s1 += a[i + 1] * b[i + 1]; s2 += a[i + 2] * b[i + 2]; s3 += a[i + 3] * b[i + 3]; }
  for (; i < n; i++) s0 += a[i] * b[i];
  return (s0 + s1) + (s2 + s3);
}
void axpy_portable(float* y, float a, const float* x, int n) {
  for (int i = 0; i < n; i++) y[i] += a * x[i];
}

void scores_portable(const float* q, const float* K, int ld, int n, int HD, float scale, float* s) {
  for (int j = 0; j < n; j++) s[j] = dot_portable(q, K + (size_t)j * ld, HD) * scale;
}
void weighted_sum_portable(const float* p, const KVSegment* segs, int nseg, int ld, int HD, float* out) {
  std::memset(out, 0, sizeof(float) * HD);
  for (int g = 0; g < nseg; g++, p += segs[g - 1].n)
    for (int j = 0; j < segs[g].n; j++) axpy_portable(out, p[j], segs[g].V + (size_t)j * ld, HD);
}

// ---- AVX2 + FMA ----
alignas(32) const int32_t kMaskTable[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

__attribute__((target("avx2,fma"))) inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

template <int mr, int nr>
__attribute__((target("avx2,fma"))) void micro_avx2(const float* x, int ldx, const float* W, int ldw, int K, float* out,
                                                    int ldo, bool acc) {
  __m256 c[mr][nr];
  for (int i = 0; i < mr; i++)
    for (int j = 0; j < nr; j++) c[i][j] = _mm256_setzero_ps();
  int k = 0;
  for (; k + 8 <= K; k += 8) {
    __m256 w[nr];
    // Weights stream from memory once per step: fetch the next block's rows while this one computes.
    if ((k & 15) == 0)
      for (int j = 0; j < nr; j++) _mm_prefetch((const char*)(W + (size_t)(nr + j) * ldw + k), _MM_HINT_T0);
    for (int j = 0; j < nr; j++) w[j] = _mm256_loadu_ps(W + (size_t)j * ldw + k);
    for (int i = 0; i < mr; i++) {
      __m256 xv = _mm256_loadu_ps(x + (size_t)i * ldx + k);
      for (int j = 0; j < nr; j++) c[i][j] = _mm256_fmadd_ps(xv, w[j], c[i][j]);
    }
  }
  if (k < K) {
    __m256i m = _mm256_loadu_si256((const __m256i*)(kMaskTable + 8 - (K - k)));
    __m256 w[nr];
    for (int j = 0; j < nr; j++) w[j] = _mm256_maskload_ps(W + (size_t)j * ldw + k, m);
    for (int i = 0; i < mr; i++) {
      __m256 xv = _mm256_maskload_ps(x + (size_t)i * ldx + k, m);
      for (int j = 0; j < nr; j++) c[i][j] = _mm256_fmadd_ps(xv, w[j], c[i][j]);
    }
  }
  for (int i = 0; i < mr; i++)
    for (int j = 0; j < nr; j++) {
      float t = hsum(c[i][j]);
      float* o = out + (size_t)i * ldo + j;
      *o = acc ? *o + t : t;
    }
}
__attribute__((target("avx2,fma"))) void axpy_avx2(float* y, float a, const float* x, int n) {
  __m256 va = _mm256_set1_ps(a);
  int i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  for (; i < n; i++) y[i] += a * x[i];
}

// Four keys at a time, reduced together with horizontal adds. A last group of fewer keys repeats its
// last key, so every score comes out of the same instruction sequence wherever its key falls.
__attribute__((target("avx2,fma"))) void scores_avx2(const float* q, const float* K, int ld, int n, int HD, float scale,
                                                     float* s) {
  if (HD % 8) { scores_portable(q, K, ld, n, HD, scale, s); return; }
  const __m128 vs = _mm_set1_ps(scale);
  for (int j = 0; j < n; j += 4) {
    const float* k0 = K + (size_t)j * ld;
    const float* k1 = K + (size_t)std::min(j + 1, n - 1) * ld;
    const float* k2 = K + (size_t)std::min(j + 2, n - 1) * ld;
    const float* k3 = K + (size_t)std::min(j + 3, n - 1) * ld;
    // The cache rows come from memory (the weights streamed since evicted them): fetch ahead.
    if (j + 8 < n)
      for (int r = 0; r < 4; r++)
        for (int d = 0; d < HD; d += 16) _mm_prefetch((const char*)(k0 + (size_t)(8 + r) * ld + d), _MM_HINT_T0);
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int d = 0; d < HD; d += 8) {
      __m256 qv = _mm256_loadu_ps(q + d);
      a0 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k0 + d), a0);
      a1 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k1 + d), a1);
      a2 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k2 + d), a2);
      a3 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k3 + d), a3);
    }
    __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
    __m128 r = _mm_mul_ps(_mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)), vs);
    if (j + 4 <= n) {
      _mm_storeu_ps(s + j, r);
    } else {
      alignas(16) float t[4];
      _mm_store_ps(t, r);
      for (int i = j; i < n; i++) s[i] = t[i - j];
    }
  }
}
// out[0:8*NV] = sum_j p[j] V_j over all segments in order, accumulators held in registers throughout.
template <int NV>
__attribute__((target("avx2,fma"))) void wsum_block(const float* p, const KVSegment* segs, int nseg, int ld, int d0,
                                                    float* out) {
  __m256 acc[NV];
  for (int v = 0; v < NV; v++) acc[v] = _mm256_setzero_ps();
  for (int g = 0; g < nseg; g++) {
    const float* V = segs[g].V + d0;
    for (int j = 0; j < segs[g].n; j++) {
      __m256 pj = _mm256_set1_ps(p[j]);
      const float* vr = V + (size_t)j * ld;
      for (int v = 0; v < NV; v += 2) _mm_prefetch((const char*)(vr + 8 * (size_t)ld + 8 * v), _MM_HINT_T0);
      for (int v = 0; v < NV; v++) acc[v] = _mm256_fmadd_ps(pj, _mm256_loadu_ps(vr + 8 * v), acc[v]);
    }
    p += segs[g].n;
  }
  for (int v = 0; v < NV; v++) _mm256_storeu_ps(out + d0 + 8 * v, acc[v]);
}
__attribute__((target("avx2,fma"))) void weighted_sum_avx2(const float* p, const KVSegment* segs, int nseg, int ld, int HD,
                                                           float* out) {
  if (HD % 8) { weighted_sum_portable(p, segs, nseg, ld, HD, out); return; }
  int d = 0;
  for (; d + 64 <= HD; d += 64) wsum_block<8>(p, segs, nseg, ld, d, out);
  for (; d + 32 <= HD; d += 32) wsum_block<4>(p, segs, nseg, ld, d, out);
  for (; d + 8 <= HD; d += 8) wsum_block<1>(p, segs, nseg, ld, d, out);
}

// exp on [-87, 88] (clamped): 2^n * e^r with |r| <= ln2/2, degree-6 polynomial, ~2 ulp.
__attribute__((target("avx2,fma"))) inline __m256 exp_avx2(__m256 x) {
  x = _mm256_max_ps(_mm256_min_ps(x, _mm256_set1_ps(88.0f)), _mm256_set1_ps(-87.0f));
  __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.f)));
  __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}
__attribute__((target("avx2,fma"))) void silu_mul_avx2(float* g, const float* u, int64_t n) {
  int64_t i = 0;
  const __m256 one = _mm256_set1_ps(1.f);
  for (; i + 8 <= n; i += 8) {
    __m256 x = _mm256_loadu_ps(g + i);
    __m256 sg = _mm256_div_ps(x, _mm256_add_ps(one, exp_avx2(_mm256_sub_ps(_mm256_setzero_ps(), x))));
    _mm256_storeu_ps(g + i, _mm256_mul_ps(sg, _mm256_loadu_ps(u + i)));
  }
  if (i < n) {  // the tail through the same vector code, so every element is computed alike
    alignas(32) float gb[8] = {0}, ub[8] = {0};
    for (int64_t j = i; j < n; j++) { gb[j - i] = g[j]; ub[j - i] = u[j]; }
    __m256 x = _mm256_load_ps(gb);
    __m256 sg = _mm256_div_ps(x, _mm256_add_ps(one, exp_avx2(_mm256_sub_ps(_mm256_setzero_ps(), x))));
    _mm256_store_ps(gb, _mm256_mul_ps(sg, _mm256_load_ps(ub)));
    for (int64_t j = i; j < n; j++) g[j] = gb[j - i];
  }
}
void silu_mul_portable(float* g, const float* u, int64_t n) {
  for (int64_t i = 0; i < n; i++) g[i] = g[i] / (1.f + std::exp(-g[i])) * u[i];
}

struct Impl {
  const char* name;
  MicroFn micro[MR][NR];
  float (*dot)(const float*, const float*, int);
  void (*axpy)(float*, float, const float*, int);
  void (*scores)(const float*, const float*, int, int, int, float, float*);
  void (*weighted_sum)(const float*, const KVSegment*, int, int, int, float*);
  void (*silu_mul)(float*, const float*, int64_t);
};

#define FARM_ROW(fn, m) {fn<m, 1>, fn<m, 2>, fn<m, 3>}
#define FARM_MICRO_TABLE(fn) {FARM_ROW(fn, 1), FARM_ROW(fn, 2), FARM_ROW(fn, 3), FARM_ROW(fn, 4)}

Impl pick() {
  __builtin_cpu_init();
  // FARM_DECODE_IMPL=portable forces the portable kernels (tests of the fallback, benchmarks).
  const char* force = std::getenv("FARM_DECODE_IMPL");
  const bool portable = force && std::string(force) == "portable";
  if (!portable && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    // the AVX2 dot is the CPU kernels' own (cpu/vecmath), the same instruction sequence
    return {"avx2", FARM_MICRO_TABLE(micro_avx2), cpu::vm().dot, axpy_avx2, scores_avx2, weighted_sum_avx2, silu_mul_avx2};
  return {"portable", FARM_MICRO_TABLE(micro_portable), dot_portable, axpy_portable, scores_portable,
          weighted_sum_portable, silu_mul_portable};
}
const Impl& impl() {
  static const Impl t = pick();
  return t;
}

}  // namespace

const char* impl_name() { return impl().name; }
float dot(const float* a, const float* b, int n) { return impl().dot(a, b, n); }
void axpy(float* y, float a, const float* x, int n) { impl().axpy(y, a, x, n); }
void silu_mul(float* g, const float* u, int64_t n) { impl().silu_mul(g, u, n); }

void attend(const float* q, const KVSegment* segs, int nseg, int ld, int HD, float scale, float* out, float* s) {
  const Impl& I = impl();
  const cpu::VecMath& M = cpu::vm();
  int n = 0;
  for (int g = 0; g < nseg; g++) {
    I.scores(q, segs[g].K, ld, segs[g].n, HD, scale, s + n);
    n += segs[g].n;
  }
  float mx = M.max(s, n);
  float inv = 1.f / M.exp_shift_sum(s, s, mx, n);
  for (int j = 0; j < n; j++) s[j] *= inv;
  I.weighted_sum(s, segs, nseg, ld, HD, out);
}

void linear(const float* x, int ldx, int M, int K, const LinearSeg* segs, int nseg, bool accumulate, Team* team) {
  const Impl& I = impl();
  // Blocks of NR output columns over all segments, split into contiguous ranges per thread.
  int64_t total = 0;
  int64_t starts[8];  // callers fuse at most a few matrices (q/k/v, gate/up)
  if (nseg > 8) {
    for (int s = 0; s < nseg; s += 8) linear(x, ldx, M, K, segs + s, std::min(8, nseg - s), accumulate, team);
    return;
  }
  for (int s = 0; s < nseg; s++) {
    starts[s] = total;
    total += (segs[s].N + NR - 1) / NR;
  }
  // Many rows (prefill): chunks of rows whose x stays in L2 (~256 KB) while this thread's weights pass by.
  const int MC = std::max(MR, (int)((65536 / std::max(K, 1)) / MR * MR));
  auto run = [&](int64_t b0, int64_t b1) {
    for (int mc = 0; mc < M; mc += MC) {
      const int mend = std::min(M, mc + MC);
      int s = 0;
      for (int64_t b = b0; b < b1; b++) {
        while (s + 1 < nseg && b >= starts[s + 1]) s++;
        const LinearSeg& g = segs[s];
        int n0 = (int)(b - starts[s]) * NR, nr = std::min(NR, g.N - n0);
        const float* W = g.W + (size_t)n0 * K;
        for (int m0 = mc; m0 < mend; m0 += MR) {
          int mr = std::min(MR, mend - m0);
          I.micro[mr - 1][nr - 1](x + (size_t)m0 * ldx, ldx, W, K, K, g.out + (size_t)m0 * g.ldo + n0, g.ldo, accumulate);
        }
      }
    }
  };
  // Small products stay on the calling thread (waking the team costs about a microsecond).
  const int64_t work = total * NR * (int64_t)M * K;
  if (team && team->size() > 1 && work >= (1 << 15)) {
    team->split(total, [&](int64_t b0, int64_t b1) { run(b0, b1); });
    return;
  }
  run(0, total);
}

}  // namespace farm::decode
