#include "decode_kernels.h"
#include <immintrin.h>
#include <cstdlib>
#include <cstring>
#include <string>
#include <algorithm>
#include <cmath>
#include <vector>
#include "cpu/vecmath.h"
#include "farm/common.h"
#include "farm/profile.h"

namespace farm::decode {
namespace {

// ---- packed linear micro-kernels: a tile of mr rows x P columns over all of K, one FMA chain per output ----
// TileFn(x, ldx, panel, K, out, ldo, acc): out[m, 0:P] = (acc ? out : 0) + sum_k x[m, k] * panel[k][0:P].
using TileFn = void (*)(const float* x, int ldx, const void* panel, int K, float* out, int ldo, bool acc);

inline float bf16_to_f32(uint16_t h) {
  uint32_t u = (uint32_t)h << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline uint16_t f32_to_bf16(float f) {  // round to nearest even; NaN stays NaN (branchless: vectorizes)
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16, quiet = (u >> 16) | 0x40u;
  return (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? quiet : rounded);
}

// ---- portable: P = 8 ----
template <int mr, bool bf16>
void tile_portable(const float* x, int ldx, const void* panel, int K, float* out, int ldo, bool acc) {
  float c[mr][8] = {};
  for (int k = 0; k < K; k++) {
    float w[8];
    if (bf16)
      for (int j = 0; j < 8; j++) w[j] = bf16_to_f32(static_cast<const uint16_t*>(panel)[(size_t)k * 8 + j]);
    else
      for (int j = 0; j < 8; j++) w[j] = static_cast<const float*>(panel)[(size_t)k * 8 + j];
    for (int m = 0; m < mr; m++) {
      const float xv = x[(size_t)m * ldx + k];
      for (int j = 0; j < 8; j++) c[m][j] += xv * w[j];
    }
  }
  for (int m = 0; m < mr; m++)
    for (int j = 0; j < 8; j++) out[(size_t)m * ldo + j] = acc ? out[(size_t)m * ldo + j] + c[m][j] : c[m][j];
}

// ---- AVX2 + FMA: P = 8, up to 8 rows (8 chains hide the FMA latency on two units) ----
template <int mr, bool bf16>
__attribute__((target("avx2,fma"))) void tile_avx2(const float* x, int ldx, const void* panel, int K, float* out, int ldo,
                                                   bool acc) {
  __m256 c[mr];
  for (int m = 0; m < mr; m++) c[m] = _mm256_setzero_ps();
  const char* pb = static_cast<const char*>(panel);
  const int kb = bf16 ? 16 : 32;  // bytes of one k
  for (int k = 0; k < K; k++) {
    if ((k & 3) == 0) _mm_prefetch(pb + (size_t)(k + 64) * kb, _MM_HINT_T0);
    __m256 w;
    if (bf16)
      w = _mm256_castsi256_ps(_mm256_slli_epi32(
          _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i*)(pb + (size_t)k * 16))), 16));
    else
      w = _mm256_loadu_ps((const float*)(pb + (size_t)k * 32));
    for (int m = 0; m < mr; m++) c[m] = _mm256_fmadd_ps(_mm256_set1_ps(x[(size_t)m * ldx + k]), w, c[m]);
  }
  for (int m = 0; m < mr; m++) {
    float* o = out + (size_t)m * ldo;
    _mm256_storeu_ps(o, acc ? _mm256_add_ps(c[m], _mm256_loadu_ps(o)) : c[m]);
  }
}

// ---- AVX-512: P = 32 (two registers a row), up to 8 rows: 16 chains. BF16 panels interleave columns j and
// 16 + j in each 32-bit lane, so one load widens to two registers with a shift and a mask. ----
template <int mr, bool bf16>
__attribute__((target("avx512f"))) void tile_avx512(const float* x, int ldx, const void* panel, int K, float* out,
                                                    int ldo, bool acc) {
  __m512 c0[mr], c1[mr];
  for (int m = 0; m < mr; m++) c0[m] = c1[m] = _mm512_setzero_ps();
  const char* pb = static_cast<const char*>(panel);
  const int kb = bf16 ? 64 : 128;
  const __m512i hi_mask = _mm512_set1_epi32((int)0xffff0000u);
  for (int k = 0; k < K; k++) {
    // 32 k ahead (2-4 KiB): measured best on panels streamed from L3 (farm-bench linear 8 16384 256).
    _mm_prefetch(pb + (size_t)(k + 32) * kb, _MM_HINT_T0);
    __m512 w0, w1;
    if (bf16) {
      __m512i v = _mm512_loadu_si512((const void*)(pb + (size_t)k * 64));
      w0 = _mm512_castsi512_ps(_mm512_maskz_slli_epi32(0xffff, v, 16));  // maskz: GCC 12 warns on the plain form
      w1 = _mm512_castsi512_ps(_mm512_and_si512(v, hi_mask));
    } else {
      if (kb == 128) _mm_prefetch(pb + (size_t)(k + 32) * kb + 64, _MM_HINT_T0);
      w0 = _mm512_loadu_ps((const float*)(pb + (size_t)k * 128));
      w1 = _mm512_loadu_ps((const float*)(pb + (size_t)k * 128 + 64));
    }
    for (int m = 0; m < mr; m++) {
      const __m512 xv = _mm512_set1_ps(x[(size_t)m * ldx + k]);
      c0[m] = _mm512_fmadd_ps(xv, w0, c0[m]);
      c1[m] = _mm512_fmadd_ps(xv, w1, c1[m]);
    }
  }
  for (int m = 0; m < mr; m++) {
    float* o = out + (size_t)m * ldo;
    if (acc) {
      c0[m] = _mm512_add_ps(c0[m], _mm512_loadu_ps(o));
      c1[m] = _mm512_add_ps(c1[m], _mm512_loadu_ps(o + 16));
    }
    _mm512_storeu_ps(o, c0[m]);
    _mm512_storeu_ps(o + 16, c1[m]);
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

// Cache elements: fp32, or bf16 (uint16_t) widened exactly.
inline float elem(const float* p, size_t i) { return p[i]; }
inline float elem(const uint16_t* p, size_t i) { return bf16_to_f32(p[i]); }

template <class T>
float dot_elems(const float* a, const T* b, int n) {  // dot_portable's order
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += a[i] * elem(b, i); s1 += a[i + 1] * elem(b, i + 1); s2 += a[i + 2] * elem(b, i + 2); s3 += a[i + 3] * elem(b, i + 3);
  }
  for (; i < n; i++) s0 += a[i] * elem(b, i);
  return (s0 + s1) + (s2 + s3);
}
template <class T>
void scores_portable(const float* q, const void* Kv, int ld, int n, int HD, float scale, float* s) {
  const T* K = static_cast<const T*>(Kv);
  for (int j = 0; j < n; j++) s[j] = dot_elems(q, K + (size_t)j * ld, HD) * scale;
}
template <class T>
void weighted_sum_portable(const float* p, const KVSegment* segs, int nseg, int ld, int HD, float* out) {
  std::memset(out, 0, sizeof(float) * HD);
  for (int g = 0; g < nseg; g++, p += segs[g - 1].n)
    for (int j = 0; j < segs[g].n; j++) {
      const T* v = static_cast<const T*>(segs[g].V) + (size_t)j * ld;
      for (int d = 0; d < HD; d++) out[d] += p[j] * elem(v, d);
    }
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

// Eight cache elements as fp32 (bf16 widens exactly: the bits go to the high half).
__attribute__((target("avx2,fma"))) inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
__attribute__((target("avx2,fma"))) inline __m256 load8(const uint16_t* p) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i*)p)), 16));
}

// Four keys at a time, reduced together with horizontal adds. A last group of fewer keys repeats its
// last key, so every score comes out of the same instruction sequence wherever its key falls.
template <class T>
__attribute__((target("avx2,fma"))) void scores_avx2(const float* q, const void* Kv, int ld, int n, int HD, float scale,
                                                     float* s) {
  if (HD % 8) { scores_portable<T>(q, Kv, ld, n, HD, scale, s); return; }
  const T* K = static_cast<const T*>(Kv);
  const __m128 vs = _mm_set1_ps(scale);
  for (int j = 0; j < n; j += 4) {
    const T* k0 = K + (size_t)j * ld;
    const T* k1 = K + (size_t)std::min(j + 1, n - 1) * ld;
    const T* k2 = K + (size_t)std::min(j + 2, n - 1) * ld;
    const T* k3 = K + (size_t)std::min(j + 3, n - 1) * ld;
    // The cache rows come from memory (the weights streamed since evicted them): fetch ahead.
    if (j + 8 < n)
      for (int r = 0; r < 4; r++)
        for (int d = 0; d < HD; d += 64 / (int)sizeof(T)) _mm_prefetch((const char*)(k0 + (size_t)(8 + r) * ld + d), _MM_HINT_T0);
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int d = 0; d < HD; d += 8) {
      __m256 qv = _mm256_loadu_ps(q + d);
      a0 = _mm256_fmadd_ps(qv, load8(k0 + d), a0);
      a1 = _mm256_fmadd_ps(qv, load8(k1 + d), a1);
      a2 = _mm256_fmadd_ps(qv, load8(k2 + d), a2);
      a3 = _mm256_fmadd_ps(qv, load8(k3 + d), a3);
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
template <int NV, class T>
__attribute__((target("avx2,fma"))) void wsum_block(const float* p, const KVSegment* segs, int nseg, int ld, int d0,
                                                    float* out) {
  __m256 acc[NV];
  for (int v = 0; v < NV; v++) acc[v] = _mm256_setzero_ps();
  for (int g = 0; g < nseg; g++) {
    const T* V = static_cast<const T*>(segs[g].V) + d0;
    for (int j = 0; j < segs[g].n; j++) {
      __m256 pj = _mm256_set1_ps(p[j]);
      const T* vr = V + (size_t)j * ld;
      for (int v = 0; v < NV; v += 16 / (int)sizeof(T)) _mm_prefetch((const char*)(vr + 8 * (size_t)ld + 8 * v), _MM_HINT_T0);
      for (int v = 0; v < NV; v++) acc[v] = _mm256_fmadd_ps(pj, load8(vr + 8 * v), acc[v]);
    }
    p += segs[g].n;
  }
  for (int v = 0; v < NV; v++) _mm256_storeu_ps(out + d0 + 8 * v, acc[v]);
}
template <class T>
__attribute__((target("avx2,fma"))) void weighted_sum_avx2(const float* p, const KVSegment* segs, int nseg, int ld, int HD,
                                                           float* out) {
  if (HD % 8) { weighted_sum_portable<T>(p, segs, nseg, ld, HD, out); return; }
  int d = 0;
  for (; d + 64 <= HD; d += 64) wsum_block<8, T>(p, segs, nseg, ld, d, out);
  for (; d + 32 <= HD; d += 32) wsum_block<4, T>(p, segs, nseg, ld, d, out);
  for (; d + 8 <= HD; d += 8) wsum_block<1, T>(p, segs, nseg, ld, d, out);
}

// ---- AVX-512 attention (head_dim a multiple of 16): half the instructions of the AVX2 loops, which bound
// the attention of a decode step (the cache's bytes are few enough to stream faster) ----
// GCC 12's AVX-512 headers build some casts and extracts from _mm*_undefined(): spurious warnings.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
__attribute__((target("avx512f"))) inline __m512 load16(const float* p) { return _mm512_loadu_ps(p); }
__attribute__((target("avx512f"))) inline __m512 load16(const uint16_t* p) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i*)p)), 16));
}
__attribute__((target("avx512f"))) inline __m256 fold512(__m512 v) {  // 16 lanes -> 8 (lane i + lane i + 8)
  return _mm256_add_ps(_mm512_castps512_ps256(v), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
}
template <class T>
__attribute__((target("avx512f,avx2,fma"))) void scores_avx512(const float* q, const void* Kv, int ld, int n, int HD,
                                                               float scale, float* s) {
  if (HD % 16) { scores_avx2<T>(q, Kv, ld, n, HD, scale, s); return; }
  const T* K = static_cast<const T*>(Kv);
  const __m128 vs = _mm_set1_ps(scale);
  for (int j = 0; j < n; j += 4) {  // as scores_avx2: a last short group repeats its last key
    const T* k0 = K + (size_t)j * ld;
    const T* k1 = K + (size_t)std::min(j + 1, n - 1) * ld;
    const T* k2 = K + (size_t)std::min(j + 2, n - 1) * ld;
    const T* k3 = K + (size_t)std::min(j + 3, n - 1) * ld;
    if (j + 8 < n)
      for (int r = 0; r < 4; r++)
        for (int d = 0; d < HD; d += 64 / (int)sizeof(T)) _mm_prefetch((const char*)(k0 + (size_t)(8 + r) * ld + d), _MM_HINT_T0);
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int d = 0; d < HD; d += 16) {
      const __m512 qv = _mm512_loadu_ps(q + d);
      a0 = _mm512_fmadd_ps(qv, load16(k0 + d), a0);
      a1 = _mm512_fmadd_ps(qv, load16(k1 + d), a1);
      a2 = _mm512_fmadd_ps(qv, load16(k2 + d), a2);
      a3 = _mm512_fmadd_ps(qv, load16(k3 + d), a3);
    }
    __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(fold512(a0), fold512(a1)), _mm256_hadd_ps(fold512(a2), fold512(a3)));
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
template <int NV, class T>
__attribute__((target("avx512f"))) void wsum_block512(const float* p, const KVSegment* segs, int nseg, int ld, int d0,
                                                      float* out) {
  __m512 acc[NV];
  for (int v = 0; v < NV; v++) acc[v] = _mm512_setzero_ps();
  for (int g = 0; g < nseg; g++) {
    const T* V = static_cast<const T*>(segs[g].V) + d0;
    for (int j = 0; j < segs[g].n; j++) {
      const __m512 pj = _mm512_set1_ps(p[j]);
      const T* vr = V + (size_t)j * ld;
      for (int v = 0; v < NV; v += 64 / (16 * (int)sizeof(T))) _mm_prefetch((const char*)(vr + 8 * (size_t)ld + 16 * v), _MM_HINT_T0);
      for (int v = 0; v < NV; v++) acc[v] = _mm512_fmadd_ps(pj, load16(vr + 16 * v), acc[v]);
    }
    p += segs[g].n;
  }
  for (int v = 0; v < NV; v++) _mm512_storeu_ps(out + d0 + 16 * v, acc[v]);
}
template <class T>
__attribute__((target("avx512f,avx2,fma"))) void weighted_sum_avx512(const float* p, const KVSegment* segs, int nseg, int ld,
                                                                     int HD, float* out) {
  if (HD % 16) { weighted_sum_avx2<T>(p, segs, nseg, ld, HD, out); return; }
  int d = 0;
  for (; d + 128 <= HD; d += 128) wsum_block512<8, T>(p, segs, nseg, ld, d, out);
  for (; d + 64 <= HD; d += 64) wsum_block512<4, T>(p, segs, nseg, ld, d, out);
  for (; d + 16 <= HD; d += 16) wsum_block512<1, T>(p, segs, nseg, ld, d, out);
}

#pragma GCC diagnostic pop

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

constexpr int kMaxMR = 8;
struct Impl {
  const char* name;
  int P, MR;            // panel width, rows per tile
  bool interleave_bf16;  // AVX-512 bf16 layout: columns j and 16 + j share a 32-bit lane
  TileFn tile[2][kMaxMR];  // [bf16][mr - 1]
  float (*dot)(const float*, const float*, int);
  void (*axpy)(float*, float, const float*, int);
  void (*scores[2])(const float*, const void*, int, int, int, float, float*);  // [bf16 cache]
  void (*weighted_sum[2])(const float*, const KVSegment*, int, int, int, float*);
  void (*silu_mul)(float*, const float*, int64_t);
};

#define FARM_TILES(fn, b) {fn<1, b>, fn<2, b>, fn<3, b>, fn<4, b>, fn<5, b>, fn<6, b>, fn<7, b>, fn<8, b>}
#define FARM_TILES4(fn, b) {fn<1, b>, fn<2, b>, fn<3, b>, fn<4, b>, nullptr, nullptr, nullptr, nullptr}

Impl pick() {
  __builtin_cpu_init();
  // FARM_DECODE_IMPL=portable|avx2|avx512 forces a kernel set (tests of the fallback, benchmarks).
  const char* force = std::getenv("FARM_DECODE_IMPL");
  const std::string want = force ? force : "";
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  const bool avx512 = avx2 && __builtin_cpu_supports("avx512f");
  // AMD cores up to Zen 4 split 512-bit operations in two: AVX2 there, as the GEMM does; AVX-512 on
  // cores with full-width units.
  const bool prefer512 = avx512 && !__builtin_cpu_is("amd");
  if (want != "portable" && avx512 && (want == "avx512" || (want != "avx2" && prefer512)))
    return {"avx512", 32, 8, true, {FARM_TILES(tile_avx512, false), FARM_TILES(tile_avx512, true)}, cpu::vm().dot,
            axpy_avx2, {scores_avx512<float>, scores_avx512<uint16_t>},
            {weighted_sum_avx512<float>, weighted_sum_avx512<uint16_t>}, silu_mul_avx2};
  if (want != "portable" && avx2)
    // the AVX2 dot is the CPU kernels' own (cpu/vecmath), the same instruction sequence
    return {"avx2", 8, 8, false, {FARM_TILES(tile_avx2, false), FARM_TILES(tile_avx2, true)}, cpu::vm().dot, axpy_avx2,
            {scores_avx2<float>, scores_avx2<uint16_t>}, {weighted_sum_avx2<float>, weighted_sum_avx2<uint16_t>}, silu_mul_avx2};
  return {"portable", 8, 4, false, {FARM_TILES4(tile_portable, false), FARM_TILES4(tile_portable, true)}, dot_portable,
          axpy_portable, {scores_portable<float>, scores_portable<uint16_t>},
          {weighted_sum_portable<float>, weighted_sum_portable<uint16_t>}, silu_mul_portable};
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

void attend(const float* q, const KVSegment* segs, int nseg, int ld, int HD, float scale, float* out, float* s, bool bf16) {
  const Impl& I = impl();
  const cpu::VecMath& M = cpu::vm();
  int n = 0;
  for (int g = 0; g < nseg; g++) {
    I.scores[bf16](q, segs[g].K, ld, segs[g].n, HD, scale, s + n);
    n += segs[g].n;
  }
  float mx = M.max(s, n);
  float inv = 1.f / M.exp_shift_sum(s, s, mx, n);
  for (int j = 0; j < n; j++) s[j] *= inv;
  I.weighted_sum[bf16](s, segs, nseg, ld, HD, out);
}

void to_bf16(uint16_t* dst, const float* src, int n) {
  for (int i = 0; i < n; i++) dst[i] = f32_to_bf16(src[i]);
}

const char* weight_type_name(WeightType t) { return t == WeightType::BF16 ? "bf16" : "fp32"; }
int panel_width() { return impl().P; }

size_t PackedMatrix::storage_bytes(int N, int K, WeightType t) {
  const int P = impl().P;
  return (size_t)((N + P - 1) / P) * (((size_t)K * P * (t == WeightType::BF16 ? 2 : 4) + 63) / 64 * 64);
}

void PackedMatrix::pack(const float* W, int n, int k, WeightType t, Team* team, uint8_t* storage) {
  const Impl& I = impl();
  const int P = I.P;
  N = n;
  K = k;
  type = t;
  panels = (N + P - 1) / P;
  const size_t esz = t == WeightType::BF16 ? 2 : 4;
  panel_bytes_ = ((size_t)K * P * esz + 63) / 64 * 64;
  const size_t bytes = (size_t)panels * panel_bytes_;  // prefetches past the end never fault
  if (storage) {
    data_ = storage;
  } else {
    owned_.reset(static_cast<uint8_t*>(std::aligned_alloc(64, bytes)));
    FARM_CHECK(owned_ != nullptr, "out of memory packing decode weights (", bytes, " bytes)");
    data_ = owned_.get();
  }
  prof::Scope scope("decode.pack_weights", 0, (double)N * K * (4 + esz));
  scope.dims(N, K).flags(t == WeightType::BF16 ? 8 : 0);
  // Row by row of W (contiguous reads), each into its column of the panel (stride P).
  auto body = [&](int64_t p0, int64_t p1) {
    std::vector<uint16_t> row(t == WeightType::BF16 ? K : 0);
    for (int64_t p = p0; p < p1; p++) {
      uint8_t* dst = data_ + (size_t)p * panel_bytes_;
      const int n0 = (int)p * P;
      for (int j = 0; j < P; j++) {
        const int col = n0 + j;
        const float* src = W + (size_t)col * K;
        if (t == WeightType::F32) {
          float* d = reinterpret_cast<float*>(dst) + j;
          if (col < N) for (int kk = 0; kk < K; kk++) d[(size_t)kk * P] = src[kk];
          else for (int kk = 0; kk < K; kk++) d[(size_t)kk * P] = 0.f;
        } else {
          // AVX-512 layout: the 32-bit lane l holds columns l (low half) and 16 + l (high half).
          const int slot = I.interleave_bf16 ? (j < 16 ? 2 * j : 2 * (j - 16) + 1) : j;
          uint16_t* d = reinterpret_cast<uint16_t*>(dst) + slot;
          if (col < N) {
            for (int kk = 0; kk < K; kk++) row[kk] = f32_to_bf16(src[kk]);  // contiguous: vectorized
            for (int kk = 0; kk < K; kk++) d[(size_t)kk * P] = row[kk];
          } else {
            for (int kk = 0; kk < K; kk++) d[(size_t)kk * P] = 0;
          }
        }
      }
    }
  };
  if (team && team->size() > 1 && (int64_t)N * K >= (1 << 16)) team->split(panels, body);
  else body(0, panels);
}

namespace {
// Runs the tiles of panels [b0, b1) of the flattened segment list over rows [0, M). Partial panels (the last
// columns of a matrix) compute into a scratch tile; an element's value is the same either way.
struct PanelRange {
  const PackedSeg* segs;
  int nseg;
  const int64_t* starts;
};
inline int seg_of(const PanelRange& r, int64_t b, int s) {
  while (s + 1 < r.nseg && b >= r.starts[s + 1]) s++;
  return s;
}
}  // namespace

void linear(const float* x, int ldx, int M, const PackedSeg* segs, int nseg, bool accumulate, Team* team) {
  const Impl& I = impl();
  const int P = I.P, MR = I.MR;
  if (nseg > 8) {
    for (int s = 0; s < nseg; s += 8) linear(x, ldx, M, segs + s, std::min(8, nseg - s), accumulate, team);
    return;
  }
  int64_t starts[8], total = 0, n_all = 0;
  const int K = segs[0].W->K;
  double wbytes = 0;
  for (int s = 0; s < nseg; s++) {
    FARM_CHECK(segs[s].W->K == K, "internal: fused decode linears need equal K");
    starts[s] = total;
    total += segs[s].W->panels;
    n_all += segs[s].W->N;
    wbytes += (double)segs[s].W->N * K * (segs[s].W->type == WeightType::BF16 ? 2 : 4);
  }
  const bool bf16 = segs[0].W->type == WeightType::BF16;
  // Weights once, x once, out written (and read when accumulating).
  prof::Scope scope("decode.linear", 2.0 * M * n_all * K,
                    wbytes + 4.0 * ((double)M * K + (double)M * n_all * (accumulate ? 2 : 1)));
  scope.dims(M, n_all, K).flags(bf16 ? 8 : 0);
  // Many rows (prefill): chunks of rows whose x stays in L2 (~256 KB) while this thread's panels pass by.
  const int MC = std::max(MR, (int)((65536 / std::max(K, 1)) / MR * MR));
  const PanelRange pr{segs, nseg, starts};
  auto run = [&](int64_t b0, int64_t b1) {
    alignas(64) float scratch[kMaxMR * 32];
    for (int mc = 0; mc < M; mc += MC) {
      const int mend = std::min(M, mc + MC);
      int s = 0;
      for (int64_t b = b0; b < b1; b++) {
        s = seg_of(pr, b, s);
        const PackedSeg& g = segs[s];
        const int p = (int)(b - starts[s]), n0 = p * P, nv = std::min(P, g.W->N - n0);
        const TileFn* tiles = I.tile[g.W->type == WeightType::BF16];
        for (int m0 = mc; m0 < mend; m0 += MR) {
          const int mr = std::min(MR, mend - m0);
          float* o = g.out + (size_t)m0 * g.ldo + n0;
          if (nv == P) {
            tiles[mr - 1](x + (size_t)m0 * ldx, ldx, g.W->panel(p), K, o, g.ldo, accumulate);
            continue;
          }
          tiles[mr - 1](x + (size_t)m0 * ldx, ldx, g.W->panel(p), K, scratch, P, false);
          for (int r = 0; r < mr; r++)
            for (int j = 0; j < nv; j++) {
              float* e = o + (size_t)r * g.ldo + j;
              *e = accumulate ? *e + scratch[r * P + j] : scratch[r * P + j];
            }
        }
      }
    }
  };
  // Small products stay on the calling thread (waking the team costs about a microsecond).
  const int64_t work = total * P * (int64_t)M * K;
  if (team && team->size() > 1 && work >= (1 << 15)) {
    team->split(total, [&](int64_t b0, int64_t b1) { run(b0, b1); });
    return;
  }
  run(0, total);
}

void linear_swiglu(const float* x, int ldx, int M, const PackedMatrix& gate, const PackedMatrix& up, float* h, int ldh,
                   Team* team) {
  const Impl& I = impl();
  const int P = I.P, MR = I.MR, K = gate.K;
  FARM_CHECK(up.K == K && up.N == gate.N && up.type == gate.type, "internal: gate and up shapes differ");
  const bool bf16 = gate.type == WeightType::BF16;
  const double wbytes = 2.0 * gate.N * K * (bf16 ? 2 : 4);
  prof::Scope scope("decode.linear_swiglu", 4.0 * M * gate.N * K + 6.0 * M * gate.N,
                    wbytes + 4.0 * ((double)M * K + (double)M * gate.N));
  scope.dims(M, 2 * gate.N, K).flags(bf16 ? 8 : 0);
  const int MC = std::max(MR, (int)((65536 / std::max(K, 1)) / MR * MR));
  const TileFn* tiles = I.tile[bf16];
  auto run = [&](int64_t p0, int64_t p1) {
    alignas(64) float tg[kMaxMR * 32], tu[kMaxMR * 32];
    for (int mc = 0; mc < M; mc += MC) {
      const int mend = std::min(M, mc + MC);
      for (int64_t p = p0; p < p1; p++) {
        const int n0 = (int)p * P, nv = std::min(P, gate.N - n0);
        for (int m0 = mc; m0 < mend; m0 += MR) {
          const int mr = std::min(MR, mend - m0);
          tiles[mr - 1](x + (size_t)m0 * ldx, ldx, gate.panel((int)p), K, tg, P, false);
          tiles[mr - 1](x + (size_t)m0 * ldx, ldx, up.panel((int)p), K, tu, P, false);
          for (int r = 0; r < mr; r++) {
            I.silu_mul(tg + r * P, tu + r * P, nv);  // elementwise: the same value as over a whole row
            std::memcpy(h + (size_t)(m0 + r) * ldh + n0, tg + r * P, sizeof(float) * nv);
          }
        }
      }
    }
  };
  const int64_t work = (int64_t)gate.panels * P * 2 * (int64_t)M * K;
  if (team && team->size() > 1 && work >= (1 << 15)) {
    team->split(gate.panels, run);
    return;
  }
  run(0, gate.panels);
}

}  // namespace farm::decode
