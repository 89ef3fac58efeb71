// Measured peaks of the machine for the profiler's "% of peak" columns: fp32 FMA throughput on the vector
// width the GEMM uses, and read bandwidth of a buffer of a given size, on a given number of threads.
#include <immintrin.h>
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include "farm/common.h"
#include "farm/gemm.h"
#include "farm/profile.h"
#ifdef _OPENMP
#include <omp.h>
#endif

namespace farm::prof {
namespace {

// 12 independent accumulator chains hide the FMA latency (4 cycles x 2 units + slack).
__attribute__((target("avx2,fma"))) double fma_loop_avx2(int64_t iters) {
  __m256 a[12];
  for (int i = 0; i < 12; i++) a[i] = _mm256_set1_ps(0.001f * i);
  const __m256 x = _mm256_set1_ps(0.999999f), y = _mm256_set1_ps(1e-7f);
  for (int64_t n = 0; n < iters; n++)
    for (int i = 0; i < 12; i++) a[i] = _mm256_fmadd_ps(a[i], x, y);
  __m256 s = a[0];
  for (int i = 1; i < 12; i++) s = _mm256_add_ps(s, a[i]);
  float out[8];
  _mm256_storeu_ps(out, s);
  return out[0];
}
__attribute__((target("avx512f"))) double fma_loop_avx512(int64_t iters) {
  __m512 a[12];
  for (int i = 0; i < 12; i++) a[i] = _mm512_set1_ps(0.001f * i);
  const __m512 x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-7f);
  for (int64_t n = 0; n < iters; n++)
    for (int i = 0; i < 12; i++) a[i] = _mm512_fmadd_ps(a[i], x, y);
  __m512 s = a[0];
  for (int i = 1; i < 12; i++) s = _mm512_add_ps(s, a[i]);
  float out[16];
  _mm512_storeu_ps(out, s);
  return out[0];
}
double fma_loop_portable(int64_t iters) {
  float a[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  for (int64_t n = 0; n < iters; n++)
    for (int i = 0; i < 8; i++) a[i] = a[i] * 0.999999f + 1e-7f;
  return a[0] + a[7];
}

__attribute__((target("avx2"))) float read_sum_avx2(const float* p, size_t n) {
  __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    s0 = _mm256_add_ps(s0, _mm256_load_ps(p + i));
    s1 = _mm256_add_ps(s1, _mm256_load_ps(p + i + 8));
    s2 = _mm256_add_ps(s2, _mm256_load_ps(p + i + 16));
    s3 = _mm256_add_ps(s3, _mm256_load_ps(p + i + 24));
  }
  float out[8];
  _mm256_storeu_ps(out, _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
  float t = 0;
  for (float v : out) t += v;
  for (; i < n; i++) t += p[i];
  return t;
}
float read_sum_portable(const float* p, size_t n) {
  float s[8] = {};
  for (size_t i = 0; i < n; i++) s[i & 7] += p[i];
  return s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
}

struct Measure {
  std::map<int, Peaks> peaks;
  std::map<std::pair<size_t, int>, double> bw;
  std::mutex mu;
};
Measure& cache() {
  static Measure* m = new Measure();
  return *m;
}

// Per core, on the calling thread alone (a core's FMA units do not depend on the others; one thread is also
// the measurement a shared machine disturbs least), times threads.
double measure_fma(int threads, std::string* isa) {
  const bool use512 = gemm_impl() == GemmImpl::Avx512 && gemm_detail::cpu_has_avx512();
  const bool use256 = !use512 && gemm_detail::cpu_has_avx2();
  *isa = use512 ? "avx512" : use256 ? "avx2" : "portable";
  const double flops_per_iter = use512 ? 12 * 32 : use256 ? 12 * 16 : 16;
  int64_t iters = 1 << 14;
  double best = 0;
  volatile double sink = 0;
  for (int rep = 0; rep < 8; rep++) {
    int64_t t0 = now_ns();
    sink = sink + (use512 ? fma_loop_avx512(iters) : use256 ? fma_loop_avx2(iters) : fma_loop_portable(iters));
    double dt = (double)(now_ns() - t0) * 1e-9;
    if (dt < 0.004) { iters *= 4; rep--; continue; }  // too short to time: grow first
    best = std::max(best, flops_per_iter * iters / dt / 1e9);
  }
  return best * threads;
}

double measure_read(size_t bytes, int threads) {
  const size_t n = std::max<size_t>(bytes / sizeof(float), 1024) / 1024 * 1024;
  float* buf = static_cast<float*>(std::aligned_alloc(64, n * sizeof(float)));
  FARM_CHECK(buf != nullptr, "peaks: out of memory for a ", bytes, "-byte buffer");
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t i = 0; i < (int64_t)n; i++) buf[i] = 1e-9f * (float)(i & 1023);  // first touch by the readers
  const bool avx2 = gemm_detail::cpu_has_avx2();
  // Several passes per timed region (at least 128 MiB moved), so that a thread's late start on a shared
  // machine weighs little against the transfer.
  const int passes = (int)std::max<size_t>(1, (size_t(128) << 20) / (n * sizeof(float)));
  volatile float sink = 0;
  double best = 0, spent = 0;
  for (int rep = 0; rep < 20 && (rep < 3 || spent < 0.3); rep++) {
    int64_t t0 = now_ns();
#pragma omp parallel num_threads(threads)
    {
      int nt = 1, t = 0;
#ifdef _OPENMP
      nt = omp_get_num_threads();
      t = omp_get_thread_num();
#endif
      size_t lo = n * t / nt / 16 * 16, hi = t + 1 == nt ? n : n * (t + 1) / nt / 16 * 16;
      float r = 0;
      for (int p = 0; p < passes; p++) r += avx2 ? read_sum_avx2(buf + lo, hi - lo) : read_sum_portable(buf + lo, hi - lo);
#pragma omp atomic
      sink += r;
    }
    double dt = (double)(now_ns() - t0) * 1e-9;
    spent += dt;
    best = std::max(best, (double)n * sizeof(float) * passes / dt / 1e9);
  }
  (void)sink;
  std::free(buf);
  return best;
}

}  // namespace

double read_gbps(size_t bytes, int threads) {
  FARM_CHECK(threads >= 1 && threads <= 1024, "threads must be in [1, 1024]");
  FARM_CHECK(bytes >= 4096 && bytes <= (size_t(8) << 30), "buffer size must be in [4 KiB, 8 GiB]");
  Measure& m = cache();
  {
    std::lock_guard<std::mutex> lk(m.mu);
    auto it = m.bw.find({bytes, threads});
    if (it != m.bw.end()) return it->second;
  }
  // N threads move at least what one does: on a machine shared with other work the N-thread run may lose
  // cores to it, so the best of 1 and N threads is the peak.
  double v = measure_read(bytes, threads);
  if (threads > 1) v = std::max(v, measure_read(bytes, 1));
  std::lock_guard<std::mutex> lk(m.mu);
  m.bw[{bytes, threads}] = v;
  return v;
}

Peaks peaks(int threads) {
  FARM_CHECK(threads >= 1 && threads <= 1024, "threads must be in [1, 1024]");
  Measure& m = cache();
  {
    std::lock_guard<std::mutex> lk(m.mu);
    auto it = m.peaks.find(threads);
    if (it != m.peaks.end()) return it->second;
  }
  Peaks p;
  p.threads = threads;
  p.fma_gflops = measure_fma(threads, &p.isa);
  p.cache_gbps = read_gbps(size_t(8) << 20, threads);
  p.mem_gbps = read_gbps(size_t(512) << 20, threads);
  std::lock_guard<std::mutex> lk(m.mu);
  m.peaks[threads] = p;
  return p;
}

}  // namespace farm::prof
