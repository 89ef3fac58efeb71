// Decoding kernels: rotary embedding at per-row positions, KV-cache writes and copies, attention of single
// rows over their sequence's cache (a shared prompt prefix read from another slot), and the sampler.
//
// The sampler reproduces farm::sample_logits on the device, one block per row. Candidates are never
// sorted: an element's place in the order (probability descending, id ascending) is found by searching for
// a value threshold (bisection on the float's bits: weights lie in [0, 1], where the bit pattern orders the
// values) and then walking the ties at that value in id order. Top-k, top-p and the draw itself are three
// such searches. Each thread owns a contiguous range of ids, so walks "in id order" are a per-thread scan
// after an exclusive prefix over the threads. Sums are doubles in a fixed order.
#include <cmath>
#include <vector>
#include "compat.cuh"
#include "decode.h"
#include "ops.h"

namespace farm::cuda {
namespace {

constexpr int ST = 256;  // sampler threads per row

// Exclusive prefix over the block's per-thread values (thread order), computed by one thread: simple and
// the same order on every run. Returns the prefix before the calling thread; *total gets the sum.
__device__ double block_exclusive(double v, double* sh, double* total) {
  __syncthreads();
  sh[threadIdx.x] = v;
  __syncthreads();
  if (threadIdx.x == 0) {
    double acc = 0;
    for (int i = 0; i < (int)blockDim.x; i++) {
      const double x = sh[i];
      sh[i] = acc;
      acc += x;
    }
    sh[blockDim.x] = acc;
  }
  __syncthreads();
  const double r = sh[threadIdx.x];
  *total = sh[blockDim.x];
  return r;
}

struct SampleArgs {
  const float* logits;
  int V;
  const int32_t* rows;
  const float* values;
  float* scratch;  // [R, V] weights
  float temperature;
  int top_k;
  float top_p;
  const double* u;
  int32_t* tok_out;
  float* f_out;  // [R, 4]: logprob, scaled, sample, value
};

__global__ void __launch_bounds__(ST) sample_k(SampleArgs a) {
  __shared__ float redf[32];
  __shared__ double redd[32];
  __shared__ double pre[ST + 1];
  __shared__ int found;
  const int r = blockIdx.x, V = a.V, tid = threadIdx.x;
  const float* z = a.logits + (size_t)a.rows[r] * V;
  float* e = a.scratch + (size_t)r * V;
  const int per = (V + ST - 1) / ST, i0 = imin(V, tid * per), i1 = imin(V, i0 + per);
  const float value = a.values ? a.values[a.rows[r]] : 0.f;

  float m = -INFINITY;
  for (int i = i0; i < i1; i++) m = fmaxf(m, z[i]);
  m = block_max(m, redf);
  float s1 = 0.f;
  for (int i = i0; i < i1; i++) s1 += expf(z[i] - m);
  s1 = block_sum(s1, redf);
  const float lse1 = m + logf(s1);
  auto emit = [&](int tok, float lp, float slp, float sam) {
    if (tid == 0) {
      a.tok_out[r] = tok;
      a.f_out[4 * r] = lp;
      a.f_out[4 * r + 1] = slp;
      a.f_out[4 * r + 2] = sam;
      a.f_out[4 * r + 3] = value;
    }
  };
  if (!isfinite(lse1)) {  // NaN/inf logits: the host reports it
    emit(-1, 0.f, 0.f, 0.f);
    return;
  }
  if (a.temperature == 0.f) {  // greedy: argmax, lowest id on ties
    float bv = -INFINITY;
    int bi = -1;
    for (int i = i0; i < i1; i++)
      if (bi < 0 || z[i] > bv) { bv = z[i]; bi = i; }
    __shared__ float bvs[ST];
    __shared__ int bis[ST];
    bvs[tid] = bv;
    bis[tid] = bi;
    __syncthreads();
    if (tid == 0) {
      int best = -1;
      float bestv = -INFINITY;
      for (int t = 0; t < ST; t++)
        if (bis[t] >= 0 && (best < 0 || bvs[t] > bestv)) { bestv = bvs[t]; best = bis[t]; }
      found = best;
    }
    __syncthreads();
    emit(found, z[found] - lse1, 0.f, 0.f);
    return;
  }
  const float invT = 1.f / a.temperature;
  float sl = 0.f;
  for (int i = i0; i < i1; i++) {
    const float w = invT == 1.f ? expf(z[i] - m) : expf(z[i] == m ? 0.f : (z[i] - m) * invT);
    e[i] = w;
    sl += w;
  }
  const double S = (double)block_sum(sl, redf);
  auto scaled_num = [&](int t) { return z[t] == m ? 0.0 : (double)(z[t] - m) * invT; };
  const bool truncate = (a.top_k > 0 && a.top_k < V) || a.top_p < 1.f;
  const double ur = a.u[r];

  if (!truncate) {
    // Inverse CDF in id order.
    const double target = ur * S;
    double cs = 0;
    for (int i = i0; i < i1; i++) cs += e[i] > 0.f ? (double)e[i] : 0.0;
    double total;
    double before = block_exclusive(cs, pre, &total);
    if (tid == 0) found = -1;
    __syncthreads();
    if (before <= target && before + cs > target) {  // exactly one thread's range holds the crossing
      double cum = before;
      int last = -1;
      for (int i = i0; i < i1; i++) {
        if (e[i] <= 0.f) continue;
        cum += e[i];
        last = i;
        if (cum > target) break;
      }
      found = last;  // the crossing, or (rounding) the range's last positive weight
    }
    __syncthreads();
    if (found < 0) {  // rounding put the target past the end: the last positive weight (as the CPU loop ends)
      if (tid == 0) {
        for (int i = V - 1; i >= 0; i--)
          if (e[i] > 0.f) { found = i; break; }
      }
      __syncthreads();
    }
    const int tok = found;
    const float slp = (float)(scaled_num(tok) - log(S));
    emit(tok, z[tok] - lse1, slp, slp);
    return;
  }

  // Largest bit pattern x in [0, 1.0f] whose `above(x)` (monotone: true at 0) holds; all threads agree.
  auto search = [&](auto above) {
    unsigned lo = 0, hi = 0x3f800000u;
    while (lo < hi) {
      const unsigned mid = lo + (hi - lo + 1) / 2;
      if (above(__uint_as_float(mid))) lo = mid;
      else hi = mid - 1;
    }
    return __uint_as_float(lo);
  };
  auto count_ge = [&](float x) {
    double c = 0;
    for (int i = i0; i < i1; i++) c += e[i] >= x ? 1.0 : 0.0;
    return block_sum(c, redd);
  };
  auto mass_ge = [&](float x) {
    double c = 0;
    for (int i = i0; i < i1; i++) c += e[i] >= x ? (double)e[i] : 0.0;
    return block_sum(c, redd);
  };
  auto mass_gt = [&](float x) {
    double c = 0;
    for (int i = i0; i < i1; i++) c += e[i] > x ? (double)e[i] : 0.0;
    return block_sum(c, redd);
  };

  // Top-k: keep the first k of the order; weights outside become 0.
  double universe = S;  // mass the nucleus is measured against (top-k renormalizes first)
  if (a.top_k > 0 && a.top_k < V) {
    const int K = a.top_k;
    const float w = search([&](float x) { return count_ge(x) >= (double)K; });
    double gt = 0;
    for (int i = i0; i < i1; i++) gt += e[i] > w ? 1.0 : 0.0;
    const double keep_ties = (double)K - block_sum(gt, redd);
    double ties = 0;
    for (int i = i0; i < i1; i++) ties += e[i] == w ? 1.0 : 0.0;
    double total;
    double rank = block_exclusive(ties, pre, &total);
    double kept = 0;
    for (int i = i0; i < i1; i++) {
      if (e[i] == w) {
        if (rank >= keep_ties) e[i] = 0.f;
        rank += 1;
      } else if (e[i] < w) {
        e[i] = 0.f;
      }
      kept += e[i];
    }
    universe = block_sum(kept, redd);
  }
  // Top-p: keep while the mass before an element is below top_p * universe.
  double kept_mass = universe;
  if (a.top_p < 1.f) {
    const double need = (double)a.top_p * universe;
    const float w = search([&](float x) { return mass_ge(x) >= need; });
    const double above = mass_gt(w);
    double tm = 0;
    for (int i = i0; i < i1; i++) tm += e[i] == w ? (double)e[i] : 0.0;
    double total;
    double before = above + block_exclusive(tm, pre, &total);
    double kept = 0;
    for (int i = i0; i < i1; i++) {
      if (e[i] == w) {
        if (before < need) {
          before += e[i];
        } else {
          e[i] = 0.f;
        }
      } else if (e[i] < w) {
        e[i] = 0.f;
      }
      kept += e[i];
    }
    kept_mass = block_sum(kept, redd);
  }
  // The draw: the first element of the order whose cumulative mass passes u * kept.
  const double target = ur * kept_mass;
  int tok;
  if (mass_ge(__uint_as_float(1u)) > target) {  // smallest positive weight: does the kept set pass the target?
    const float w = search([&](float x) { return x > 0.f && mass_ge(x) > target; });
    const double above = mass_gt(w);
    double tm = 0;
    for (int i = i0; i < i1; i++) tm += e[i] == w ? (double)e[i] : 0.0;
    double total;
    const double before = above + block_exclusive(tm, pre, &total);
    if (tid == 0) found = -1;
    __syncthreads();
    if (before <= target && before + tm > target) {
      double cum = before;
      int last = -1;
      for (int i = i0; i < i1; i++) {
        if (e[i] != w) continue;
        cum += e[i];
        last = i;
        if (cum > target) break;
      }
      found = last;
    }
    __syncthreads();
    if (found < 0) {  // rounding: the last tie at w
      if (tid == 0)
        for (int i = V - 1; i >= 0; i--)
          if (e[i] == w) { found = i; break; }
      __syncthreads();
    }
    tok = found;
  } else {
    // Rounding left the target at the end of the kept set: its last element (smallest weight, largest id).
    if (tid == 0) {
      int best = -1;
      for (int i = 0; i < V; i++)
        if (e[i] > 0.f && (best < 0 || e[i] <= e[best])) best = i;
      found = best;
    }
    __syncthreads();
    tok = found;
  }
  emit(tok, z[tok] - lse1, (float)(scaled_num(tok) - log(S)), (float)(scaled_num(tok) - log(kept_mass)));
}

// ---- decoding kernels ----

__global__ void rope_rows_k(float* x, const int32_t* pos, const float* cosv, const float* sinv, int R, int H, int HD) {
  const int half = HD / 2;
  const int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (e >= (int64_t)R * H * half) return;
  const int i = (int)(e % half);
  const int64_t rh = e / half;
  const int r = (int)(rh / H);
  const int t = pos[r];
  float* v = x + rh * HD;
  const float a = v[i], b = v[i + half], c = cosv[(size_t)t * half + i], s = sinv[(size_t)t * half + i];
  v[i] = a * c - b * s;
  v[i + half] = b * c + a * s;
}

// Kc/Vc[l][slot][h][pos][d] = k/v[r][h][d] for layer base pointers Kc, Vc.
__global__ void kv_write_k(float* Kc, float* Vc, const float* k, const float* v, const int32_t* slot, const int32_t* pos,
                           int R, int NKV, int HD, int max_len) {
  const int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (e >= (int64_t)R * NKV * HD) return;
  const int d = (int)(e % HD), h = (int)((e / HD) % NKV), r = (int)(e / ((int64_t)HD * NKV));
  const size_t at = (((size_t)slot[r] * NKV + h) * max_len + pos[r]) * HD + d;
  Kc[at] = k[e];
  Vc[at] = v[e];
}

// Copies positions [from, from + n) of every layer and head from slot src to slot dst.
__global__ void kv_copy_k(float* Kc, float* Vc, int L, int slots, int NKV, int max_len, int HD, int dst, int src, int from,
                          int n) {
  const int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  const int64_t per_head = (int64_t)n * HD;
  if (e >= (int64_t)L * NKV * per_head) return;
  const int64_t off = e % per_head;
  const int h = (int)((e / per_head) % NKV), l = (int)(e / (per_head * NKV));
  const size_t layer = (size_t)l * slots * NKV * max_len * HD;
  const size_t d = layer + (((size_t)dst * NKV + h) * max_len + from) * HD + off;
  const size_t s = layer + (((size_t)src * NKV + h) * max_len + from) * HD + off;
  Kc[d] = Kc[s];
  Vc[d] = Vc[s];
}

__device__ __forceinline__ float dot_kv(const float* a, const float* b, int HD) {
  float s = 0.f;
  for (int d = 0; d < HD; d++) s = fmaf(a[d], b[d], s);
  return s;
}

// One warp per (row, head): online softmax over the row's positions [0, pos], the first prefix_len of them
// read from the prefix slot's cache.
__global__ void __launch_bounds__(256) decode_attention_k(float* out, const float* q, const float* Kc, const float* Vc,
                                                          const int32_t* slot, const int32_t* pos, const int32_t* pslot,
                                                          const int32_t* plen, int R, int NH, int NKV, int HD, int max_len,
                                                          float scale) {
  constexpr int DPL = kMaxHeadDim / 32;
  __shared__ float qs[8][kMaxHeadDim];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int task = blockIdx.x * 8 + warp;
  if (task >= R * NH) return;  // whole warps; no block barrier below
  const int r = task / NH, h = task % NH, kvh = h / (NH / NKV), n = pos[r] + 1;
  const float* qv = q + ((size_t)r * NH + h) * HD;
  for (int d = lane; d < HD; d += 32) qs[warp][d] = qv[d];
  __syncwarp();
  const size_t own = ((size_t)slot[r] * NKV + kvh) * max_len * HD;
  const size_t pre = pslot[r] >= 0 ? ((size_t)pslot[r] * NKV + kvh) * max_len * HD : own;
  const int pl = pslot[r] >= 0 ? plen[r] : 0;
  float m = -INFINITY, l = 0.f, acc[DPL];
#pragma unroll
  for (int i = 0; i < DPL; i++) acc[i] = 0.f;
  for (int j0 = 0; j0 < n; j0 += 32) {
    const int j = j0 + lane;
    float s = -INFINITY;
    if (j < n) s = dot_kv(qs[warp], Kc + (j < pl ? pre : own) + (size_t)j * HD, HD) * scale;
    const float mnew = fmaxf(m, warp_max(s));
    const float p = j < n ? expf(s - mnew) : 0.f;
    const float corr = expf(m - mnew);
    l = l * corr + warp_sum(p);
#pragma unroll
    for (int i = 0; i < DPL; i++) acc[i] *= corr;
    const int jn = imin(32, n - j0);
    for (int jj = 0; jj < jn; jj++) {
      const float pj = __shfl_sync(0xffffffffu, p, jj);
      const int jp = j0 + jj;
      const float* vr = Vc + (jp < pl ? pre : own) + (size_t)jp * HD;
#pragma unroll
      for (int i = 0; i < DPL; i++) {
        const int d = lane + 32 * i;
        if (d < HD) acc[i] = fmaf(pj, vr[d], acc[i]);
      }
    }
    m = mnew;
  }
  float* o = out + ((size_t)r * NH + h) * HD;
  const float inv = 1.f / l;
#pragma unroll
  for (int i = 0; i < DPL; i++) {
    const int d = lane + 32 * i;
    if (d < HD) o[d] = acc[i] * inv;
  }
}

}  // namespace

void sample_rows(const float* logits, int V, const int32_t* host_rows, int R, const float* values, const SampleOptions& opt,
                 const double* u, TokenRecord* out) {
  if (R <= 0) return;
  // workspace: weights [R, V] | f_out [R, 4] | u [R] (double) | rows [R] | tokens [R]
  const size_t wf = (size_t)R * V, fo = (size_t)4 * R;
  const size_t bytes = (wf + fo) * sizeof(float) + (size_t)R * sizeof(double) + (size_t)2 * R * sizeof(int32_t) + 64;
  char* base = static_cast<char*>(workspace(bytes));
  float* scratch = reinterpret_cast<float*>(base);
  float* f_out = scratch + wf;
  double* d_u = reinterpret_cast<double*>(base + ((wf + fo) * sizeof(float) + 7) / 8 * 8);
  int32_t* d_rows = reinterpret_cast<int32_t*>(d_u + R);
  int32_t* d_tok = d_rows + R;
  copy_to_device(d_u, u, sizeof(double) * R);
  copy_to_device(d_rows, host_rows, sizeof(int32_t) * R);
  SampleArgs a{logits, V, d_rows, values, scratch, opt.temperature, opt.top_k, opt.top_p, d_u, d_tok, f_out};
  launch("sample", sample_k, dim3(R), dim3(ST), 0, a);
  std::vector<int32_t> tok(R);
  std::vector<float> f(fo);
  copy_to_host(tok.data(), d_tok, sizeof(int32_t) * R);
  copy_to_host(f.data(), f_out, sizeof(float) * fo);
  for (int r = 0; r < R; r++) {
    out[r].slot = host_rows[r];
    out[r].token = tok[r];
    out[r].logprob = f[4 * r];
    out[r].scaled_logprob = f[4 * r + 1];
    out[r].sample_logprob = f[4 * r + 2];
    out[r].value = f[4 * r + 3];
  }
}

void rope_rows(float* x, const int32_t* pos, const float* cosv, const float* sinv, int R, int H, int HD) {
  const int64_t n = (int64_t)R * H * (HD / 2);
  if (n > 0) launch("rope_rows", rope_rows_k, dim3(ceil_div(n, 256)), dim3(256), 0, x, pos, cosv, sinv, R, H, HD);
}
void kv_write(float* Kc, float* Vc, const float* k, const float* v, const int32_t* slot, const int32_t* pos, int R, int NKV,
              int HD, int max_len) {
  const int64_t n = (int64_t)R * NKV * HD;
  if (n > 0) launch("kv_write", kv_write_k, dim3(ceil_div(n, 256)), dim3(256), 0, Kc, Vc, k, v, slot, pos, R, NKV, HD, max_len);
}
void kv_copy(float* Kc, float* Vc, int L, int slots, int NKV, int max_len, int HD, int dst, int src, int from, int n) {
  const int64_t total = (int64_t)L * NKV * n * HD;
  if (total > 0)
    launch("kv_copy", kv_copy_k, dim3(ceil_div(total, 256)), dim3(256), 0, Kc, Vc, L, slots, NKV, max_len, HD, dst, src, from, n);
}
void decode_attention(float* out, const float* q, const float* Kc, const float* Vc, const int32_t* slot, const int32_t* pos,
                      const int32_t* pslot, const int32_t* plen, int R, int NH, int NKV, int HD, int max_len) {
  if (R <= 0) return;
  FARM_CHECK(HD % 2 == 0 && HD <= kMaxHeadDim, "CUDA decoding supports even head_dim up to ", kMaxHeadDim);
  launch("decode_attention", decode_attention_k, dim3(ceil_div((int64_t)R * NH, 8)), dim3(256), 0, out, q, Kc, Vc, slot, pos,
         pslot, plen, R, NH, NKV, HD, max_len, 1.0f / sqrtf((float)HD));
}

}  // namespace farm::cuda
