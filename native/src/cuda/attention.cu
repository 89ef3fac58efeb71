// Causal attention with grouped KV heads, fused and memory-efficient (the flash-attention recurrence): no
// T x T matrix is stored. q[B,T,NH,HD], k/v[B,T,NKV,HD], out[B,T,NH,HD]; `att` keeps [2,B,NH,T]: the row
// log-sum-exp of the scores (forward) and D = rowsum(P * dP) (written by the backward). HD <= 128, even.
//
// Forward: a block takes 16 query rows of one (b, head); each warp owns 2 rows; key tiles of 32 go through
// shared memory, lane j scores key j, then the warp folds the tile into its running max, sum and output.
// Backward, deterministic (no atomics): (1) per query row, D and dQ (two passes over the keys, P and dP
// recomputed from the saved log-sum-exp); (2) per key, dK and dV summed over its query rows and over the
// query heads that share it, in a fixed order.
#include <cmath>
#include "compat.cuh"
#include "ops.h"

namespace farm::cuda {
namespace {

constexpr int HDM = kMaxHeadDim;
constexpr int DPL = HDM / 32;  // head dims per lane
constexpr int FQ = 16;         // query rows per forward / dQ block (8 warps x 2)
constexpr int KT = 32;         // keys per tile (one per lane)
constexpr int BKEYS = 8;       // keys per dK/dV block (one per warp)

__device__ __forceinline__ float dot_row(const float* a, const float* b, int HD) {
  float s = 0.f;
  for (int d = 0; d < HD; d++) s = fmaf(a[d], b[d], s);
  return s;
}

// Loads rows [r0, r0 + n) of a [B*T, ld] head slice into s[n][stride]; rows past T are zero.
__device__ __forceinline__ void load_rows(float* s, int stride, const float* src, int ld, int b, int T, int r0, int n, int HD) {
  for (int e = threadIdx.x; e < n * HD; e += blockDim.x) {
    const int r = e / HD, d = e % HD, t = r0 + r;
    s[r * stride + d] = t < T ? src[((size_t)b * T + t) * ld + d] : 0.f;
  }
}

__global__ void __launch_bounds__(256) attn_forward_k(float* out, float* lse, const float* q, const float* k, const float* v,
                                                      int B, int T, int NH, int NKV, int HD, float scale) {
  __shared__ float Qs[FQ * (HDM + 1)];
  __shared__ float Ks[KT * (HDM + 1)];
  __shared__ float Vs[KT * HDM];
  const int ntiles = (T + FQ - 1) / FQ;
  const int tile = blockIdx.x % ntiles, h = (blockIdx.x / ntiles) % NH, b = blockIdx.x / (ntiles * NH);
  const int kvh = h / (NH / NKV), ldq = NH * HD, ldk = NKV * HD, S = HD + 1;
  const int r0 = tile * FQ, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  load_rows(Qs, S, q + (size_t)h * HD, ldq, b, T, r0, FQ, HD);
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f}, acc[2][DPL];
#pragma unroll
  for (int rr = 0; rr < 2; rr++)
#pragma unroll
    for (int i = 0; i < DPL; i++) acc[rr][i] = 0.f;
  const int last = imin(T, r0 + FQ) - 1;  // the block's last query row: keys beyond it are masked for all
  for (int j0 = 0; j0 <= last; j0 += KT) {
    __syncthreads();  // previous tile fully used (and Qs loaded, first time)
    load_rows(Ks, S, k + (size_t)kvh * HD, ldk, b, T, j0, KT, HD);
    load_rows(Vs, HD, v + (size_t)kvh * HD, ldk, b, T, j0, KT, HD);
    __syncthreads();
#pragma unroll
    for (int rr = 0; rr < 2; rr++) {
      const int row = warp + 8 * rr, t = r0 + row;
      if (t >= T) continue;  // uniform over the warp
      const int j = j0 + lane;
      const float s = j <= t ? dot_row(Qs + row * S, Ks + lane * S, HD) * scale : -INFINITY;
      const float mnew = fmaxf(m[rr], warp_max(s));  // finite: tile 0 holds key 0 <= t
      const float p = j <= t ? expf(s - mnew) : 0.f;
      const float corr = expf(m[rr] - mnew);
      l[rr] = l[rr] * corr + warp_sum(p);
#pragma unroll
      for (int i = 0; i < DPL; i++) acc[rr][i] *= corr;
      const int jn = imin(KT, t - j0 + 1);  // keys of this tile row t sees
      for (int jj = 0; jj < jn; jj++) {
        const float pj = __shfl_sync(0xffffffffu, p, jj);
#pragma unroll
        for (int i = 0; i < DPL; i++) {
          const int d = lane + 32 * i;
          if (d < HD) acc[rr][i] = fmaf(pj, Vs[jj * HD + d], acc[rr][i]);
        }
      }
      m[rr] = mnew;
    }
  }
#pragma unroll
  for (int rr = 0; rr < 2; rr++) {
    const int t = r0 + warp + 8 * rr;
    if (t >= T) continue;
    const float inv = 1.f / l[rr];
    float* o = out + ((size_t)b * T + t) * ldq + (size_t)h * HD;
#pragma unroll
    for (int i = 0; i < DPL; i++) {
      const int d = lane + 32 * i;
      if (d < HD) o[d] = acc[rr][i] * inv;
    }
    if (lane == 0) lse[((size_t)b * NH + h) * T + t] = m[rr] + logf(l[rr]);
  }
}

// dQ and D per query row: pass 1 sums D = sum_j P dP, pass 2 accumulates dQ = scale * sum_j P (dP - D) k_j.
__global__ void __launch_bounds__(256) attn_backward_dq_k(float* dq, float* Dsave, const float* dout, const float* lse,
                                                          const float* q, const float* k, const float* v, int B, int T,
                                                          int NH, int NKV, int HD, float scale) {
  __shared__ float Qs[8 * (HDM + 1)];
  __shared__ float Os[8 * (HDM + 1)];  // dO rows
  __shared__ float Ks[KT * (HDM + 1)];
  __shared__ float Vs[KT * (HDM + 1)];
  constexpr int RQ = 8;  // one row per warp
  const int ntiles = (T + RQ - 1) / RQ;
  const int tile = blockIdx.x % ntiles, h = (blockIdx.x / ntiles) % NH, b = blockIdx.x / (ntiles * NH);
  const int kvh = h / (NH / NKV), ldq = NH * HD, ldk = NKV * HD, S = HD + 1;
  const int r0 = tile * RQ, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int t = r0 + warp;
  load_rows(Qs, S, q + (size_t)h * HD, ldq, b, T, r0, RQ, HD);
  load_rows(Os, S, dout + (size_t)h * HD, ldq, b, T, r0, RQ, HD);
  const float L = t < T ? lse[((size_t)b * NH + h) * T + t] : 0.f;
  const int last = imin(T, r0 + RQ) - 1;
  float D = 0.f;
  for (int pass = 0; pass < 2; pass++) {
    float part = 0.f, acc[DPL];
#pragma unroll
    for (int i = 0; i < DPL; i++) acc[i] = 0.f;
    for (int j0 = 0; j0 <= last; j0 += KT) {
      __syncthreads();
      load_rows(Ks, S, k + (size_t)kvh * HD, ldk, b, T, j0, KT, HD);
      load_rows(Vs, S, v + (size_t)kvh * HD, ldk, b, T, j0, KT, HD);
      __syncthreads();
      if (t >= T) continue;
      const int j = j0 + lane;
      float P = 0.f, dP = 0.f;
      if (j <= t) {
        P = expf(dot_row(Qs + warp * S, Ks + lane * S, HD) * scale - L);
        dP = dot_row(Os + warp * S, Vs + lane * S, HD);
      }
      if (pass == 0) {
        part = fmaf(P, dP, part);
      } else {
        const float dS = P * (dP - D) * scale;
        const int jn = imin(KT, t - j0 + 1);
        for (int jj = 0; jj < jn; jj++) {
          const float ds = __shfl_sync(0xffffffffu, dS, jj);
#pragma unroll
          for (int i = 0; i < DPL; i++) {
            const int d = lane + 32 * i;
            if (d < HD) acc[i] = fmaf(ds, Ks[jj * S + d], acc[i]);
          }
        }
      }
    }
    if (pass == 0) {
      D = warp_sum(part);
    } else if (t < T) {
      float* o = dq + ((size_t)b * T + t) * ldq + (size_t)h * HD;
#pragma unroll
      for (int i = 0; i < DPL; i++) {
        const int d = lane + 32 * i;
        if (d < HD) o[d] = acc[i];
      }
      if (lane == 0) Dsave[((size_t)b * NH + h) * T + t] = D;
    }
  }
}

// dK, dV per key: warp w owns key kt0 + w; lanes take the query rows of a 32-row tile.
__global__ void __launch_bounds__(256) attn_backward_dkdv_k(float* dk, float* dv, const float* dout, const float* lse,
                                                            const float* Dsave, const float* q, const float* k,
                                                            const float* v, int B, int T, int NH, int NKV, int HD,
                                                            float scale) {
  __shared__ float Qs[KT * (HDM + 1)];
  __shared__ float Os[KT * (HDM + 1)];
  __shared__ float Ks[BKEYS * HDM];
  __shared__ float Vs[BKEYS * HDM];
  __shared__ float Ls[KT], Ds[KT];
  const int ntiles = (T + BKEYS - 1) / BKEYS;
  const int tile = blockIdx.x % ntiles, kvh = (blockIdx.x / ntiles) % NKV, b = blockIdx.x / (ntiles * NKV);
  const int group = NH / NKV, ldq = NH * HD, ldk = NKV * HD, S = HD + 1;
  const int kt0 = tile * BKEYS, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int j = kt0 + warp;
  load_rows(Ks, HD, k + (size_t)kvh * HD, ldk, b, T, kt0, BKEYS, HD);
  load_rows(Vs, HD, v + (size_t)kvh * HD, ldk, b, T, kt0, BKEYS, HD);
  float gk[DPL], gv[DPL];
#pragma unroll
  for (int i = 0; i < DPL; i++) gk[i] = gv[i] = 0.f;
  for (int g = 0; g < group; g++) {
    const int h = kvh * group + g;
    for (int q0 = (kt0 / KT) * KT; q0 < T; q0 += KT) {
      __syncthreads();
      load_rows(Qs, S, q + (size_t)h * HD, ldq, b, T, q0, KT, HD);
      load_rows(Os, S, dout + (size_t)h * HD, ldq, b, T, q0, KT, HD);
      if (threadIdx.x < KT) {
        const int tt = q0 + threadIdx.x;
        Ls[threadIdx.x] = tt < T ? lse[((size_t)b * NH + h) * T + tt] : 0.f;
        Ds[threadIdx.x] = tt < T ? Dsave[((size_t)b * NH + h) * T + tt] : 0.f;
      }
      __syncthreads();
      if (j >= T) continue;  // uniform over the warp
      const int t = q0 + lane;
      float P = 0.f, dS = 0.f;
      if (t < T && t >= j) {
        P = expf(dot_row(Qs + lane * S, Ks + warp * HD, HD) * scale - Ls[lane]);
        const float dP = dot_row(Os + lane * S, Vs + warp * HD, HD);
        dS = P * (dP - Ds[lane]) * scale;
      }
      const int tfirst = imax(0, j - q0), tend = imin(KT, T - q0);  // query rows of the tile that see key j
      for (int tt = tfirst; tt < tend; tt++) {
        const float p = __shfl_sync(0xffffffffu, P, tt), ds = __shfl_sync(0xffffffffu, dS, tt);
#pragma unroll
        for (int i = 0; i < DPL; i++) {
          const int d = lane + 32 * i;
          if (d < HD) {
            gv[i] = fmaf(p, Os[tt * S + d], gv[i]);
            gk[i] = fmaf(ds, Qs[tt * S + d], gk[i]);
          }
        }
      }
    }
  }
  if (j < T) {
    float* pk = dk + ((size_t)b * T + j) * ldk + (size_t)kvh * HD;
    float* pv = dv + ((size_t)b * T + j) * ldk + (size_t)kvh * HD;
#pragma unroll
    for (int i = 0; i < DPL; i++) {
      const int d = lane + 32 * i;
      if (d < HD) {
        pk[d] = gk[i];
        pv[d] = gv[i];
      }
    }
  }
}

void check_shape(int B, int T, int NH, int NKV, int HD) {
  FARM_CHECK(HD >= 2 && HD <= kMaxHeadDim && HD % 2 == 0, "CUDA attention supports even head_dim up to ", kMaxHeadDim,
             ", got ", HD);
  FARM_CHECK(NKV >= 1 && NH % NKV == 0, "attention: NH (", NH, ") must be a multiple of NKV (", NKV, ")");
  FARM_CHECK((int64_t)B * NH * ((T + 7) / 8) < (1LL << 31), "attention: too many blocks");
}

}  // namespace

void attention_forward(float* out, float* att, const float* q, const float* k, const float* v, int B, int T, int NH, int NKV,
                       int HD) {
  check_shape(B, T, NH, NKV, HD);
  if (B == 0 || T == 0) return;
  const unsigned blocks = (unsigned)((int64_t)B * NH * ((T + FQ - 1) / FQ));
  launch("attention_forward", attn_forward_k, dim3(blocks), dim3(256), 0, out, att, q, k, v, B, T, NH, NKV, HD,
         1.0f / sqrtf((float)HD));
}

void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* att, const float* q, const float* k,
                        const float* v, int B, int T, int NH, int NKV, int HD) {
  check_shape(B, T, NH, NKV, HD);
  if (B == 0 || T == 0) return;
  const float scale = 1.0f / sqrtf((float)HD);
  const float* lse = att;
  float* D = const_cast<float*>(att) + (size_t)B * NH * T;  // the saved state's scratch half
  launch("attention_backward_dq", attn_backward_dq_k, dim3((unsigned)((int64_t)B * NH * ((T + 7) / 8))), dim3(256), 0, dq, D,
         dout, lse, q, k, v, B, T, NH, NKV, HD, scale);
  launch("attention_backward_dkdv", attn_backward_dkdv_k,
         dim3((unsigned)((int64_t)B * NKV * ((T + BKEYS - 1) / BKEYS))), dim3(256), 0, dk, dv, dout, lse, (const float*)D, q,
         k, v, B, T, NH, NKV, HD, scale);
}

}  // namespace farm::cuda
