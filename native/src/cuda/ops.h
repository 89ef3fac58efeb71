// Host-callable launchers of the CUDA kernels (every pointer is device memory unless named host_*), as plain
// C++ so that the model and decoding code (.cc) need no CUDA headers. The table kernels have the CPU
// kernels' signatures and semantics (farm/kernels.h); the rest serve the device model and decoding.
// Every kernel gives the same bits for the same inputs on a given GPU: reductions have a fixed shape and
// order, and nothing uses atomics.
#pragma once
#include <cstddef>
#include <cstdint>
#include "farm/kernels.h"

namespace farm::cuda {

const Kernels& kernels();  // the CUDA table (attention's `att`: see attention_saved_floats)

// Floats of saved state the CUDA attention needs in `att` (the CPU kernel keeps [B,NH,T,T] probabilities;
// this one keeps the log-sum-exp of each row plus the backward's row sums: [2,B,NH,T], no T x T matrix).
inline size_t attention_saved_floats(int B, int T, int NH) { return (size_t)2 * B * NH * T; }
constexpr int kMaxHeadDim = 128;  // attention kernels keep a row of q, k, v per lane group in registers

// GEMM: TF32 tensor cores (mma.sync m16n8k8, fp32 accumulation), or exact fp32 FMA (parity tests).
enum class GemmPrecision { TF32 = 0, FP32 = 1 };
void set_gemm_precision(GemmPrecision p);  // process-wide; start-up default: FARM_CUDA_GEMM=tf32|fp32, else tf32
GemmPrecision gemm_precision();
const char* gemm_precision_name(GemmPrecision p);
// Tests: force the TF32 block tile (64 or 128; 0: chosen by shape and SM count, the default).
void set_gemm_tile(int tile);
void gemm(GemmPrecision p, bool transA, bool transB, int M, int N, int K, const float* A, int lda, const float* B,
          int ldb, float beta, float* C, int ldc);

// dwte[seg_token[s]] += sum of dout rows order[seg_start[s] .. seg_start[s+1]) (rows ascending within a
// segment: the CPU kernel's summation order, so the result has the same bits), nseg segments.
void embedding_backward_sorted(float* dwte, const float* dout, const int32_t* order, const int32_t* seg_start,
                               const int32_t* seg_token, int nseg, int C);
// values[i] = x[i] . w + b[0]
void scalar_head_forward(float* values, const float* x, const float* w, const float* b, int BT, int C);
// dx[i] += dv[i] * w; dw += sum_i dv[i] x[i]; db += sum_i dv[i]
void scalar_head_backward(float* dx, float* dw, float* db, const float* dv, const float* x, const float* w, int BT, int C);
// dst[r] = src[rows[r]] (rows of C floats)
void gather_rows(float* dst, const float* src, const int32_t* rows, int R, int C);
// dst[rows[r]] = src[r]
void scatter_rows(float* dst, const float* src, const int32_t* rows, int R, int C);

// y[i] += x[i] (an external gradient joining the heads' gradients on the final hidden state)
void add_inplace(float* y, const float* x, size_t n);

// AdamW (PyTorch semantics) over n parameters; decay_mask_bits: one bit per 16-float group (parameters are
// 16-float aligned), set where weight decay applies. lr_step = lr / bc1, sbc2 = sqrt(bc2).
void adamw(float* w, const float* g, float* m, float* v, const uint32_t* decay_bits, size_t n, float beta1, float beta2,
           float eps, float decay, float lr_step, float sbc2);
// sum of x^2 in double, in fixed chunks (the same value on every run); returns it to the host.
double sum_squares(const float* x, size_t n);
void scale(float* x, size_t n, float s);

// A grow-only scratch buffer on the device, shared by kernels of one call (everything runs in order on
// one stream, so one buffer serves all).
void* workspace(size_t bytes);

}  // namespace farm::cuda
