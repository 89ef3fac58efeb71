// What every CUDA source of the backend includes: the CUDA runtime (or its CPU emulation, emu.h), a launch
// helper that works in both, and the few device helpers shared by the kernels (warp reductions, TF32 mma).
#pragma once
#ifdef FARM_CUDA_EMU
#include "emu.h"
#else
#include <cuda_runtime.h>
#endif
#include <cstddef>
#include <cstdint>
#include "runtime.h"

namespace farm::cuda {

#ifndef FARM_CUDA_EMU
// Throws farm::Error naming the kernel when a launch was refused (bad configuration, broken context).
void check_launch(const char* name);
#endif

// kernel<<<grid, block, smem>>>(args...) on the backend's stream; the same call runs on the emulator.
template <typename... P, typename... A>
inline void launch(const char* name, void (*kernel)(P...), dim3 grid, dim3 block, size_t smem, A... args) {
#ifdef FARM_CUDA_EMU
  ::farm::emu::launch(name, grid, block, smem, [&] { kernel(static_cast<P>(args)...); });
#else
  kernel<<<grid, block, smem, 0>>>(static_cast<P>(args)...);
  check_launch(name);
#endif
}

inline unsigned ceil_div(int64_t a, int64_t b) { return (unsigned)((a + b - 1) / b); }

__device__ __forceinline__ int imin(int a, int b) { return a < b ? a : b; }
__device__ __forceinline__ int imax(int a, int b) { return a > b ? a : b; }

// Butterfly reductions: every lane ends with the same value, combined in the same order on every run.
__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ double warp_sum(double v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Block-wide sum for blocks of a multiple of 32 threads (at most 1024); every thread gets the result.
// `scratch` holds 32 values in shared memory. Fixed combination order: deterministic.
template <typename T>
__device__ __forceinline__ T block_sum(T v, T* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  T r = lane < nwarps ? scratch[lane] : T(0);
  return warp_sum(r);
}
__device__ __forceinline__ float block_max(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float r = lane < nwarps ? scratch[lane] : -INFINITY;
  return warp_max(r);
}

// fp32 -> tf32 (round to nearest, ties away from zero), kept in a 32-bit register as mma expects.
__device__ __forceinline__ uint32_t to_tf32(float x) {
#ifdef FARM_CUDA_EMU
  uint32_t u = __float_as_uint(x);
  if ((u & 0x7f800000u) != 0x7f800000u) u = (u + 0x1000u) & 0xffffe000u;
  return u;
#else
  uint32_t r;
  asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x));
  return r;
#endif
}

// d = a · b + c for one 16x8x8 tile per warp (tf32 inputs, fp32 accumulation).
__device__ __forceinline__ void mma_tf32(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4]) {
#ifdef FARM_CUDA_EMU
  ::farm::emu::mma_m16n8k8_tf32(d, a, b, c);
#else
  asm volatile(
      "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%10,%11,%12,%13};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]));
#endif
}

}  // namespace farm::cuda
