// The CUDA backend's device runtime, as plain C++ (no CUDA headers): probing, memory, copies, errors.
// Everything runs on the legacy default stream, so every kernel and copy is ordered after the ones before
// it, whichever host thread issued it; copies to the host wait for the work before them.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include "farm/common.h"

namespace farm::cuda {

struct DeviceInfo {
  bool available = false;
  std::string reason;           // why not, when unavailable
  bool emulated = false;        // the CPU emulation build (FARM_CUDA_EMU)
  int device = 0;
  std::string name;
  int cc_major = 0, cc_minor = 0;
  size_t total_memory = 0;
  int multiprocessors = 0;
  int clock_khz = 0;            // peak SM clock
  int memory_clock_khz = 0, memory_bus_bits = 0;
  int runtime_version = 0, driver_version = 0;
  size_t shared_per_block_optin = 0;
};
// Probes once (the first call), then returns the same answer. Never throws.
const DeviceInfo& device_info();
// Throws farm::Error saying why the backend cannot run here.
void require_device();
// Makes the calling host thread use the backend's device.
void bind_thread();

void* device_alloc(size_t bytes, const char* what);  // throws when out of memory, naming `what`
void device_free(void* p);
void copy_to_device(void* dst, const void* src, size_t bytes);
void copy_to_host(void* dst, const void* src, size_t bytes);  // waits for the work before it
void copy_on_device(void* dst, const void* src, size_t bytes);
void zero_device(void* p, size_t bytes);
// Waits for every queued kernel; throws farm::Error on an asynchronous fault (the context is then broken:
// the message says so and the process must be restarted to use the GPU again).
void synchronize(const char* what);

// A device allocation owned by one object.
template <typename T>
class DeviceArray {
 public:
  DeviceArray() = default;
  explicit DeviceArray(size_t n, const char* what = "buffer") { resize(n, what); }
  ~DeviceArray() { device_free(p_); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  DeviceArray(DeviceArray&& o) noexcept : p_(o.p_), n_(o.n_) { o.p_ = nullptr; o.n_ = 0; }
  DeviceArray& operator=(DeviceArray&& o) noexcept {
    std::swap(p_, o.p_);
    std::swap(n_, o.n_);
    return *this;
  }
  // Reallocates (contents lost) when n differs.
  void resize(size_t n, const char* what = "buffer") {
    if (n == n_ && p_) return;
    device_free(p_);
    p_ = nullptr;
    n_ = 0;
    p_ = static_cast<T*>(device_alloc(std::max<size_t>(n, 1) * sizeof(T), what));
    n_ = n;
  }
  // Grows (contents lost) when smaller than n.
  void reserve(size_t n, const char* what = "buffer") {
    if (n_ < n || !p_) resize(n, what);
  }
  void upload(const T* src, size_t n, size_t offset = 0) {
    FARM_CHECK(offset + n <= n_, "internal: device upload past the end");
    if (n) copy_to_device(p_ + offset, src, n * sizeof(T));
  }
  void download(T* dst, size_t n, size_t offset = 0) const {
    FARM_CHECK(offset + n <= n_, "internal: device download past the end");
    if (n) copy_to_host(dst, p_ + offset, n * sizeof(T));
  }
  void zero() { if (n_) zero_device(p_, n_ * sizeof(T)); }
  T* data() const { return p_; }
  size_t size() const { return n_; }

 private:
  T* p_ = nullptr;
  size_t n_ = 0;
};

}  // namespace farm::cuda
