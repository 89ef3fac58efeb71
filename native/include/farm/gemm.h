// One GEMM for the whole engine (row-major, fp32).
#pragma once

namespace farm {

// C[M,N] = beta * C + op(A) · op(B), all row-major.
//   op(A) is [M,K]: A is [M,K] with row stride lda, or (transA) A is [K,M] with row stride lda.
//   op(B) is [K,N]: B is [K,N] with row stride ldb, or (transB) B is [N,K] with row stride ldb.
// beta is 0 (overwrite; C may hold garbage, even NaN) or 1 (accumulate).
// Threads: parallel over output tiles only (no split-K), so results do not depend on the thread count.
void sgemm(bool transA, bool transB, int M, int N, int K,
           const float* A, int lda, const float* B, int ldb,
           float beta, float* C, int ldc);

enum class GemmImpl { Auto = 0, Portable = 1, Avx2 = 2, Avx512 = 3, Blas = 4 };
// Select an implementation (Auto: the fastest this CPU supports). Throws if unavailable here.
void set_gemm_impl(GemmImpl impl);
GemmImpl gemm_impl();
const char* gemm_impl_name(GemmImpl impl);
bool gemm_impl_available(GemmImpl impl);

}  // namespace farm
