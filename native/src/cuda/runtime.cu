// Device probing, memory and copies (see runtime.h); the emulation build uses host memory instead.
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include "compat.cuh"
#ifdef FARM_CUDA_EMU
#include <unistd.h>
#endif

namespace farm::cuda {

#ifdef FARM_CUDA_EMU

const DeviceInfo& device_info() {
  static const DeviceInfo info = [] {
    DeviceInfo d;
    d.available = true;
    d.emulated = true;
    d.name = "CPU emulation of the CUDA backend (FARM_CUDA_EMU build)";
    d.total_memory = (size_t)sysconf(_SC_PHYS_PAGES) * (size_t)sysconf(_SC_PAGESIZE);
    d.multiprocessors = 1;
    return d;
  }();
  return info;
}
void bind_thread() {}
void* device_alloc(size_t bytes, const char* what) {
  void* p = std::aligned_alloc(256, (bytes + 255) / 256 * 256);
  FARM_CHECK(p != nullptr, "out of memory allocating ", bytes, " bytes for the ", what);
  std::memset(p, 0xff, bytes);  // NaN: reading before writing shows up
  return p;
}
void device_free(void* p) { std::free(p); }
void copy_to_device(void* dst, const void* src, size_t bytes) { std::memcpy(dst, src, bytes); }
void copy_to_host(void* dst, const void* src, size_t bytes) { std::memcpy(dst, src, bytes); }
void copy_on_device(void* dst, const void* src, size_t bytes) { std::memmove(dst, src, bytes); }
void zero_device(void* p, size_t bytes) { std::memset(p, 0, bytes); }
void synchronize(const char*) {}

#else

namespace {

__global__ void probe_kernel(int* out) {
  if (out) *out = 1;
}

std::string error_text(cudaError_t e) { return std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e); }

DeviceInfo probe() {
  DeviceInfo d;
  cudaRuntimeGetVersion(&d.runtime_version);
  cudaDriverGetVersion(&d.driver_version);  // 0 when no driver is installed
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    if (e == cudaErrorInsufficientDriver && d.driver_version == 0)
      d.reason = "no NVIDIA driver was found (libcuda.so.1 could not be loaded)";
    else if (e == cudaErrorInsufficientDriver)
      d.reason = "the NVIDIA driver (CUDA " + std::to_string(d.driver_version / 1000) + "." +
                 std::to_string(d.driver_version % 1000 / 10) + ") is older than this build's CUDA runtime (" +
                 std::to_string(d.runtime_version / 1000) + "." + std::to_string(d.runtime_version % 1000 / 10) + ")";
    else if (e == cudaErrorNoDevice)
      d.reason = "no CUDA device is visible (check CUDA_VISIBLE_DEVICES and the driver)";
    else
      d.reason = "cudaGetDeviceCount failed: " + error_text(e);
    cudaGetLastError();
    return d;
  }
  if (n == 0) {
    d.reason = "no CUDA device is visible";
    return d;
  }
  if (const char* s = std::getenv("FARM_CUDA_DEVICE")) {
    char* end = nullptr;
    long v = std::strtol(s, &end, 10);
    if (!*s || *end || v < 0 || v >= n) {
      d.reason = std::string("FARM_CUDA_DEVICE=") + s + " is not a device index in [0, " + std::to_string(n) + ")";
      return d;
    }
    d.device = (int)v;
  }
  cudaDeviceProp p;
  e = cudaGetDeviceProperties(&p, d.device);
  if (e != cudaSuccess) {
    d.reason = "cudaGetDeviceProperties failed: " + error_text(e);
    cudaGetLastError();
    return d;
  }
  d.name = p.name;
  d.cc_major = p.major;
  d.cc_minor = p.minor;
  d.total_memory = p.totalGlobalMem;
  d.multiprocessors = p.multiProcessorCount;
  d.shared_per_block_optin = p.sharedMemPerBlockOptin;
  cudaDeviceGetAttribute(&d.clock_khz, cudaDevAttrClockRate, d.device);
  cudaDeviceGetAttribute(&d.memory_clock_khz, cudaDevAttrMemoryClockRate, d.device);
  cudaDeviceGetAttribute(&d.memory_bus_bits, cudaDevAttrGlobalMemoryBusWidth, d.device);
  if (p.major < 8) {
    d.reason = d.name + " has compute capability " + std::to_string(p.major) + "." + std::to_string(p.minor) +
               "; the CUDA backend needs 8.0 or newer (it is built for sm_80, sm_90 and PTX of compute_90)";
    return d;
  }
  e = cudaSetDevice(d.device);
  if (e == cudaSuccess) e = cudaFree(nullptr);  // creates the context
  if (e != cudaSuccess) {
    d.reason = "cannot create a CUDA context on " + d.name + ": " + error_text(e);
    cudaGetLastError();
    return d;
  }
  // Is there code in this binary that the device can run?
  cudaFuncAttributes fa;
  e = cudaFuncGetAttributes(&fa, probe_kernel);
  if (e != cudaSuccess) {
    d.reason = "this build has no kernel image for " + d.name + " (compute capability " + std::to_string(p.major) + "." +
               std::to_string(p.minor) + "): " + error_text(e);
    cudaGetLastError();
    return d;
  }
  d.available = true;
  return d;
}

void check(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return;
  cudaGetLastError();
  fail("CUDA error in ", what, ": ", error_text(e),
       e == cudaErrorMemoryAllocation ? "" : " (if this persists, the CUDA context is broken: restart the process)");
}

}  // namespace

const DeviceInfo& device_info() {
  static DeviceInfo info;
  static std::once_flag once;
  std::call_once(once, [] { info = probe(); });
  return info;
}

void bind_thread() {
  const DeviceInfo& d = device_info();
  if (d.available) check(cudaSetDevice(d.device), "cudaSetDevice");
}

void check_launch(const char* name) { check(cudaGetLastError(), name); }

void* device_alloc(size_t bytes, const char* what) {
  void* p = nullptr;
  cudaError_t e = cudaMalloc(&p, bytes ? bytes : 1);
  if (e != cudaSuccess) {
    cudaGetLastError();
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    fail("out of GPU memory allocating ", bytes, " bytes for the ", what, " (", free_b >> 20, " MiB free of ",
         total_b >> 20, " MiB): ", error_text(e));
  }
  return p;
}
void device_free(void* p) {
  if (p) cudaFree(p);
}
void copy_to_device(void* dst, const void* src, size_t bytes) {
  check(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice), "a copy to the device");
}
void copy_to_host(void* dst, const void* src, size_t bytes) {
  check(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost), "a copy to the host");
}
void copy_on_device(void* dst, const void* src, size_t bytes) {
  check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, 0), "a copy on the device");
}
void zero_device(void* p, size_t bytes) { check(cudaMemsetAsync(p, 0, bytes, 0), "cudaMemsetAsync"); }
void synchronize(const char* what) { check(cudaDeviceSynchronize(), what); }

#endif

void require_device() {
  const DeviceInfo& d = device_info();
  if (!d.available) fail("the CUDA backend is unavailable: ", d.reason);
  bind_thread();
}

}  // namespace farm::cuda
