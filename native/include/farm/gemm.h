// One GEMM for the whole engine (row-major, fp32).
#pragma once

namespace farm {

// C[M,N] = beta * C + op(A) · op(B), all row-major.
//   op(A) is [M,K]: A is [M,K] with row stride lda, or (transA) A is [K,M] with row stride lda.
//   op(B) is [K,N]: B is [K,N] with row stride ldb, or (transB) B is [N,K] with row stride ldb.
// beta is 0 (overwrite; C may hold garbage, even NaN) or 1 (accumulate).
// Threads: num_threads() of the calling thread (farm/common.h); called from inside an OpenMP parallel
// region it runs serially. Parallel over output tiles only (no split-K): each element's K reduction
// order depends on the shape alone, so results are bit-identical for any thread count.
void sgemm(bool transA, bool transB, int M, int N, int K,
           const float* A, int lda, const float* B, int ldb,
           float beta, float* C, int ldc);

enum class GemmImpl { Auto = 0, Portable = 1, Avx2 = 2, Avx512 = 3, Blas = 4 };
// Select an implementation (Auto: the fastest this CPU supports). Throws if unavailable here.
// Process-wide; set it before starting work, not while other threads run GEMMs. The start-up default is
// Auto, or the environment's FARM_GEMM (auto, portable, avx2, avx512, blas) when available.
void set_gemm_impl(GemmImpl impl);
GemmImpl gemm_impl();
const char* gemm_impl_name(GemmImpl impl);
bool gemm_impl_available(GemmImpl impl);

namespace gemm_detail {
// A register-tiled micro-kernel and the cache blocks that suit it (shared by gemm*.cc only).
//   packed: C[mr x nr] = (load_c ? C : 0) + sum_k a[k*mr + r] * b[k*nr + c], for k in [0, kc);
//   the sum over k is accumulated from zero and added to C at the end, in k order.
//   strided: the same with A read in place: A(r, k) = a[r*rs_a + k*cs_a] (all mr rows valid).
struct MicroKernel {
  const char* name;
  int mr, nr;            // register tile
  int mc, kc, nc;        // largest cache blocks: A block mc x kc (L2), B panel kc x nc (L3)
  void (*packed)(int kc, const float* a, const float* b, float* c, long ldc, bool load_c);
  void (*strided)(int kc, const float* a, long rs_a, long cs_a, const float* b, float* c, long ldc, bool load_c);
  // Packers (null: the portable ones). a points at op(A)(i0, k0), b at op(B)(k0, j0); rows/cols may end in a
  // partial panel (zero-padded). dst needs 16 floats of slack past the packed data.
  void (*pack_a)(const float* a, long lda, bool trans, int rows, int kc, float* dst);
  void (*pack_b)(const float* b, long ldb, bool trans, int cols, int kc, float* dst);
};
// AVX2 packers for any mr <= 16 and nr in {8, 16, 24, 32} (every AVX-512 CPU has AVX2 too).
void pack_a_avx2(int mr, const float* a, long lda, bool trans, int rows, int kc, float* dst);
void pack_b_avx2(int nr, const float* b, long ldb, bool trans, int cols, int kc, float* dst);
const MicroKernel* microkernel_avx2();    // null when not compiled in
const MicroKernel* microkernel_avx512();
bool cpu_has_avx2();
bool cpu_has_avx512();
}  // namespace gemm_detail

}  // namespace farm
