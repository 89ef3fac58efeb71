// Kernels of KV-cache decoding: few rows (live sequences) against whole weight matrices. Each output
// element is computed by one thread with a fixed instruction sequence that does not depend on how many
// rows are processed together, so a sequence's results are bit-identical whatever the batch composition
// or the thread count.
#pragma once
#include <cstdint>
#include <cstdlib>
#include <memory>
#include "team.h"

namespace farm::decode {

// Weights as decoding reads them. A matrix W [N, K] (row-major, out x in) is repacked into panels of
// panel_width() output columns, each stored k-major ([K][P]): a micro-kernel loads one k's weights of P
// columns and broadcasts activations, so every output accumulates in one fp32 FMA chain over k in order
// (no horizontal sums, the same instruction sequence for any number of rows). BF16 panels hold the weights
// rounded to nearest even (half the bytes a step streams); kernels widen them to fp32 exactly, and
// activations and accumulation stay fp32.
enum class WeightType : uint8_t { F32 = 0, BF16 = 1 };
const char* weight_type_name(WeightType t);
int panel_width();  // P of this process's kernels: 32 (AVX-512), 8 (AVX2, portable)

class PackedMatrix {
 public:
  // Bytes the packed form of a [N, K] matrix takes (a multiple of 64).
  static size_t storage_bytes(int N, int K, WeightType type);
  // Packs W (read here only) into storage (64-byte aligned, storage_bytes long; null: owned memory).
  // Parallel over panels on team (null: this thread).
  void pack(const float* W, int N, int K, WeightType type, Team* team, uint8_t* storage = nullptr);
  int N = 0, K = 0, panels = 0;
  WeightType type = WeightType::F32;
  size_t bytes() const { return (size_t)panels * panel_bytes_; }
  const void* panel(int p) const { return data_ + (size_t)p * panel_bytes_; }

 private:
  uint8_t* data_ = nullptr;
  std::unique_ptr<uint8_t[], void (*)(void*)> owned_{nullptr, std::free};
  size_t panel_bytes_ = 0;
};

// One matrix of a fused linear: out[m, 0:N] (=|+=) x[m, :] · W^T.
struct PackedSeg {
  const PackedMatrix* W;
  float* out;
  int ldo;
};

// out = x W^T for every segment (segments share x [M, K], row stride ldx; all have K columns); accumulate
// adds onto out. Parallel over the panels of all segments together (one team run; team may be null).
void linear(const float* x, int ldx, int M, const PackedSeg* segs, int nseg, bool accumulate, Team* team);
// h = silu(x Wg^T) * (x Wu^T), the SwiGLU of an MLP, per panel in registers and a small tile: gate and up
// are never written. Bit-identical to linear() of both followed by silu_mul().
void linear_swiglu(const float* x, int ldx, int M, const PackedMatrix& gate, const PackedMatrix& up, float* h, int ldh,
                   Team* team);

// A run of consecutive cache positions: n rows of K and V (row stride given to attend()), fp32 or bf16.
struct KVSegment {
  const void* K;
  const void* V;
  int n;
};

// One query row against a sequence's cache, given as segments in position order (a shared prompt, then
// the sequence's own tokens): out[HD] = softmax(scale * q K^T) V. Each score and the weighted sum are
// computed alike however the positions are split into segments. scratch holds all positions. bf16: the
// cache holds bfloat16 (widened exactly; scores and sums in fp32).
void attend(const float* q, const KVSegment* segs, int nseg, int ld, int HD, float scale, float* out, float* scratch,
            bool bf16 = false);
// dst[i] = src[i] rounded to bfloat16 (nearest even).
void to_bf16(uint16_t* dst, const float* src, int n);

// Vectorized helpers (AVX2 when the CPU has it).
float dot(const float* a, const float* b, int n);
void axpy(float* y, float a, const float* x, int n);  // y += a x
void silu_mul(float* g, const float* u, int64_t n);   // g = silu(g) * u (SwiGLU)
const char* impl_name();

}  // namespace farm::decode
