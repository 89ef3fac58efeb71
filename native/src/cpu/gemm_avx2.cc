// AVX2 + FMA micro-kernel: 6 x 16 tile in 12 ymm accumulators (BLIS-style; the A element is broadcast,
// two 8-wide B vectors are loaded per k). Compiled with target attributes, chosen at run time.
#include "farm/gemm.h"
#include "farm/common.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

namespace farm::gemm_detail {
namespace {
constexpr int MR = 6, NR = 16;
[[noreturn]] void fail_unsupported_tile(int n) { fail("sgemm: no AVX2 packer for tile size ", n); }

#define FARM_AVX2 __attribute__((target("avx2,fma")))

// Packed: A(r, k) = a[k*MR + r]; strided: A(r, k) = a[r*rs_a + k*cs_a]. B packed: b[k*NR + c].
template <bool Packed>
FARM_AVX2 inline void tile(int kc, const float* a, long rs_a, long cs_a, const float* b, float* c, long ldc,
                           bool load_c) {
  if (Packed) { rs_a = 1; cs_a = MR; }
  __m256 acc[MR][2];
#pragma GCC unroll 6
  for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
#pragma GCC unroll 6
  for (int r = 0; r < MR; r++) _mm_prefetch((const char*)(c + r * ldc), _MM_HINT_T0), _mm_prefetch((const char*)(c + r * ldc + 15), _MM_HINT_T0);
  const float* a_row[MR];
#pragma GCC unroll 6
  for (int r = 0; r < MR; r++) a_row[r] = a + r * rs_a;
#pragma GCC unroll 4
  for (int k = 0; k < kc; k++) {
    __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
#pragma GCC unroll 6
    for (int r = 0; r < MR; r++) {
      __m256 av = _mm256_broadcast_ss(Packed ? a + r : a_row[r] + (long)k * cs_a);
      acc[r][0] = _mm256_fmadd_ps(av, b0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(av, b1, acc[r][1]);
    }
    if (Packed) a += MR;
    b += NR;
  }
#pragma GCC unroll 6
  for (int r = 0; r < MR; r++) {
    float* cr = c + r * ldc;
    if (load_c) {
      acc[r][0] = _mm256_add_ps(_mm256_loadu_ps(cr), acc[r][0]);
      acc[r][1] = _mm256_add_ps(_mm256_loadu_ps(cr + 8), acc[r][1]);
    }
    _mm256_storeu_ps(cr, acc[r][0]);
    _mm256_storeu_ps(cr + 8, acc[r][1]);
  }
}

// In-register transpose: on return v[j] holds element j of every input row (v[j][i] = in[i][j]).
FARM_AVX2 inline void transpose8(__m256 v[8]) {
  __m256 t[8], u[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(v[i], v[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(v[i], v[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
    u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int i = 0; i < 4; i++) {
    v[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
    v[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
  }
}

// Gathers `width` strided rows into k-major panels: dst[k*W + r] = src[r*ld + k], r < width (zeros up to the
// group size), for k in [0, kc). Full 8-row groups are transposed in registers; stores run in k order, so
// the spill of a partial group's 8-float store past W is overwritten by the next k (or lands in the slack).
template <int W>
FARM_AVX2 void gather_transpose(const float* src, long ld, int width, int kc, float* dst) {
  constexpr int G = (W + 7) / 8;
  int k = 0;
  if (width == W) {
    for (; k + 8 <= kc; k += 8) {
      __m256 v[G][8];
#pragma GCC unroll 4
      for (int g = 0; g < G; g++) {
#pragma GCC unroll 8
        for (int i = 0; i < 8; i++)
          v[g][i] = g * 8 + i < W ? _mm256_loadu_ps(src + (long)(g * 8 + i) * ld + k) : _mm256_setzero_ps();
        transpose8(v[g]);
      }
#pragma GCC unroll 8
      for (int j = 0; j < 8; j++)
#pragma GCC unroll 4
        for (int g = 0; g < G; g++) _mm256_storeu_ps(dst + (long)(k + j) * W + g * 8, v[g][j]);
    }
  }
  for (; k < kc; k++) {
    for (int r = 0; r < width; r++) dst[(long)k * W + r] = src[(long)r * ld + k];
    for (int r = width; r < W; r++) dst[(long)k * W + r] = 0.f;
  }
}

// Copies `width` contiguous floats per k: dst[k*W + r] = src[k*ld + r], zeros up to W.
template <int W>
FARM_AVX2 void copy_rows(const float* src, long ld, int width, int kc, float* dst) {
  for (int k = 0; k < kc; k++, src += ld, dst += W) {
    if (width == W) {
#pragma GCC unroll 4
      for (int r = 0; r < W; r++) dst[r] = src[r];
    } else {
      for (int r = 0; r < width; r++) dst[r] = src[r];
      for (int r = width; r < W; r++) dst[r] = 0.f;
    }
  }
}

template <int MR>
FARM_AVX2 void pack_a_t(const float* a, long lda, bool trans, int rows, int kc, float* dst) {
  for (int p = 0; p < rows; p += MR, dst += (long)MR * kc) {
    int mr = rows - p < MR ? rows - p : MR;
    if (trans) copy_rows<MR>(a + p, lda, mr, kc, dst);
    else gather_transpose<MR>(a + (long)p * lda, lda, mr, kc, dst);
  }
}
template <int NR>
FARM_AVX2 void pack_b_t(const float* b, long ldb, bool trans, int cols, int kc, float* dst) {
  for (int p = 0; p < cols; p += NR, dst += (long)NR * kc) {
    int nr = cols - p < NR ? cols - p : NR;
    if (trans) gather_transpose<NR>(b + (long)p * ldb, ldb, nr, kc, dst);
    else copy_rows<NR>(b + p, ldb, nr, kc, dst);
  }
}

FARM_AVX2 void pack_a_6(const float* a, long lda, bool trans, int rows, int kc, float* dst) {
  pack_a_t<6>(a, lda, trans, rows, kc, dst);
}
FARM_AVX2 void pack_b_16(const float* b, long ldb, bool trans, int cols, int kc, float* dst) {
  pack_b_t<16>(b, ldb, trans, cols, kc, dst);
}

FARM_AVX2 void packed_6x16(int kc, const float* a, const float* b, float* c, long ldc, bool load_c) {
  tile<true>(kc, a, 1, MR, b, c, ldc, load_c);
}
FARM_AVX2 void strided_6x16(int kc, const float* a, long rs_a, long cs_a, const float* b, float* c, long ldc,
                            bool load_c) {
  tile<false>(kc, a, rs_a, cs_a, b, c, ldc, load_c);
}
}  // namespace

FARM_AVX2 void pack_a_avx2(int mr, const float* a, long lda, bool trans, int rows, int kc, float* dst) {
  switch (mr) {
    case 6: return pack_a_t<6>(a, lda, trans, rows, kc, dst);
    case 8: return pack_a_t<8>(a, lda, trans, rows, kc, dst);
    case 12: return pack_a_t<12>(a, lda, trans, rows, kc, dst);
    case 14: return pack_a_t<14>(a, lda, trans, rows, kc, dst);
    case 16: return pack_a_t<16>(a, lda, trans, rows, kc, dst);
  }
  fail_unsupported_tile(mr);
}
FARM_AVX2 void pack_b_avx2(int nr, const float* b, long ldb, bool trans, int cols, int kc, float* dst) {
  switch (nr) {
    case 8: return pack_b_t<8>(b, ldb, trans, cols, kc, dst);
    case 16: return pack_b_t<16>(b, ldb, trans, cols, kc, dst);
    case 24: return pack_b_t<24>(b, ldb, trans, cols, kc, dst);
    case 32: return pack_b_t<32>(b, ldb, trans, cols, kc, dst);
  }
  fail_unsupported_tile(nr);
}

// Blocks for Zen 4 / Haswell-class caches: B micro-panel 256 x 16 (16 KiB) stays in L1, the A block
// 144 x 256 (144 KiB) in L2, the B panel 256 x 3072 (3 MiB) in L3.
#ifndef FARM_GEMM_AVX2_BLOCKS
#define FARM_GEMM_AVX2_BLOCKS 144, 256, 3072  // mc, kc, nc
#endif
const MicroKernel* microkernel_avx2() {
  static const MicroKernel k = {"avx2 6x16", MR, NR, FARM_GEMM_AVX2_BLOCKS, packed_6x16, strided_6x16, pack_a_6, pack_b_16};
  return &k;
}
}  // namespace farm::gemm_detail

#else
namespace farm::gemm_detail {
const MicroKernel* microkernel_avx2() { return nullptr; }
void pack_a_avx2(int, const float*, long, bool, int, int, float*) {}
void pack_b_avx2(int, const float*, long, bool, int, int, float*) {}
}  // namespace farm::gemm_detail
#endif
