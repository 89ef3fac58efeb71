// Shared basics of the native engine: errors, checks, threads.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <sstream>

namespace farm {

// Every error of the engine is a farm::Error; the addon turns it into a JavaScript Error.
struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

template <typename... Args>
[[noreturn]] inline void fail(Args&&... args) {
  std::ostringstream os;
  (os << ... << args);
  throw Error(os.str());
}

#define FARM_CHECK(cond, ...) \
  do { if (!(cond)) ::farm::fail(__VA_ARGS__); } while (0)

// Threads used by kernels called from the current thread (OpenMP keeps one pool per calling thread).
void set_num_threads(int n);
int num_threads();

}  // namespace farm
