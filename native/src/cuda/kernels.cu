// CUDA kernels of the transformer (fp32) other than the GEMM and attention: embedding, RMSNorm, RoPE, SwiGLU,
// log-softmax with entropy, scalar head, row gathers, AdamW, norms. The formulas follow the CPU kernels
// (native/src/cpu/kernels.cc) term by term; reductions use a fixed shape so results repeat bit for bit.
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include "compat.cuh"
#include "ops.h"

namespace farm::cuda {
namespace {

constexpr int kRowThreads = 256;  // one block per row for row kernels
constexpr int kColChunk = 64;     // rows per partial sum of column reductions

__global__ void embedding_forward_k(float* out, const int32_t* tokens, const float* wte, int C) {
  const int i = blockIdx.x;
  const float* src = wte + (size_t)tokens[i] * C;
  float* dst = out + (size_t)i * C;
  for (int c = threadIdx.x; c < C; c += blockDim.x) dst[c] = src[c];
}

// One thread per column, rows in order: the CPU kernel's order (the table's reference version).
__global__ void embedding_backward_k(float* dwte, const float* dout, const int32_t* tokens, int BT, int C) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  for (int i = 0; i < BT; i++) dwte[(size_t)tokens[i] * C + c] += dout[(size_t)i * C + c];
}

__global__ void embedding_backward_sorted_k(float* dwte, const float* dout, const int32_t* order, const int32_t* seg_start,
                                            const int32_t* seg_token, int C) {
  const int s = blockIdx.x;
  const int j0 = seg_start[s], j1 = seg_start[s + 1];
  float* dst = dwte + (size_t)seg_token[s] * C;
  for (int c = threadIdx.x; c < C; c += blockDim.x) {
    float acc = dst[c];
    for (int j = j0; j < j1; j++) acc += dout[(size_t)order[j] * C + c];
    dst[c] = acc;
  }
}

__global__ void rmsnorm_forward_k(float* out, float* rstd, const float* x, const float* w, int C, float eps) {
  __shared__ float red[32];
  const int i = blockIdx.x;
  const float* xi = x + (size_t)i * C;
  float s = 0.f;
  for (int c = threadIdx.x; c < C; c += blockDim.x) s += xi[c] * xi[c];
  s = block_sum(s, red);
  const float r = 1.0f / sqrtf(s / C + eps);
  if (threadIdx.x == 0) rstd[i] = r;
  float* oi = out + (size_t)i * C;
  for (int c = threadIdx.x; c < C; c += blockDim.x) oi[c] = (xi[c] * r) * w[c];
}

__global__ void rmsnorm_backward_dx_k(float* dx, const float* dout, const float* x, const float* w, const float* rstd,
                                      int C, bool accumulate) {
  __shared__ float red[32];
  const int i = blockIdx.x;
  const float* xi = x + (size_t)i * C;
  const float* di = dout + (size_t)i * C;
  float* dxi = dx + (size_t)i * C;
  const float r = rstd[i];
  float s = 0.f;
  for (int c = threadIdx.x; c < C; c += blockDim.x) s += (di[c] * w[c]) * xi[c];
  s = block_sum(s, red);
  const float proj = s * (r * r * r) / C;
  for (int c = threadIdx.x; c < C; c += blockDim.x) {
    const float g = (di[c] * w[c]) * r - xi[c] * proj;
    dxi[c] = accumulate ? dxi[c] + g : g;
  }
}

// partial[chunk, c] = sum over the chunk's rows i of a[i, c] * b[i, c] * (scale ? scale[i] : 1), for column
// reductions (dweight of RMSNorm, the scalar head's dw). Block: 32 columns x 8 row lanes; grid (row chunk, column block).
__global__ void colsum_partial_k(float* partial, const float* a, const float* b, const float* row_scale, int BT, int C) {
  __shared__ float red[8][33];
  const int cx = threadIdx.x & 31, ry = threadIdx.x >> 5;
  const int c = blockIdx.y * 32 + cx, chunk = blockIdx.x;
  const int r0 = chunk * kColChunk, r1 = imin(BT, r0 + kColChunk);
  float acc = 0.f;
  if (c < C)
    for (int i = r0 + ry; i < r1; i += 8) {
      float v = a[(size_t)i * C + c] * b[(size_t)i * C + c];
      acc += row_scale ? v * row_scale[i] : v;
    }
  red[ry][cx] = acc;
  __syncthreads();
  if (ry == 0 && c < C) {
    float s = 0.f;
    for (int k = 0; k < 8; k++) s += red[k][cx];
    partial[(size_t)chunk * C + c] = s;
  }
}

// partial[chunk, c] = sum over the chunk's rows of dv[i] * x[i, c]
__global__ void colsum_scaled_partial_k(float* partial, const float* dv, const float* x, int BT, int C) {
  __shared__ float red[8][33];
  const int cx = threadIdx.x & 31, ry = threadIdx.x >> 5;
  const int c = blockIdx.y * 32 + cx, chunk = blockIdx.x;
  const int r0 = chunk * kColChunk, r1 = imin(BT, r0 + kColChunk);
  float acc = 0.f;
  if (c < C)
    for (int i = r0 + ry; i < r1; i += 8) acc += dv[i] * x[(size_t)i * C + c];
  red[ry][cx] = acc;
  __syncthreads();
  if (ry == 0 && c < C) {
    float s = 0.f;
    for (int k = 0; k < 8; k++) s += red[k][cx];
    partial[(size_t)chunk * C + c] = s;
  }
}

// dst[c] += sum over chunks (in order) of partial[chunk, c]
__global__ void colsum_finish_k(float* dst, const float* partial, int nchunks, int C) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  float s = 0.f;
  for (int k = 0; k < nchunks; k++) s += partial[(size_t)k * C + c];
  dst[c] += s;
}

__global__ void rope_k(float* x, const float* cosv, const float* sinv, int T, int H, int HD, float sgn, int64_t total) {
  const int half = HD / 2;
  const int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (e >= total) return;
  const int i = (int)(e % half);
  const int64_t bth = e / half;  // (b*T + t)*H + h
  const int t = (int)((bth / H) % T);
  float* v = x + bth * HD;
  const float a = v[i], b = v[i + half], c = cosv[(size_t)t * half + i], s = sgn * sinv[(size_t)t * half + i];
  v[i] = a * c - b * s;
  v[i + half] = b * c + a * s;
}

__global__ void swiglu_forward_k(float* h, const float* gate, const float* up, int64_t n) {
  const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) h[i] = gate[i] / (1.f + expf(-gate[i])) * up[i];
}

__global__ void swiglu_backward_k(float* dgate, float* dup, const float* dh, const float* gate, const float* up, int64_t n) {
  const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const float g = gate[i], sg = 1.f / (1.f + expf(-g));
  dup[i] = dh[i] * g * sg;
  dgate[i] = dh[i] * up[i] * sg * (1.f + g * (1.f - sg));
}

__global__ void logsoftmax_forward_k(float* logp, float* entropy, float* lse, const float* logits, const int32_t* targets,
                                     int V) {
  __shared__ float red[32];
  const int i = blockIdx.x;
  const float* z = logits + (size_t)i * V;
  float m = -INFINITY;
  for (int v = threadIdx.x; v < V; v += blockDim.x) m = fmaxf(m, z[v]);
  m = block_max(m, red);
  float s = 0.f, w = 0.f;
  for (int v = threadIdx.x; v < V; v += blockDim.x) {
    const float e = expf(z[v] - m);
    s += e;
    w += e * z[v];
  }
  s = block_sum(s, red);
  w = block_sum(w, red);
  if (threadIdx.x == 0) {
    const float l = m + logf(s);
    if (entropy) entropy[i] = l - w / s;
    lse[i] = l;
    const int t = targets ? targets[i] : -1;
    logp[i] = t >= 0 ? z[t] - l : 0.f;
  }
}

__global__ void logsoftmax_backward_k(float* z_to_dz, const float* dlogp, const float* dentropy, const float* lse,
                                      const float* entropy, const int32_t* targets, int V) {
  const int i = blockIdx.x;
  float* z = z_to_dz + (size_t)i * V;
  float gl = dlogp ? dlogp[i] : 0.f;
  const float ge = dentropy ? dentropy[i] : 0.f;
  const int t = targets ? targets[i] : -1;
  if (t < 0) gl = 0.f;
  if (gl == 0.f && ge == 0.f) {
    for (int v = threadIdx.x; v < V; v += blockDim.x) z[v] = 0.f;
    return;
  }
  const float l = lse[i];
  if (ge == 0.f) {
    for (int v = threadIdx.x; v < V; v += blockDim.x) z[v] = -gl * expf(z[v] - l) + (v == t ? gl : 0.f);
  } else {
    const float H = entropy[i];
    for (int v = threadIdx.x; v < V; v += blockDim.x) {
      const float lp = z[v] - l, p = expf(lp);
      z[v] = -gl * p - ge * p * (lp + H) + (v == t ? gl : 0.f);
    }
  }
}

// One warp per row.
__global__ void scalar_head_forward_k(float* values, const float* x, const float* w, const float* b, int BT, int C) {
  const int i = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5), lane = threadIdx.x & 31;
  if (i >= BT) return;
  const float* xi = x + (size_t)i * C;
  float s = 0.f;
  for (int c = lane; c < C; c += 32) s += xi[c] * w[c];
  s = warp_sum(s);
  if (lane == 0) values[i] = s + b[0];
}

__global__ void scalar_head_dx_k(float* dx, const float* dv, const float* w, int C) {
  const int i = blockIdx.x;
  const float d = dv[i];
  if (d == 0.f) return;
  float* dxi = dx + (size_t)i * C;
  for (int c = threadIdx.x; c < C; c += blockDim.x) dxi[c] += d * w[c];
}

// db += sum dv, in double (as the CPU does), one block.
__global__ void sum_to_k(float* db, const float* dv, int BT) {
  __shared__ double red[32];
  double s = 0;
  for (int i = threadIdx.x; i < BT; i += blockDim.x) s += dv[i];
  s = block_sum(s, red);
  if (threadIdx.x == 0) db[0] += (float)s;
}

__global__ void gather_rows_k(float* dst, const float* src, const int32_t* rows, int C) {
  const int r = blockIdx.x;
  const float* s = src + (size_t)rows[r] * C;
  float* d = dst + (size_t)r * C;
  for (int c = threadIdx.x; c < C; c += blockDim.x) d[c] = s[c];
}
__global__ void scatter_rows_k(float* dst, const float* src, const int32_t* rows, int C) {
  const int r = blockIdx.x;
  const float* s = src + (size_t)r * C;
  float* d = dst + (size_t)rows[r] * C;
  for (int c = threadIdx.x; c < C; c += blockDim.x) d[c] = s[c];
}

__global__ void add_inplace_k(float* y, const float* x, int64_t n) {
  const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] += x[i];
}

__global__ void adamw_k(float* w, const float* g, float* m, float* v, const uint32_t* decay_bits, int64_t n, float b1,
                        float b2, float eps, float decay, float step, float sbc2) {
  const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const int64_t grp = i >> 4;
  const bool dec = (decay_bits[grp >> 5] >> (grp & 31)) & 1u;
  const float gi = g[i];
  const float mi = b1 * m[i] + (1.f - b1) * gi;
  const float vi = b2 * v[i] + (1.f - b2) * gi * gi;
  m[i] = mi;
  v[i] = vi;
  w[i] = w[i] * (dec ? decay : 1.f) - step * mi / (sqrtf(vi) / sbc2 + eps);
}

constexpr int64_t kSumChunk = 1 << 16;  // elements per partial sum of sum_squares
__global__ void sumsq_partial_k(double* partial, const float* x, int64_t n) {
  __shared__ double red[32];
  const int64_t lo = (int64_t)blockIdx.x * kSumChunk, hi = lo + kSumChunk < n ? lo + kSumChunk : n;
  double s = 0;
  for (int64_t i = lo + threadIdx.x; i < hi; i += blockDim.x) s += (double)x[i] * x[i];
  s = block_sum(s, red);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}
__global__ void sum_partials_k(double* out, const double* partial, int n) {
  __shared__ double red[32];
  double s = 0;
  for (int i = threadIdx.x; i < n; i += blockDim.x) s += partial[i];
  s = block_sum(s, red);
  if (threadIdx.x == 0) out[0] = s;
}

__global__ void scale_k(float* x, int64_t n, float s) {
  const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) x[i] *= s;
}

// ---- table entries (CPU signatures) ----

void t_gemm(bool ta, bool tb, int M, int N, int K, const float* A, int lda, const float* B, int ldb, float beta, float* C,
            int ldc) {
  gemm(gemm_precision(), ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
}
void t_embedding_forward(float* out, const int32_t* tokens, const float* wte, int BT, int C) {
  if (BT > 0) launch("embedding_forward", embedding_forward_k, dim3(BT), dim3(128), 0, out, tokens, wte, C);
}
void t_embedding_backward(float* dwte, const float* dout, const int32_t* tokens, int BT, int C) {
  if (BT > 0) launch("embedding_backward", embedding_backward_k, dim3(ceil_div(C, 128)), dim3(128), 0, dwte, dout, tokens, BT, C);
}
void t_rmsnorm_forward(float* out, float* rstd, const float* x, const float* w, int BT, int C, float eps) {
  if (BT > 0) launch("rmsnorm_forward", rmsnorm_forward_k, dim3(BT), dim3(kRowThreads), 0, out, rstd, x, w, C, eps);
}
void t_rmsnorm_backward(float* dx, float* dw, const float* dout, const float* x, const float* w, const float* rstd, int BT,
                        int C, bool accumulate) {
  if (BT <= 0) return;
  launch("rmsnorm_backward_dx", rmsnorm_backward_dx_k, dim3(BT), dim3(kRowThreads), 0, dx, dout, x, w, rstd, C, accumulate);
  const int nch = (int)ceil_div(BT, kColChunk);
  float* partial = static_cast<float*>(workspace(sizeof(float) * (size_t)nch * C));
  launch("rmsnorm_backward_dw", colsum_partial_k, dim3(nch, ceil_div(C, 32)), dim3(256), 0, partial, dout, x, rstd, BT, C);
  launch("rmsnorm_backward_dw_sum", colsum_finish_k, dim3(ceil_div(C, 128)), dim3(128), 0, dw, (const float*)partial, nch, C);
}
void t_rope(float* x, const float* cosv, const float* sinv, int B, int T, int H, int HD, bool inverse) {
  const int64_t total = (int64_t)B * T * H * (HD / 2);
  if (total > 0)
    launch("rope", rope_k, dim3(ceil_div(total, 256)), dim3(256), 0, x, cosv, sinv, T, H, HD, inverse ? -1.f : 1.f, total);
}
void t_swiglu_forward(float* h, const float* gate, const float* up, int64_t n) {
  if (n > 0) launch("swiglu_forward", swiglu_forward_k, dim3(ceil_div(n, 256)), dim3(256), 0, h, gate, up, n);
}
void t_swiglu_backward(float* dgate, float* dup, const float* dh, const float* gate, const float* up, int64_t n) {
  if (n > 0) launch("swiglu_backward", swiglu_backward_k, dim3(ceil_div(n, 256)), dim3(256), 0, dgate, dup, dh, gate, up, n);
}
void t_logsoftmax_forward(float* logp, float* entropy, float* lse, const float* logits, const int32_t* targets, int BT, int V) {
  if (BT > 0)
    launch("logsoftmax_forward", logsoftmax_forward_k, dim3(BT), dim3(kRowThreads), 0, logp, entropy, lse, logits, targets, V);
}
void t_logsoftmax_backward(float* z, const float* dlogp, const float* dentropy, const float* lse, const float* entropy,
                           const int32_t* targets, int BT, int V) {
  if (BT > 0)
    launch("logsoftmax_backward", logsoftmax_backward_k, dim3(BT), dim3(kRowThreads), 0, z, dlogp, dentropy, lse, entropy,
           targets, V);
}

}  // namespace

// attention.cu
void attention_forward(float* out, float* att, const float* q, const float* k, const float* v, int B, int T, int NH, int NKV,
                       int HD);
void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* att, const float* q, const float* k,
                        const float* v, int B, int T, int NH, int NKV, int HD);

const Kernels& kernels() {
  static const Kernels k = {"cuda",
                            t_gemm,
                            t_embedding_forward,
                            t_embedding_backward,
                            t_rmsnorm_forward,
                            t_rmsnorm_backward,
                            t_rope,
                            attention_forward,
                            attention_backward,
                            t_swiglu_forward,
                            t_swiglu_backward,
                            t_logsoftmax_forward,
                            t_logsoftmax_backward};
  return k;
}

void embedding_backward_sorted(float* dwte, const float* dout, const int32_t* order, const int32_t* seg_start,
                               const int32_t* seg_token, int nseg, int C) {
  if (nseg > 0)
    launch("embedding_backward_sorted", embedding_backward_sorted_k, dim3(nseg), dim3(128), 0, dwte, dout, order, seg_start,
           seg_token, C);
}

void scalar_head_forward(float* values, const float* x, const float* w, const float* b, int BT, int C) {
  if (BT > 0) launch("scalar_head_forward", scalar_head_forward_k, dim3(ceil_div(BT, 8)), dim3(256), 0, values, x, w, b, BT, C);
}

void scalar_head_backward(float* dx, float* dw, float* db, const float* dv, const float* x, const float* w, int BT, int C) {
  if (BT <= 0) return;
  launch("scalar_head_dx", scalar_head_dx_k, dim3(BT), dim3(128), 0, dx, dv, w, C);
  const int nch = (int)ceil_div(BT, kColChunk);
  float* partial = static_cast<float*>(workspace(sizeof(float) * (size_t)nch * C));
  launch("scalar_head_dw", colsum_scaled_partial_k, dim3(nch, ceil_div(C, 32)), dim3(256), 0, partial, dv, x, BT, C);
  launch("scalar_head_dw_sum", colsum_finish_k, dim3(ceil_div(C, 128)), dim3(128), 0, dw, (const float*)partial, nch, C);
  launch("scalar_head_db", sum_to_k, dim3(1), dim3(256), 0, db, dv, BT);
}

void gather_rows(float* dst, const float* src, const int32_t* rows, int R, int C) {
  if (R > 0) launch("gather_rows", gather_rows_k, dim3(R), dim3(128), 0, dst, src, rows, C);
}
void scatter_rows(float* dst, const float* src, const int32_t* rows, int R, int C) {
  if (R > 0) launch("scatter_rows", scatter_rows_k, dim3(R), dim3(128), 0, dst, src, rows, C);
}

void add_inplace(float* y, const float* x, size_t n) {
  if (n > 0) launch("add_inplace", add_inplace_k, dim3(ceil_div((int64_t)n, 256)), dim3(256), 0, y, x, (int64_t)n);
}

void adamw(float* w, const float* g, float* m, float* v, const uint32_t* decay_bits, size_t n, float beta1, float beta2,
           float eps, float decay, float lr_step, float sbc2) {
  if (n > 0)
    launch("adamw", adamw_k, dim3(ceil_div((int64_t)n, 256)), dim3(256), 0, w, g, m, v, decay_bits, (int64_t)n, beta1, beta2,
           eps, decay, lr_step, sbc2);
}

double sum_squares(const float* x, size_t n) {
  if (n == 0) return 0;
  const int nch = (int)ceil_div((int64_t)n, kSumChunk);
  double* part = static_cast<double*>(workspace(sizeof(double) * (size_t)(nch + 1)));
  launch("sum_squares", sumsq_partial_k, dim3(nch), dim3(256), 0, part + 1, x, (int64_t)n);
  launch("sum_squares_total", sum_partials_k, dim3(1), dim3(256), 0, part, (const double*)(part + 1), nch);
  double s = 0;
  copy_to_host(&s, part, sizeof(double));
  return s;
}

void scale(float* x, size_t n, float s) {
  if (n > 0) launch("scale", scale_k, dim3(ceil_div((int64_t)n, 256)), dim3(256), 0, x, (int64_t)n, s);
}

namespace {
struct Workspace {
  std::mutex mu;
  void* p = nullptr;
  size_t bytes = 0;
};
Workspace& ws() {
  static Workspace* w = new Workspace();  // lives as long as the process (no teardown order issues)
  return *w;
}
}  // namespace

void* workspace(size_t bytes) {
  Workspace& w = ws();
  std::lock_guard<std::mutex> lk(w.mu);
  if (bytes > w.bytes || !w.p) {
    device_free(w.p);  // cudaFree waits for the kernels that may still read the old buffer
    w.p = nullptr;
    w.bytes = 0;
    size_t want = bytes < (1u << 20) ? (1u << 20) : bytes + bytes / 4;
    w.p = device_alloc(want, "kernel workspace");
    w.bytes = want;
  }
  return w.p;
}

}  // namespace farm::cuda
