// Kernels of KV-cache decoding: few rows (live sequences) against whole weight matrices. Each output
// element is computed by one thread with a fixed instruction sequence that does not depend on how many
// rows are processed together, so a sequence's results are bit-identical whatever the batch composition
// or the thread count.
#pragma once
#include <cstdint>
#include "team.h"

namespace farm::decode {

// One weight matrix of a fused linear: out[m, 0:N] (=|+=) x[m, :] · W[0:N, :]^T, W row-major [N, K].
struct LinearSeg {
  const float* W;
  int N;
  float* out;
  int ldo;
};

// out = x W^T for every segment (segments share x [M, K] with row stride ldx); accumulate adds onto out.
// Parallel over output columns of all segments together (one team run; team may be null: this thread).
void linear(const float* x, int ldx, int M, int K, const LinearSeg* segs, int nseg, bool accumulate, Team* team);

// A run of consecutive cache positions: n rows of K and V (row stride given to attend()).
struct KVSegment {
  const float* K;
  const float* V;
  int n;
};

// One query row against a sequence's cache, given as segments in position order (a shared prompt, then
// the sequence's own tokens): out[HD] = softmax(scale * q K^T) V. Each score and the weighted sum are
// computed alike however the positions are split into segments. scratch holds all positions.
void attend(const float* q, const KVSegment* segs, int nseg, int ld, int HD, float scale, float* out, float* scratch);

// Vectorized helpers (AVX2 when the CPU has it).
float dot(const float* a, const float* b, int n);
void axpy(float* y, float a, const float* x, int n);  // y += a x
void silu_mul(float* g, const float* u, int64_t n);   // g = silu(g) * u (SwiGLU)
const char* impl_name();

}  // namespace farm::decode
