// A CPU emulation of the small part of CUDA that our kernels use, so that the very same kernel source runs
// (slowly) on a machine without a GPU: each CUDA thread is a fiber, the threads of one block run together,
// blocks run one after another. __shared__ becomes `static` (blocks never overlap), __syncthreads() and
// the warp intrinsics are barriers between fibers, and mma.sync is computed from the fragment layout of the
// PTX ISA. Used by the FARM_CUDA_EMU build only (tests of the CUDA backend's logic where no GPU exists);
// it proves indexing, reductions, masking and host orchestration, not timing or the memory model.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>

struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

namespace farm::emu {
// Runs body() once per thread of every block of the grid. smem: bytes of dynamic shared memory (filled
// with NaN bytes at each block, so that reading it before writing shows up in results).
void launch(const char* name, dim3 grid, dim3 block, size_t smem, const std::function<void()>& body);
const dim3& thread_idx();
const dim3& block_idx();
const dim3& block_dim();
const dim3& grid_dim();
void* dynamic_smem();
void syncthreads();
void syncwarp();
// Warp exchange: every lane of the current warp publishes `v`; returns the value published by lane `src`.
uint64_t warp_exchange(uint64_t v, int src);
int lane_id();
// D = A(16x8) B(8x8) + C with the .tf32 fragment layout of mma.m16n8k8 (A row-major, B column-major).
void mma_m16n8k8_tf32(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4]);
}  // namespace farm::emu

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
#define __shared__ static
#define threadIdx (::farm::emu::thread_idx())
#define blockIdx (::farm::emu::block_idx())
#define blockDim (::farm::emu::block_dim())
#define gridDim (::farm::emu::grid_dim())
#define warpSize 32
#define __syncthreads() ::farm::emu::syncthreads()
#define __syncwarp(...) ::farm::emu::syncwarp()

using std::isfinite;
using std::isinf;
using std::isnan;
inline float rsqrtf(float x) { return 1.f / std::sqrt(x); }
inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline unsigned __float_as_uint(float f) { unsigned u; std::memcpy(&u, &f, 4); return u; }
inline float __uint_as_float(unsigned u) { float f; std::memcpy(&f, &u, 4); return f; }
inline int __float_as_int(float f) { int u; std::memcpy(&u, &f, 4); return u; }
inline float __int_as_float(int u) { float f; std::memcpy(&f, &u, 4); return f; }

template <typename T>
inline T farm_emu_shfl(T v, int src) {
  static_assert(sizeof(T) <= 8, "shuffle of a type wider than 8 bytes");
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof(T));
  bits = ::farm::emu::warp_exchange(bits, src & 31);
  T out;
  std::memcpy(&out, &bits, sizeof(T));
  return out;
}
template <typename T>
inline T __shfl_sync(unsigned, T v, int src) { return farm_emu_shfl(v, src); }
template <typename T>
inline T __shfl_xor_sync(unsigned, T v, int mask) { return farm_emu_shfl(v, ::farm::emu::lane_id() ^ mask); }
