// SGEMM: GotoBLAS/BLIS-style blocked driver over register-tiled micro-kernels (portable here, AVX2 and
// AVX-512 in gemm_avx2.cc / gemm_avx512.cc, chosen at run time), plus an optional system CBLAS.
//
// Per thread, over its share of C: jc (N in nc blocks) > pc (K in kc blocks; pack the B panel, L3) > ic
// (its rows in mc blocks; pack A, L2) > jr (nr panels of B, one in L1) > ir (mr panels of A) > micro-kernel.
// Threads split the output tiles only (row chunks handed out guided, or column groups when M < N), with
// no barriers; the k blocking depends on K and the kernel alone, so every C element sees the same
// reduction order for any thread count. Few B panels (N <= 4 nr): A is read in place instead of packed.
#include "farm/gemm.h"
#include "farm/common.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#ifdef _OPENMP
#include <omp.h>
#endif
#ifdef FARM_HAVE_CBLAS
#include <cblas.h>
#endif

namespace farm {
namespace gemm_detail {

bool cpu_has_avx2() {
#if defined(__x86_64__) || defined(__i386__)
  static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return ok;
#else
  return false;
#endif
}
bool cpu_has_avx512() {
#if defined(__x86_64__) || defined(__i386__)
  static const bool ok = cpu_has_avx2() && __builtin_cpu_supports("avx512f");
  return ok;
#else
  return false;
#endif
}

namespace {

// ---- portable micro-kernel (plain C++; the compiler vectorizes it for the baseline ISA) ----
constexpr int PMR = 4, PNR = 8;

void portable_packed(int kc, const float* a, const float* b, float* c, long ldc, bool load_c) {
  float acc[PMR][PNR] = {};
  for (int k = 0; k < kc; k++, a += PMR, b += PNR)
    for (int r = 0; r < PMR; r++)
      for (int j = 0; j < PNR; j++) acc[r][j] += a[r] * b[j];
  for (int r = 0; r < PMR; r++)
    for (int j = 0; j < PNR; j++) c[r * ldc + j] = load_c ? c[r * ldc + j] + acc[r][j] : acc[r][j];
}
// No strided variant: without FMA the packed path is as fast, so A is always packed here.
const MicroKernel kPortable = {"portable 4x8", PMR, PNR, 128, 256, 2048, portable_packed, nullptr, nullptr, nullptr};

// ---- buffers: per calling thread, sliced per team thread; grown when a call needs more, then reused ----
struct AlignedBuffer {
  float* ptr = nullptr;
  size_t cap = 0;  // floats
  float* get(size_t n) {
    if (n > cap) {
      std::free(ptr);
      size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
      ptr = static_cast<float*>(std::aligned_alloc(64, bytes));
      if (!ptr) { cap = 0; throw Error("sgemm: out of memory for packing buffers"); }
      cap = bytes / sizeof(float);
    }
    return ptr;
  }
  ~AlignedBuffer() { std::free(ptr); }
};
thread_local AlignedBuffer tl_a_block, tl_b_panel;

struct Problem {
  bool ta, tb;
  int M, N, K;
  const float* A; long lda;
  const float* B; long ldb;
  float beta;
  float* C; long ldc;
};

// Packs rows [i0, i0+rows) x k [k0, k0+kc) of op(A) as mr-row micro-panels: dst[p][k][r], zero-padded rows.
template <int MR>
void pack_a(const Problem& P, int i0, int rows, int k0, int kc, float* dst) {
  for (int p = 0; p < rows; p += MR, dst += (size_t)MR * kc) {
    int mr = std::min(MR, rows - p);
    if (P.ta) {  // op(A)(i, k) = A[k*lda + i]: mr contiguous floats per k
      const float* src = P.A + (long)k0 * P.lda + i0 + p;
      for (int k = 0; k < kc; k++, src += P.lda) {
        float* d = dst + (size_t)k * MR;
        if (mr == MR) {
          for (int r = 0; r < MR; r++) d[r] = src[r];
        } else {
          for (int r = 0; r < mr; r++) d[r] = src[r];
          for (int r = mr; r < MR; r++) d[r] = 0.f;
        }
      }
    } else {  // op(A)(i, k) = A[i*lda + k]: transpose mr rows
      for (int r = 0; r < mr; r++) {
        const float* src = P.A + (long)(i0 + p + r) * P.lda + k0;
        for (int k = 0; k < kc; k++) dst[(size_t)k * MR + r] = src[k];
      }
      for (int r = mr; r < MR; r++)
        for (int k = 0; k < kc; k++) dst[(size_t)k * MR + r] = 0.f;
    }
  }
}

// Packs op(B) columns [j0, j0+cols) x k [k0, k0+kc) as nr-column micro-panels: dst[p][k][c], zero-padded.
template <int NR>
void pack_b(const Problem& P, int j0, int cols, int k0, int kc, float* dst) {
  for (int p = 0; p * NR < cols; p++) {
    float* d = dst + (size_t)p * NR * kc;
    int jp = j0 + p * NR, nr = std::min(NR, cols - p * NR);
    if (P.tb) {  // op(B)(k, j) = B[j*ldb + k]: transpose nr rows of B
      for (int c = 0; c < nr; c++) {
        const float* src = P.B + (long)jp * P.ldb + (long)c * P.ldb + k0;
        for (int k = 0; k < kc; k++) d[(size_t)k * NR + c] = src[k];
      }
      for (int c = nr; c < NR; c++)
        for (int k = 0; k < kc; k++) d[(size_t)k * NR + c] = 0.f;
    } else {  // op(B)(k, j) = B[k*ldb + j]: nr contiguous floats per k
      const float* src = P.B + (long)k0 * P.ldb + jp;
      for (int k = 0; k < kc; k++, src += P.ldb) {
        float* dk = d + (size_t)k * NR;
        if (nr == NR) {
          std::memcpy(dk, src, sizeof(float) * NR);
        } else {
          std::memcpy(dk, src, sizeof(float) * nr);
          std::memset(dk + nr, 0, sizeof(float) * (NR - nr));
        }
      }
    }
  }
}

// Writes a kernel tile computed into a scratch buffer to the valid mr x nr corner of C.
void store_edge(const float* tile, int nr_full, float* c, long ldc, int mr, int nr, bool load_c) {
  for (int r = 0; r < mr; r++)
    for (int j = 0; j < nr; j++)
      c[r * ldc + j] = load_c ? c[r * ldc + j] + tile[r * nr_full + j] : tile[r * nr_full + j];
}

// The k blocks: as even as possible, at most uk.kc, a function of K alone.
inline int k_block(int K, int kc_max) {
  int nk = (K + kc_max - 1) / kc_max;
  return (K + nk - 1) / nk;
}

// Splits the output among nt threads: pm row groups x pn column groups. Every thread packs all of B for a
// row split, all of A for a column split: columns when A is the smaller (M < N) or M is too short.
struct Split { int pm, pn; };
Split split_threads(int nt, int m_tiles, int n_panels, bool a_smaller) {
  if (nt == 1) return {1, 1};
  if (a_smaller && n_panels >= 2 * nt) return {1, nt};
  if (m_tiles >= 4 * nt || n_panels < 2) return {nt, 1};
  int pm = 1;
  for (int d = 1; d <= nt; d++)  // the largest divisor of nt that leaves each row group >= 4 tiles
    if (nt % d == 0 && m_tiles >= 4 * d) pm = d;
  return {pm, std::min(nt / pm, n_panels)};
}

// Hands out row tiles [begin, end) in shrinking chunks (guided), so a thread slowed by other processes on a
// shared machine leaves its share to the others. Which thread computes a tile never changes its value.
struct TileQueue {
  std::atomic<int> next{0};
  int end = 0, parts = 1, min_chunk = 1;
  bool take(int* t0, int* t1) {
    int cur = next.load(std::memory_order_relaxed);
    for (;;) {
      if (cur >= end) return false;
      int chunk = std::max(min_chunk, (end - cur) / (2 * parts));
      int stop = std::min(end, cur + chunk);
      if (next.compare_exchange_weak(cur, stop, std::memory_order_relaxed)) { *t0 = cur; *t1 = stop; return true; }
    }
  }
};

#ifndef FARM_GEMM_DIRECT_A_PANELS
#define FARM_GEMM_DIRECT_A_PANELS 4
#endif
constexpr int direct_a_max_cols = FARM_GEMM_DIRECT_A_PANELS;
template <int MR, int NR>
void run_blocked(const Problem& P, const MicroKernel& uk, int nt_req) {
  const int M = P.M, N = P.N, K = P.K;
  const int kc_std = k_block(K, uk.kc);
  const int nc = std::min(N, uk.nc);
  const int nc_panels = (nc + NR - 1) / NR;
  const int m_tiles = (M + MR - 1) / MR;
  const int mc_tiles = std::max(1, uk.mc / MR);
  const int nt = std::max(1, std::min(nt_req, m_tiles * nc_panels));
  // Each thread packs its own B panels and A blocks: no barriers, so a thread that the OS deschedules
  // holds up no one. When all of op(B) packed fits in 8 MiB, a thread packs it once and keeps it for all
  // its row chunks; otherwise every chunk repacks its B panels. All buffers come from the calling thread,
  // so that a failed allocation throws here and not inside the parallel region.
  const int k_blocks = (K + kc_std - 1) / kc_std, n_blocks = (N + nc - 1) / nc;
  const size_t panel_floats = (size_t)kc_std * nc_panels * NR;
  const bool keep_b = nt > 1 && panel_floats * k_blocks * n_blocks <= ((size_t)1 << 21);
  const size_t a_stride = ((size_t)mc_tiles * MR * kc_std + 16 + 15) / 16 * 16;
  const size_t b_stride = (panel_floats * (keep_b ? k_blocks * n_blocks : 1) + 16 + 15) / 16 * 16;
  float* b_panels = tl_b_panel.get(b_stride * nt);
  float* a_blocks = tl_a_block.get(a_stride * nt);
  const Split split = split_threads(nt, m_tiles, (N + NR - 1) / NR, M < N);
  TileQueue queue;
  queue.end = m_tiles;
  queue.parts = nt;
  // Chunks that repack B stay large: at least an A block and 1/(4 nt) of the rows.
  queue.min_chunk = nt == 1 ? m_tiles : keep_b ? mc_tiles : std::max(mc_tiles, m_tiles / (4 * nt));

  // With few B panels per A block, packing A costs more than strided reads of it save.
  const bool direct_a = uk.strided && N <= direct_a_max_cols * NR;

  // Computes C rows of tiles [mt0, mt1) x columns [n0, n1) (n0 a multiple of NR) over all of K.
  // b_ready: the thread's kept B blocks are already packed (keep_b only).
  auto compute = [&](int mt0, int mt1, int n0, int n1, float* a_block, float* b_panels_own, bool b_ready) {
    alignas(64) float edge[16 * 32];
    float* b_panel = b_panels_own;
    for (int j0 = n0; j0 < n1; j0 += nc) {
      const int cols = std::min(nc, n1 - j0), panels = (cols + NR - 1) / NR;
      for (int k0 = 0; k0 < K; k0 += kc_std) {
        const int kc = std::min(kc_std, K - k0);
        const bool load_c = k0 > 0 || P.beta != 0.f;
        if (keep_b) b_panel = b_panels_own + panel_floats * ((size_t)(j0 / nc) * k_blocks + k0 / kc_std);
        if (!b_ready) {
          if (uk.pack_b) uk.pack_b(P.tb ? P.B + (long)j0 * P.ldb + k0 : P.B + (long)k0 * P.ldb + j0, P.ldb, P.tb, cols, kc, b_panel);
          else pack_b<NR>(P, j0, cols, k0, kc, b_panel);
        }
        for (int mt = mt0; mt < mt1; mt += mc_tiles) {
          const int i0 = mt * MR, rows = std::min(std::min(mt1, mt + mc_tiles) * MR, M) - i0;
          // Direct A: full tiles read A in place; only a partial last panel is packed.
          const int full_rows = direct_a ? rows / MR * MR : 0;
          if (full_rows < rows) {
            const int pi = i0 + full_rows;
            if (uk.pack_a) uk.pack_a(P.ta ? P.A + (long)k0 * P.lda + pi : P.A + (long)pi * P.lda + k0, P.lda, P.ta, rows - full_rows, kc, a_block + (size_t)full_rows * kc);
            else pack_a<MR>(P, pi, rows - full_rows, k0, kc, a_block + (size_t)full_rows * kc);
          }
          for (int p = 0; p < panels; p++) {
            const float* bp = b_panel + (size_t)p * NR * kc;
            const int j = j0 + p * NR, nr = std::min(NR, N - j);
            for (int r = 0; r < rows; r += MR) {
              const float* ap = a_block + (size_t)r * kc;
              float* c = P.C + (long)(i0 + r) * P.ldc + j;
              const int mr = std::min(MR, rows - r);
              float* out = mr == MR && nr == NR ? c : edge;
              const long ldo = out == c ? P.ldc : NR;
              const bool load_out = out == c && load_c;
              if (r < full_rows) {
                const float* a = P.ta ? P.A + (long)k0 * P.lda + i0 + r : P.A + (long)(i0 + r) * P.lda + k0;
                uk.strided(kc, a, P.ta ? 1 : P.lda, P.ta ? P.lda : 1, bp, out, ldo, load_out);
              } else {
                uk.packed(kc, ap, bp, out, ldo, load_out);
              }
              if (out == edge) store_edge(edge, NR, c, P.ldc, mr, nr, load_c);
            }
          }
        }
      }
    }
  };
  auto body = [&](int tid) {
    float* a_block = a_blocks + a_stride * tid;
    float* b_panel = b_panels + b_stride * tid;
    if (split.pn == 1) {
      int t0, t1;
      for (bool b_ready = false; queue.take(&t0, &t1); b_ready = keep_b) compute(t0, t1, 0, N, a_block, b_panel, b_ready);
      return;
    }
    const int gm = tid % split.pm, gn = tid / split.pm;
    if (gn >= split.pn) return;
    const int n_all = (N + NR - 1) / NR;
    const int mt0 = (int)((long)m_tiles * gm / split.pm), mt1 = (int)((long)m_tiles * (gm + 1) / split.pm);
    const int p0 = (int)((long)n_all * gn / split.pn), p1 = (int)((long)n_all * (gn + 1) / split.pn);
    if (mt0 < mt1 && p0 < p1) compute(mt0, mt1, p0 * NR, std::min(N, p1 * NR), a_block, b_panel, false);
  };
#ifdef _OPENMP
  if (nt > 1) {
#pragma omp parallel num_threads(nt)
    {
      // A smaller team than asked for still covers everything: the queue, or the team's own split.
      int team = omp_get_num_threads(), tid = omp_get_thread_num();
      if (team == nt || split.pn == 1) {
        body(tid);
      } else if (tid == 0) {
        for (int t = 0; t < nt; t++) body(t);
      }
    }
    return;
  }
#endif
  body(0);
}

void run_kernel(const Problem& P, const MicroKernel& uk, int nt) {
  if (uk.mr == PMR && uk.nr == PNR) return run_blocked<PMR, PNR>(P, uk, nt);
  if (uk.mr == 6 && uk.nr == 16) return run_blocked<6, 16>(P, uk, nt);
  if (uk.mr == 14 && uk.nr == 32) return run_blocked<14, 32>(P, uk, nt);
  fail("sgemm: no driver for micro-kernel ", uk.name);
}

// Threads for one call: the caller's setting, serial inside a parallel region, and at least ~4 MFLOP each.
int call_threads(const Problem& P) {
#ifdef _OPENMP
  if (omp_in_parallel()) return 1;
  // A parallel region costs microseconds on an idle machine but a scheduler time slice when other
  // processes hold the cores: small products (attention blocks) stay on the calling thread.
  const double work = (double)P.M * P.N * P.K;
  return (int)std::max(1.0, std::min((double)num_threads(), std::floor(work / (1 << 21))));
#else
  (void)P;
  return 1;
#endif
}

#ifdef FARM_HAVE_CBLAS
void blas_sgemm(const Problem& P) {
  cblas_sgemm(CblasRowMajor, P.ta ? CblasTrans : CblasNoTrans, P.tb ? CblasTrans : CblasNoTrans, P.M, P.N, P.K, 1.0f,
              P.A, (int)P.lda, P.B, (int)P.ldb, P.beta, P.C, (int)P.ldc);
}
#endif

GemmImpl best_available() {
#if defined(__x86_64__) || defined(__i386__)
  // AMD cores up to Zen 4 run AVX-512 as two 256-bit halves: there the 6x16 AVX2 kernel measured 3-8% faster
  // than the 14x32 AVX-512 one (bench/gemm.ts). Cores with full-width AVX-512 units take the wider tile.
  const bool prefer_avx512 = !__builtin_cpu_is("amd");
#else
  const bool prefer_avx512 = false;
#endif
  if (prefer_avx512 && gemm_impl_available(GemmImpl::Avx512)) return GemmImpl::Avx512;
  if (gemm_impl_available(GemmImpl::Avx2)) return GemmImpl::Avx2;
  if (gemm_impl_available(GemmImpl::Avx512)) return GemmImpl::Avx512;
  return GemmImpl::Portable;
}

// The start-up choice: FARM_GEMM=<name> in the environment when that implementation is available, else Auto.
GemmImpl initial_impl() {
  const char* env = std::getenv("FARM_GEMM");
  if (env && *env) {
    for (GemmImpl g : {GemmImpl::Auto, GemmImpl::Portable, GemmImpl::Avx2, GemmImpl::Avx512, GemmImpl::Blas})
      if (std::strcmp(env, gemm_impl_name(g)) == 0 && gemm_impl_available(g))
        return g == GemmImpl::Auto ? best_available() : g;
    std::fprintf(stderr, "farm: FARM_GEMM=%s is not an available GEMM implementation here; using auto\n", env);
  }
  return best_available();
}

std::atomic<int> g_impl{-1};

GemmImpl current_impl() {
  int v = g_impl.load(std::memory_order_relaxed);
  if (v < 0) {
    static const int chosen = (int)initial_impl();  // once, thread-safe
    int expected = -1;
    g_impl.compare_exchange_strong(expected, chosen, std::memory_order_relaxed);
    v = g_impl.load(std::memory_order_relaxed);
  }
  return (GemmImpl)v;
}

}  // namespace
}  // namespace gemm_detail

using namespace gemm_detail;

void sgemm(bool ta, bool tb, int M, int N, int K, const float* A, int lda, const float* B, int ldb, float beta,
           float* C, int ldc) {
  FARM_CHECK(M >= 0 && N >= 0 && K >= 0, "sgemm: negative size M=", M, " N=", N, " K=", K);
  FARM_CHECK(beta == 0.f || beta == 1.f, "sgemm: beta must be 0 or 1, got ", beta);
  FARM_CHECK(ldc >= std::max(1, N) && lda >= std::max(1, ta ? M : K) && ldb >= std::max(1, tb ? K : N),
             "sgemm: leading dimension too small (lda=", lda, " ldb=", ldb, " ldc=", ldc, ")");
  if (M == 0 || N == 0) return;
  if (K == 0) {
    if (beta == 0.f)
      for (int i = 0; i < M; i++) std::memset(C + (long)i * ldc, 0, sizeof(float) * N);
    return;
  }
  const Problem P{ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc};
  switch (current_impl()) {
#ifdef FARM_HAVE_CBLAS
    case GemmImpl::Blas: return blas_sgemm(P);
#endif
    case GemmImpl::Avx512: return run_kernel(P, *microkernel_avx512(), call_threads(P));
    case GemmImpl::Avx2: return run_kernel(P, *microkernel_avx2(), call_threads(P));
    default: return run_kernel(P, kPortable, call_threads(P));
  }
}

void set_gemm_impl(GemmImpl impl) {
  FARM_CHECK(gemm_impl_available(impl), "GEMM implementation ", gemm_impl_name(impl), " is not available");
  g_impl.store((int)(impl == GemmImpl::Auto ? best_available() : impl), std::memory_order_relaxed);
}
GemmImpl gemm_impl() { return current_impl(); }
const char* gemm_impl_name(GemmImpl impl) {
  switch (impl) {
    case GemmImpl::Auto: return "auto";
    case GemmImpl::Portable: return "portable";
    case GemmImpl::Avx2: return "avx2";
    case GemmImpl::Avx512: return "avx512";
    case GemmImpl::Blas: return "blas";
  }
  return "?";
}
bool gemm_impl_available(GemmImpl impl) {
  switch (impl) {
    case GemmImpl::Auto:
    case GemmImpl::Portable: return true;
    case GemmImpl::Avx2: return microkernel_avx2() && cpu_has_avx2();
    case GemmImpl::Avx512: return microkernel_avx512() && cpu_has_avx512();
    case GemmImpl::Blas:
#ifdef FARM_HAVE_CBLAS
      return true;
#else
      return false;
#endif
  }
  return false;
}

}  // namespace farm
