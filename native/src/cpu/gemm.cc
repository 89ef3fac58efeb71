// Placeholder portable GEMM (correct, slow); the tuned kernels replace it.
#include "farm/gemm.h"
#include "farm/common.h"

namespace farm {
static GemmImpl g_impl = GemmImpl::Portable;

void sgemm(bool ta, bool tb, int M, int N, int K, const float* A, int lda, const float* B, int ldb,
           float beta, float* C, int ldc) {
#pragma omp parallel for schedule(static)
  for (int i = 0; i < M; i++) {
    float* c = C + (long)i * ldc;
    for (int j = 0; j < N; j++) {
      float s = 0.f;
      for (int k = 0; k < K; k++) {
        float a = ta ? A[(long)k * lda + i] : A[(long)i * lda + k];
        float b = tb ? B[(long)j * ldb + k] : B[(long)k * ldb + j];
        s += a * b;
      }
      c[j] = beta == 0.f ? s : c[j] + s;
    }
  }
}
void set_gemm_impl(GemmImpl impl) {
  FARM_CHECK(gemm_impl_available(impl), "GEMM implementation ", gemm_impl_name(impl), " is not available");
  g_impl = impl == GemmImpl::Auto ? GemmImpl::Portable : impl;
}
GemmImpl gemm_impl() { return g_impl; }
const char* gemm_impl_name(GemmImpl impl) {
  switch (impl) { case GemmImpl::Auto: return "auto"; case GemmImpl::Portable: return "portable";
    case GemmImpl::Avx2: return "avx2"; case GemmImpl::Avx512: return "avx512"; case GemmImpl::Blas: return "blas"; }
  return "?";
}
bool gemm_impl_available(GemmImpl impl) { return impl == GemmImpl::Auto || impl == GemmImpl::Portable; }
}  // namespace farm
