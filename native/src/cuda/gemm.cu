// Our GEMM on the GPU, row-major as farm::sgemm: C[M,N] = beta*C + op(A) op(B), beta 0 (overwrite, C may hold
// garbage) or 1. Two kernels, both without split-K (every output element is reduced in k order by one thread
// or one mma chain, so results repeat bit for bit):
//   TF32: tensor cores (mma.sync.m16n8k8, inputs rounded to tf32, fp32 accumulation), block tiles of 128x128
//         (8 warps of 64x32) or 64x64 (4 warps of 32x32) for shapes with few tiles;
//   FP32: exact fp32 FMA on the CUDA cores, 64x64 tiles, 4x4 outputs per thread (the parity reference).
// Rows with M <= 8 against a transposed B (decoding: x W^T) use a warp-per-column kernel that streams W once.
// Global loads of the next k-tile go to registers while the current tile computes.
#include <cstdlib>
#include <cstring>
#include "compat.cuh"
#include "ops.h"

namespace farm::cuda {
namespace {

constexpr int BK = 16;

// op(A)(i, k) and op(B)(k, j) with zero outside the matrix.
template <bool T>
__device__ __forceinline__ float load_a(const float* A, int lda, int M, int K, int i, int k) {
  if (i >= M || k >= K) return 0.f;
  return T ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
}
template <bool T>
__device__ __forceinline__ float load_b(const float* B, int ldb, int K, int N, int k, int j) {
  if (k >= K || j >= N) return 0.f;
  return T ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
}

// ---------------------------------------------------------------------------------------------------
// TF32 tensor-core kernel. Warp grid WGM x WGN; each warp owns a (MI*16) x (NI*8) tile of C.
template <int BM, int BN, int MI, int NI, bool TA, bool TB>
__global__ void __launch_bounds__((BM / (MI * 16)) * (BN / (NI * 8)) * 32)
    gemm_tf32_k(int M, int N, int K, const float* __restrict__ A, int lda, const float* __restrict__ B, int ldb, float beta,
                float* __restrict__ C, int ldc) {
  constexpr int WGN = BN / (NI * 8), NT = (BM / (MI * 16)) * WGN * 32;
  constexpr int LA = BM * BK / NT, LB = BN * BK / NT;  // elements each thread loads per k-tile
  static_assert(BM * BK % NT == 0 && BN * BK % NT == 0, "tile loads must divide evenly");
  __shared__ float As[BM][BK + 4];  // k contiguous; the +4 spreads fragment reads over all banks
  __shared__ float Bs[BN][BK + 4];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, t = lane & 3;
  const int wm = (warp / WGN) * MI * 16, wn = (warp % WGN) * NI * 8;
  const int ntn = (N + BN - 1) / BN;  // 1-D grid: column tiles fastest (neighbours share A's row panel)
  const int i0 = (int)(blockIdx.x / ntn) * BM, j0 = (int)(blockIdx.x % ntn) * BN;
  float ra[LA], rb[LB];
  auto load_tile = [&](int k0) {
#pragma unroll
    for (int l = 0; l < LA; l++) {
      const int idx = tid + l * NT;
      const int r = TA ? idx % BM : idx / BK, c = TA ? idx / BM : idx % BK;  // coalesced along memory
      ra[l] = load_a<TA>(A, lda, M, K, i0 + r, k0 + c);
    }
#pragma unroll
    for (int l = 0; l < LB; l++) {
      const int idx = tid + l * NT;
      const int n = TB ? idx / BK : idx % BN, c = TB ? idx % BK : idx / BN;
      rb[l] = load_b<TB>(B, ldb, K, N, k0 + c, j0 + n);
    }
  };
  auto store_tile = [&] {
#pragma unroll
    for (int l = 0; l < LA; l++) {
      const int idx = tid + l * NT;
      const int r = TA ? idx % BM : idx / BK, c = TA ? idx / BM : idx % BK;
      As[r][c] = __uint_as_float(to_tf32(ra[l]));
    }
#pragma unroll
    for (int l = 0; l < LB; l++) {
      const int idx = tid + l * NT;
      const int n = TB ? idx / BK : idx % BN, c = TB ? idx % BK : idx / BN;
      Bs[n][c] = __uint_as_float(to_tf32(rb[l]));
    }
  };
  float acc[MI][NI][4];
#pragma unroll
  for (int mi = 0; mi < MI; mi++)
#pragma unroll
    for (int ni = 0; ni < NI; ni++)
#pragma unroll
      for (int e = 0; e < 4; e++) acc[mi][ni][e] = 0.f;

  load_tile(0);
  store_tile();
  __syncthreads();
  for (int k0 = 0; k0 < K; k0 += BK) {
    const bool more = k0 + BK < K;
    if (more) load_tile(k0 + BK);
#pragma unroll
    for (int kk = 0; kk < BK; kk += 8) {
      uint32_t af[MI][4], bf[NI][2];
#pragma unroll
      for (int mi = 0; mi < MI; mi++) {
        const int r = wm + mi * 16 + g;
        af[mi][0] = __float_as_uint(As[r][kk + t]);
        af[mi][1] = __float_as_uint(As[r + 8][kk + t]);
        af[mi][2] = __float_as_uint(As[r][kk + t + 4]);
        af[mi][3] = __float_as_uint(As[r + 8][kk + t + 4]);
      }
#pragma unroll
      for (int ni = 0; ni < NI; ni++) {
        const int n = wn + ni * 8 + g;
        bf[ni][0] = __float_as_uint(Bs[n][kk + t]);
        bf[ni][1] = __float_as_uint(Bs[n][kk + t + 4]);
      }
#pragma unroll
      for (int mi = 0; mi < MI; mi++)
#pragma unroll
        for (int ni = 0; ni < NI; ni++) mma_tf32(acc[mi][ni], af[mi], bf[ni], acc[mi][ni]);
    }
    __syncthreads();
    if (more) {
      store_tile();
      __syncthreads();
    }
  }
#pragma unroll
  for (int mi = 0; mi < MI; mi++)
#pragma unroll
    for (int ni = 0; ni < NI; ni++)
#pragma unroll
      for (int e = 0; e < 4; e++) {
        const int row = i0 + wm + mi * 16 + g + 8 * (e >> 1), col = j0 + wn + ni * 8 + 2 * t + (e & 1);
        if (row < M && col < N) {
          float* c = C + (size_t)row * ldc + col;
          *c = beta != 0.f ? *c + acc[mi][ni][e] : acc[mi][ni][e];
        }
      }
}

// ---------------------------------------------------------------------------------------------------
// Exact fp32 kernel: 64x64 tile, 256 threads as 16x16, thread (tx, ty) owns rows ty + 16 i, cols tx + 16 j.
template <bool TA, bool TB>
__global__ void __launch_bounds__(256) gemm_fp32_k(int M, int N, int K, const float* __restrict__ A, int lda,
                                                   const float* __restrict__ B, int ldb, float beta, float* __restrict__ C,
                                                   int ldc) {
  constexpr int TM = 64, TN = 64, NT = 256, L = TM * BK / NT;
  __shared__ float As[BK][TM + 4];
  __shared__ float Bs[BK][TN + 4];
  const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
  const int ntn = (N + TN - 1) / TN;
  const int i0 = (int)(blockIdx.x / ntn) * TM, j0 = (int)(blockIdx.x % ntn) * TN;
  float ra[L], rb[L];
  auto load_tile = [&](int k0) {
#pragma unroll
    for (int l = 0; l < L; l++) {
      const int idx = tid + l * NT;
      const int r = TA ? idx % TM : idx / BK, c = TA ? idx / TM : idx % BK;
      ra[l] = load_a<TA>(A, lda, M, K, i0 + r, k0 + c);
      const int n = TB ? idx / BK : idx % TN, cb = TB ? idx % BK : idx / TN;
      rb[l] = load_b<TB>(B, ldb, K, N, k0 + cb, j0 + n);
    }
  };
  auto store_tile = [&] {
#pragma unroll
    for (int l = 0; l < L; l++) {
      const int idx = tid + l * NT;
      const int r = TA ? idx % TM : idx / BK, c = TA ? idx / TM : idx % BK;
      As[c][r] = ra[l];
      const int n = TB ? idx / BK : idx % TN, cb = TB ? idx % BK : idx / TN;
      Bs[cb][n] = rb[l];
    }
  };
  float acc[4][4] = {};
  load_tile(0);
  store_tile();
  __syncthreads();
  for (int k0 = 0; k0 < K; k0 += BK) {
    const bool more = k0 + BK < K;
    if (more) load_tile(k0 + BK);
#pragma unroll
    for (int kk = 0; kk < BK; kk++) {
      float a[4], b[4];
#pragma unroll
      for (int i = 0; i < 4; i++) a[i] = As[kk][ty + 16 * i];
#pragma unroll
      for (int j = 0; j < 4; j++) b[j] = Bs[kk][tx + 16 * j];
#pragma unroll
      for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
    __syncthreads();
    if (more) {
      store_tile();
      __syncthreads();
    }
  }
#pragma unroll
  for (int i = 0; i < 4; i++)
#pragma unroll
    for (int j = 0; j < 4; j++) {
      const int row = i0 + ty + 16 * i, col = j0 + tx + 16 * j;
      if (row < M && col < N) {
        float* c = C + (size_t)row * ldc + col;
        *c = beta != 0.f ? *c + acc[i][j] : acc[i][j];
      }
    }
}

// ---------------------------------------------------------------------------------------------------
// Few rows (M <= 8) times B^T: one warp per output column j, lanes stride over k, then a butterfly sum.
// B is [N, K] (row j contiguous), so each warp streams one weight row once for all M rows.
constexpr int kSmallM = 8;
__global__ void __launch_bounds__(256) gemm_small_m_k(int M, int N, int K, const float* __restrict__ A, int lda,
                                                      const float* __restrict__ B, int ldb, float beta, float* __restrict__ C,
                                                      int ldc, bool tf32) {
  const int j = blockIdx.x * 8 + (threadIdx.x >> 5), lane = threadIdx.x & 31;
  if (j >= N) return;
  float acc[kSmallM];
#pragma unroll
  for (int i = 0; i < kSmallM; i++) acc[i] = 0.f;
  const float* b = B + (size_t)j * ldb;
  for (int k = lane; k < K; k += 32) {
    float bv = b[k];
    if (tf32) bv = __uint_as_float(to_tf32(bv));
#pragma unroll
    for (int i = 0; i < kSmallM; i++)
      if (i < M) {
        float av = A[(size_t)i * lda + k];
        if (tf32) av = __uint_as_float(to_tf32(av));
        acc[i] = fmaf(av, bv, acc[i]);
      }
  }
#pragma unroll
  for (int i = 0; i < kSmallM; i++) acc[i] = warp_sum(acc[i]);
  if (lane < M) {
    float v = acc[0];
#pragma unroll
    for (int i = 1; i < kSmallM; i++)
      if (lane == i) v = acc[i];
    float* c = C + (size_t)lane * ldc + j;
    *c = beta != 0.f ? *c + v : v;
  }
}

template <int BM, int BN, int MI, int NI>
void run_tf32(bool ta, bool tb, int M, int N, int K, const float* A, int lda, const float* B, int ldb, float beta, float* C,
              int ldc) {
  constexpr int threads = (BM / (MI * 16)) * (BN / (NI * 8)) * 32;
  const int64_t tiles = (int64_t)ceil_div(N, BN) * ceil_div(M, BM);
  FARM_CHECK(tiles < (1LL << 31), "gemm: too many tiles");
  dim3 grid((unsigned)tiles);
  if (!ta && !tb)
    launch("gemm_tf32_nn", gemm_tf32_k<BM, BN, MI, NI, false, false>, grid, dim3(threads), 0, M, N, K, A, lda, B, ldb, beta, C, ldc);
  else if (!ta && tb)
    launch("gemm_tf32_nt", gemm_tf32_k<BM, BN, MI, NI, false, true>, grid, dim3(threads), 0, M, N, K, A, lda, B, ldb, beta, C, ldc);
  else if (ta && !tb)
    launch("gemm_tf32_tn", gemm_tf32_k<BM, BN, MI, NI, true, false>, grid, dim3(threads), 0, M, N, K, A, lda, B, ldb, beta, C, ldc);
  else
    launch("gemm_tf32_tt", gemm_tf32_k<BM, BN, MI, NI, true, true>, grid, dim3(threads), 0, M, N, K, A, lda, B, ldb, beta, C, ldc);
}

void run_fp32(bool ta, bool tb, int M, int N, int K, const float* A, int lda, const float* B, int ldb, float beta, float* C,
              int ldc) {
  const int64_t tiles = (int64_t)ceil_div(N, 64) * ceil_div(M, 64);
  FARM_CHECK(tiles < (1LL << 31), "gemm: too many tiles");
  dim3 grid((unsigned)tiles);
  if (!ta && !tb)
    launch("gemm_fp32_nn", gemm_fp32_k<false, false>, grid, dim3(256), 0, M, N, K, A, lda, B, ldb, beta, C, ldc);
  else if (!ta && tb)
    launch("gemm_fp32_nt", gemm_fp32_k<false, true>, grid, dim3(256), 0, M, N, K, A, lda, B, ldb, beta, C, ldc);
  else if (ta && !tb)
    launch("gemm_fp32_tn", gemm_fp32_k<true, false>, grid, dim3(256), 0, M, N, K, A, lda, B, ldb, beta, C, ldc);
  else
    launch("gemm_fp32_tt", gemm_fp32_k<true, true>, grid, dim3(256), 0, M, N, K, A, lda, B, ldb, beta, C, ldc);
}

GemmPrecision initial_precision() {
  const char* s = std::getenv("FARM_CUDA_GEMM");
  if (s && std::strcmp(s, "fp32") == 0) return GemmPrecision::FP32;
  return GemmPrecision::TF32;
}
GemmPrecision g_precision = initial_precision();
int g_tile = 0;

}  // namespace

void set_gemm_precision(GemmPrecision p) { g_precision = p; }
void set_gemm_tile(int tile) {
  FARM_CHECK(tile == 0 || tile == 64 || tile == 128, "gemm tile must be 0, 64 or 128");
  g_tile = tile;
}
GemmPrecision gemm_precision() { return g_precision; }
const char* gemm_precision_name(GemmPrecision p) { return p == GemmPrecision::FP32 ? "fp32" : "tf32"; }

void gemm(GemmPrecision p, bool ta, bool tb, int M, int N, int K, const float* A, int lda, const float* B, int ldb,
          float beta, float* C, int ldc) {
  FARM_CHECK(M >= 0 && N >= 0 && K >= 0, "gemm: negative size");
  FARM_CHECK(beta == 0.f || beta == 1.f, "gemm: beta must be 0 or 1");
  if (M == 0 || N == 0) return;
  if (K == 0) {  // C = beta * C: nothing to add; overwrite with zeros when beta = 0
    if (beta == 0.f)
      for (int i = 0; i < M; i++) zero_device(C + (size_t)i * ldc, sizeof(float) * N);
    return;
  }
  const bool tf32 = p == GemmPrecision::TF32;
  if (M <= kSmallM && !ta && tb) {
    launch("gemm_small_m", gemm_small_m_k, dim3(ceil_div(N, 8)), dim3(256), 0, M, N, K, A, lda, B, ldb, beta, C, ldc, tf32);
    return;
  }
  if (!tf32) {
    run_fp32(ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  // Large tiles when they alone give every SM a block; smaller tiles otherwise.
  const int sms = device_info().multiprocessors > 0 ? device_info().multiprocessors : 1;
  const int64_t big_tiles = (int64_t)ceil_div(M, 128) * ceil_div(N, 128);
  if (g_tile == 128 || (g_tile == 0 && big_tiles >= sms))
    run_tf32<128, 128, 4, 4>(ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
  else
    run_tf32<64, 64, 2, 4>(ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
}

}  // namespace farm::cuda
