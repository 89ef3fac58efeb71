// Vectorized row primitives for the CPU kernels (AVX2+FMA when the CPU has it, portable otherwise).
// The choice is made once per process, so results are bit-identical run to run on one machine.
#pragma once
#include <cstdint>

namespace farm::cpu {

struct VecMath {
  // y[i] = exp(x[i] - shift); returns the sum of y (y may alias x).
  float (*exp_shift_sum)(float* y, const float* x, float shift, int n);
  // returns sum exp(x[i]-shift) and, in *wsum, sum exp(x[i]-shift) * x[i] (x untouched).
  float (*exp_shift_sum_weighted)(const float* x, float shift, int n, float* wsum);
  float (*max)(const float* x, int n);
  float (*dot)(const float* a, const float* b, int n);
  float (*sumsq)(const float* x, int n);
  // h[i] = silu(gate[i]) * up[i]
  void (*silu_mul)(float* h, const float* gate, const float* up, int64_t n);
  // dgate, dup from dh (the SwiGLU backward)
  void (*silu_mul_backward)(float* dgate, float* dup, const float* dh, const float* gate, const float* up, int64_t n);
};
const VecMath& vm();

}  // namespace farm::cpu
