// Counter-based random numbers: every draw is a pure function of (seed, stream, counter), so results
// do not depend on thread count or scheduling.
#pragma once
#include <cmath>
#include <cstdint>

namespace farm {

inline uint64_t mix64(uint64_t z) {  // splitmix64 finalizer
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
inline uint64_t rand_u64(uint64_t seed, uint64_t stream, uint64_t counter) {
  return mix64(mix64(seed ^ mix64(stream + 0x632be59bd9b4e019ULL)) ^ counter);
}
// Uniform in [0, 1) with 24 random bits (exactly representable as float) or 53 bits as double.
inline float rand_uniform(uint64_t seed, uint64_t stream, uint64_t counter) {
  return (float)(rand_u64(seed, stream, counter) >> 40) * (1.0f / 16777216.0f);
}
inline double rand_uniform_d(uint64_t seed, uint64_t stream, uint64_t counter) {
  return (double)(rand_u64(seed, stream, counter) >> 11) * (1.0 / 9007199254740992.0);
}
// Standard normal (Box-Muller on two counters).
inline float rand_normal(uint64_t seed, uint64_t stream, uint64_t counter) {
  double u1 = rand_uniform_d(seed, stream, 2 * counter), u2 = rand_uniform_d(seed, stream, 2 * counter + 1);
  if (u1 < 1e-300) u1 = 1e-300;
  return (float)(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
}

}  // namespace farm
