#include "vecmath.h"
#include <cmath>
#include <immintrin.h>

namespace farm::cpu {
namespace {

// ---- portable ----
float exp_shift_sum_portable(float* y, const float* x, float s, int n) {
  float acc = 0.f;
  for (int i = 0; i < n; i++) { float e = std::exp(x[i] - s); y[i] = e; acc += e; }
  return acc;
}
float exp_shift_sum_weighted_portable(const float* x, float s, int n, float* wsum) {
  float acc = 0.f, w = 0.f;
  for (int i = 0; i < n; i++) { float e = std::exp(x[i] - s); acc += e; w += e * x[i]; }
  *wsum = w;
  return acc;
}
// NaN propagates (a max that skips NaN turns NaN weights into finite, wrong softmaxes): once m is NaN,
// `x > m` is false and `x != x` is false for numbers, so m stays NaN.
float max_portable(const float* x, int n) {
  float m = -INFINITY;
  for (int i = 0; i < n; i++) m = (x[i] > m || x[i] != x[i]) ? x[i] : m;
  return m;
}
float dot_portable(const float* a, const float* b, int n) {
  float s0 = 0.f, s1 = 0.f, s2 = 0.f, s3 = 0.f;
  int i = 0;
  for (; i + 4 <= n; i += 4) { s0 += a[i] * b[i]; s1 += a[i + 1] * b[i + 1]; s2 += a[i + 2] * b[i + 2]; s3 += a[i + 3] * b[i + 3]; }
  for (; i < n; i++) s0 += a[i] * b[i];
  return (s0 + s1) + (s2 + s3);
}
float sumsq_portable(const float* x, int n) { return dot_portable(x, x, n); }
void silu_mul_portable(float* h, const float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; i++) h[i] = gate[i] / (1.f + std::exp(-gate[i])) * up[i];
}
void silu_mul_backward_portable(float* dgate, float* dup, const float* dh, const float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    float g = gate[i], sg = 1.f / (1.f + std::exp(-g));
    dup[i] = dh[i] * g * sg;
    dgate[i] = dh[i] * up[i] * sg * (1.f + g * (1.f - sg));
  }
}

// ---- AVX2 + FMA ----
// exp(x) for x <= 0 mostly (softmax); valid on [-87, 88], relative error ~2 ulp. NaN stays NaN: min/max_ps
// return their second operand when either is NaN, so x goes second.
__attribute__((target("avx2,fma"))) inline __m256 exp256(__m256 x) {
  const __m256 hi = _mm256_set1_ps(88.3762626647949f), lo = _mm256_set1_ps(-87.3365447505531f);
  x = _mm256_max_ps(lo, _mm256_min_ps(hi, x));
  __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500E-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507E-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073E-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894E-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459E-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201E-1f));
  __m256 r2 = _mm256_mul_ps(r, r);
  p = _mm256_fmadd_ps(p, r2, _mm256_add_ps(r, _mm256_set1_ps(1.f)));
  __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}
__attribute__((target("avx2,fma"))) inline float hsum256(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}
__attribute__((target("avx2,fma"))) float exp_shift_sum_avx2(float* y, const float* x, float s, int n) {
  __m256 vs = _mm256_set1_ps(s), acc = _mm256_setzero_ps();
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(x + i), vs));
    _mm256_storeu_ps(y + i, e);
    acc = _mm256_add_ps(acc, e);
  }
  float t = hsum256(acc);
  if (i < n) {
    alignas(32) float buf[8] = {0};
    for (int j = i; j < n; j++) buf[j - i] = x[j] - s;
    __m256 e = exp256(_mm256_load_ps(buf));
    alignas(32) float out[8];
    _mm256_store_ps(out, e);
    for (int j = i; j < n; j++) { y[j] = out[j - i]; t += out[j - i]; }
  }
  return t;
}
__attribute__((target("avx2,fma"))) float exp_shift_sum_weighted_avx2(const float* x, float s, int n, float* wsum) {
  __m256 vs = _mm256_set1_ps(s), acc = _mm256_setzero_ps(), wacc = _mm256_setzero_ps();
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 xv = _mm256_loadu_ps(x + i);
    __m256 e = exp256(_mm256_sub_ps(xv, vs));
    acc = _mm256_add_ps(acc, e);
    wacc = _mm256_fmadd_ps(e, xv, wacc);
  }
  float t = hsum256(acc), w = hsum256(wacc);
  for (; i < n; i++) {
    alignas(32) float buf[8] = {x[i] - s, 0, 0, 0, 0, 0, 0, 0}, out[8];
    _mm256_store_ps(out, exp256(_mm256_load_ps(buf)));
    t += out[0];
    w += out[0] * x[i];
  }
  *wsum = w;
  return t;
}
// NaN anywhere gives NaN (max_ps alone drops a NaN whenever a number follows it in the same lane).
__attribute__((target("avx2,fma"))) float max_avx2(const float* x, int n) {
  __m256 m = _mm256_set1_ps(-INFINITY), nan = _mm256_setzero_ps();
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    m = _mm256_max_ps(m, v);
    nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
  }
  if (_mm256_movemask_ps(nan)) return NAN;
  alignas(32) float b[8];
  _mm256_store_ps(b, m);
  float r = b[0];
  for (int j = 1; j < 8; j++) r = b[j] > r ? b[j] : r;
  for (; i < n; i++) r = (x[i] > r || x[i] != x[i]) ? x[i] : r;
  return r;
}
__attribute__((target("avx2,fma"))) float dot_avx2(const float* a, const float* b, int n) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
  }
  for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
  float t = hsum256(_mm256_add_ps(s0, s1));
  for (; i < n; i++) t += a[i] * b[i];
  return t;
}
__attribute__((target("avx2,fma"))) float sumsq_avx2(const float* x, int n) { return dot_avx2(x, x, n); }
// sigmoid(g) = 1 / (1 + exp(-g)); exp256 clamps, so very negative g gives 0 and very positive 1.
__attribute__((target("avx2,fma"))) inline __m256 sigmoid256(__m256 g) {
  return _mm256_div_ps(_mm256_set1_ps(1.f), _mm256_add_ps(_mm256_set1_ps(1.f), exp256(_mm256_sub_ps(_mm256_setzero_ps(), g))));
}
__attribute__((target("avx2,fma"))) void silu_mul_avx2(float* h, const float* gate, const float* up, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 g = _mm256_loadu_ps(gate + i);
    _mm256_storeu_ps(h + i, _mm256_mul_ps(_mm256_mul_ps(g, sigmoid256(g)), _mm256_loadu_ps(up + i)));
  }
  silu_mul_portable(h + i, gate + i, up + i, n - i);
}
__attribute__((target("avx2,fma"))) void silu_mul_backward_avx2(float* dgate, float* dup, const float* dh, const float* gate,
                                                               const float* up, int64_t n) {
  const __m256 one = _mm256_set1_ps(1.f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 g = _mm256_loadu_ps(gate + i), d = _mm256_loadu_ps(dh + i), sg = sigmoid256(g);
    _mm256_storeu_ps(dup + i, _mm256_mul_ps(d, _mm256_mul_ps(g, sg)));
    __m256 t = _mm256_fmadd_ps(g, _mm256_sub_ps(one, sg), one);
    _mm256_storeu_ps(dgate + i, _mm256_mul_ps(_mm256_mul_ps(d, _mm256_loadu_ps(up + i)), _mm256_mul_ps(sg, t)));
  }
  silu_mul_backward_portable(dgate + i, dup + i, dh + i, gate + i, up + i, n - i);
}

VecMath pick() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    return {exp_shift_sum_avx2, exp_shift_sum_weighted_avx2, max_avx2, dot_avx2, sumsq_avx2, silu_mul_avx2, silu_mul_backward_avx2};
  return {exp_shift_sum_portable, exp_shift_sum_weighted_portable, max_portable, dot_portable, sumsq_portable, silu_mul_portable,
          silu_mul_backward_portable};
}
}  // namespace

const VecMath& vm() {
  static const VecMath table = pick();
  return table;
}

}  // namespace farm::cpu
