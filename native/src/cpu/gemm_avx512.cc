// AVX-512 micro-kernel: 14 x 32 tile in 28 zmm accumulators (BLIS-style; the A element is broadcast,
// two 16-wide B vectors are loaded per k). Compiled with target attributes, chosen at run time.
#include "farm/gemm.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

namespace farm::gemm_detail {
namespace {
constexpr int MR = 14, NR = 32;

#define FARM_AVX512 __attribute__((target("avx512f,avx2,fma")))

// Packed: A(r, k) = a[k*MR + r]; strided: A(r, k) = a[r*rs_a + k*cs_a]. B packed: b[k*NR + c].
template <bool Packed>
FARM_AVX512 inline void tile(int kc, const float* a, long rs_a, long cs_a, const float* b, float* c, long ldc,
                           bool load_c) {
  if (Packed) { rs_a = 1; cs_a = MR; }
  __m512 acc[MR][2];
#pragma GCC unroll 14
  for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
#pragma GCC unroll 14
  for (int r = 0; r < MR; r++) _mm_prefetch((const char*)(c + r * ldc), _MM_HINT_T0), _mm_prefetch((const char*)(c + r * ldc + 31), _MM_HINT_T0);
  const float* a_row[MR];
#pragma GCC unroll 14
  for (int r = 0; r < MR; r++) a_row[r] = a + r * rs_a;
#pragma GCC unroll 4
  for (int k = 0; k < kc; k++) {
    __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
#pragma GCC unroll 14
    for (int r = 0; r < MR; r++) {
      __m512 av = _mm512_set1_ps(Packed ? a[r] : a_row[r][(long)k * cs_a]);
      acc[r][0] = _mm512_fmadd_ps(av, b0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(av, b1, acc[r][1]);
    }
    if (Packed) a += MR;
    b += NR;
  }
#pragma GCC unroll 14
  for (int r = 0; r < MR; r++) {
    float* cr = c + r * ldc;
    if (load_c) {
      acc[r][0] = _mm512_add_ps(_mm512_loadu_ps(cr), acc[r][0]);
      acc[r][1] = _mm512_add_ps(_mm512_loadu_ps(cr + 16), acc[r][1]);
    }
    _mm512_storeu_ps(cr, acc[r][0]);
    _mm512_storeu_ps(cr + 16, acc[r][1]);
  }
}

FARM_AVX512 void packed_14x32(int kc, const float* a, const float* b, float* c, long ldc, bool load_c) {
  tile<true>(kc, a, 1, MR, b, c, ldc, load_c);
}
FARM_AVX512 void strided_14x32(int kc, const float* a, long rs_a, long cs_a, const float* b, float* c, long ldc,
                            bool load_c) {
  tile<false>(kc, a, rs_a, cs_a, b, c, ldc, load_c);
}
// Packing is load/store bound: the AVX2 packers serve here too.
void pack_a_14(const float* a, long lda, bool trans, int rows, int kc, float* dst) {
  pack_a_avx2(MR, a, lda, trans, rows, kc, dst);
}
void pack_b_32(const float* b, long ldb, bool trans, int cols, int kc, float* dst) {
  pack_b_avx2(NR, b, ldb, trans, cols, kc, dst);
}
}  // namespace

// Blocks: B micro-panel 256 x 32 (32 KiB) streams through L1, the A block 140 x 256 (140 KiB) stays in L2,
// the B panel 256 x 3072 (3 MiB) in L3.
#ifndef FARM_GEMM_AVX512_BLOCKS
#define FARM_GEMM_AVX512_BLOCKS 140, 256, 3072  // mc, kc, nc
#endif
const MicroKernel* microkernel_avx512() {
  static const MicroKernel k = {"avx512 14x32", MR, NR, FARM_GEMM_AVX512_BLOCKS, packed_14x32, strided_14x32, pack_a_14, pack_b_32};
  return &k;
}
}  // namespace farm::gemm_detail

#else
namespace farm::gemm_detail {
const MicroKernel* microkernel_avx512() { return nullptr; }
}  // namespace farm::gemm_detail
#endif
