// The kernel interface of a backend: plain functions over raw float buffers, forward/backward pairs,
// shapes in the argument names (B, T, C, NH, NKV, HD, I, V). The model calls kernels only through a
// Kernels table, so a second backend (CUDA) provides its own table over device buffers.
// Backward kernels accumulate (+=) into parameter gradients and overwrite input gradients unless noted.
#pragma once
#include <cstdint>

namespace farm {

struct Kernels {
  const char* name;
  // Row-major C[M,N] = beta*C + op(A) op(B) (see gemm.h).
  void (*gemm)(bool transA, bool transB, int M, int N, int K, const float* A, int lda, const float* B, int ldb,
               float beta, float* C, int ldc);
  // out[BT,C] = wte[tokens[i]]
  void (*embedding_forward)(float* out, const int32_t* tokens, const float* wte, int BT, int C);
  // dwte[tokens[i]] += dout[i]
  void (*embedding_backward)(float* dwte, const float* dout, const int32_t* tokens, int BT, int C);
  // out = x * rsqrt(mean(x^2) + eps) * weight; rstd[BT] saved.
  void (*rmsnorm_forward)(float* out, float* rstd, const float* x, const float* weight, int BT, int C, float eps);
  // dx (+= when accumulate) and dweight (+=) from dout.
  void (*rmsnorm_backward)(float* dx, float* dweight, const float* dout, const float* x, const float* weight,
                           const float* rstd, int BT, int C, bool accumulate);
  // Rotate-half rotary embedding in place on x[B,T,H,HD] (row stride H*HD), positions t = 0..T-1.
  // inverse = true applies the transpose rotation (the backward).
  void (*rope)(float* x, const float* cos, const float* sin, int B, int T, int H, int HD, bool inverse);
  // Causal attention. q[B,T,NH,HD], k/v[B,T,NKV,HD]; att[B,NH,T,T] probabilities saved (zero above the
  // diagonal); out[B,T,NH,HD]. The backward overwrites dq, dk, dv.
  void (*attention_forward)(float* out, float* att, const float* q, const float* k, const float* v, int B, int T,
                            int NH, int NKV, int HD);
  void (*attention_backward)(float* dq, float* dk, float* dv, const float* dout, const float* att,
                             const float* q, const float* k, const float* v, int B, int T, int NH, int NKV, int HD);
  // h = silu(gate) * up
  void (*swiglu_forward)(float* h, const float* gate, const float* up, int64_t n);
  void (*swiglu_backward)(float* dgate, float* dup, const float* dh, const float* gate, const float* up, int64_t n);
  // Per row of logits[BT,V]: lse[i], logp[i] = logits[i,target] - lse (0 when target < 0),
  // entropy[i] (when not null).
  void (*logsoftmax_forward)(float* logp, float* entropy, float* lse, const float* logits, const int32_t* targets,
                             int BT, int V);
  // In place: logits[i,:] <- dL/dlogits from dlogp[i] and dentropy[i] (either may be null).
  void (*logsoftmax_backward)(float* logits_to_dlogits, const float* dlogp, const float* dentropy,
                              const float* lse, const float* entropy, const int32_t* targets, int BT, int V);
};

const Kernels& cpu_kernels();

}  // namespace farm
