// Kernel profiler: every kernel call recorded with its name, operation label, shape, thread count, time and
// modelled FLOPs and bytes; aggregated per (kernel, op, shape) and, when tracing, kept as events for a Chrome
// trace. Off by default; when off a probe costs one relaxed atomic load and a branch.
//
// Works for any backend: instrument(table) wraps a Kernels table (kernels.h) in timing shims, so the model
// code records whatever backend it runs. Work outside the table (optimizer, decode kernels, copies) records
// itself with Scope. A device backend registers a synchronize function so that its asynchronous launches are
// timed as kernels, not as launches (set_device_sync).
#pragma once
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

namespace farm {
struct Kernels;
}

namespace farm::prof {

namespace detail {
extern std::atomic<int> g_mode;  // 0 off, 1 aggregate, 2 aggregate + trace events
extern thread_local const char* tl_op;
extern thread_local int tl_layer;
}  // namespace detail

#ifdef FARM_PROFILE_COMPILED_OUT
// Every probe compiles to nothing: the baseline that the cost of disabled probes is measured against
// (the farm-bench-noprof target; README "Profiling").
inline bool enabled() { return false; }
#else
inline bool enabled() { return detail::g_mode.load(std::memory_order_relaxed) != 0; }
#endif
void set_mode(bool aggregate, bool trace);  // trace implies aggregate
bool tracing();
// Clears the table and the events; the profile's wall clock restarts.
void reset();

// Nanoseconds on the monotonic clock (the clock of process.hrtime in Node).
int64_t now_ns();

// next_op labels the next table call on this thread (which GEMM of the layer: "up_proj.dw"); that call
// consumes it. set_layer: the layer this thread's calls belong to (-1: none), kept in trace events.
#ifdef FARM_PROFILE_COMPILED_OUT
inline void next_op(const char*) {}
inline void set_layer(int) {}
#else
inline void next_op(const char* label) {
  if (enabled()) detail::tl_op = label;  // when off, no call would consume it
}
inline void set_layer(int layer) { detail::tl_layer = layer; }
#endif

// What one call did. dims: up to 4 sizes that name its shape (GEMM: M, N, K, transposes as flags).
// kKernel: leaf work (the table's rows add up to compute time); kJob: a native job on the worker thread
// (contains kernels); kAsync: a job from its queueing on the JS thread to its settling.
enum Category : uint8_t { kKernel = 0, kJob = 1, kAsync = 2 };
struct Record {
  const char* name = "";      // kernel ("gemm", "adamw", "decode.linear") - a string literal
  const char* op = nullptr;   // label of the call site, or null
  int64_t dims[4] = {0, 0, 0, 0};
  int ndims = 0;
  uint32_t flags = 0;         // GEMM: bit 0 transA, bit 1 transB, bit 2 accumulate; decode: bit 3 bf16 weights
  double flops = 0, bytes = 0;
};

// Records [t0, now) for r on the calling thread.
void record(const Record& r, int64_t t0_ns, Category cat = kKernel);
// Records [t0, t1) (an async job's span, measured across threads).
void record_span(const Record& r, int64_t t0_ns, int64_t t1_ns, Category cat);

// Times its own lifetime; the Record's numbers may be filled in after construction.
class Scope {
 public:
  explicit Scope(const char* name, double flops = 0, double bytes = 0, Category cat = kKernel)
      : on_(enabled()), cat_(cat) {
    if (on_) {
      r_.name = name;
      if (cat == kKernel) {
        r_.op = detail::tl_op;
        detail::tl_op = nullptr;
      }
      r_.flops = flops;
      r_.bytes = bytes;
      t0_ = now_ns();
    }
  }
  Scope& dims(int64_t a, int64_t b = 0, int64_t c = 0, int64_t d = 0) {
    r_.dims[0] = a; r_.dims[1] = b; r_.dims[2] = c; r_.dims[3] = d;
    r_.ndims = d ? 4 : c ? 3 : b ? 2 : 1;
    return *this;
  }
  Scope& flags(uint32_t f) { r_.flags = f; return *this; }
  ~Scope() {
    if (on_) record(r_, t0_, cat_);
  }
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

 private:
  bool on_;
  Category cat_;
  Record r_;
  int64_t t0_ = 0;
};

// The table to call: a timing wrapper around k while profiling, k itself otherwise.
const Kernels& instrument(const Kernels& k);
// A device backend's synchronize (e.g. cudaDeviceSynchronize), called before and after each profiled call
// of the table whose name is backend_name.
void set_device_sync(const char* backend_name, void (*sync)());

// Names the calling thread's track in the trace ("native worker").
void set_thread_name(const char* name);

// Aggregated rows: one per (kernel, op, shape, threads).
struct Row {
  std::string name, op, shape;
  int threads = 1;
  int64_t calls = 0;
  double total_ns = 0, min_ns = 0, max_ns = 0, flops = 0, bytes = 0;  // flops, bytes: totals over the calls
  Category cat = kKernel;
};
struct Snapshot {
  std::vector<Row> rows;
  double wall_ns = 0;        // since the last reset
  int64_t events = 0, dropped_events = 0;
};
Snapshot snapshot();

struct Event {
  const char* name;
  const char* op;
  int64_t t0, t1;
  int64_t dims[4];
  double flops, bytes;
  int32_t tid, threads, layer;
  uint32_t flags;
  uint8_t cat, ndims;
};
struct Trace {
  std::vector<Event> events;
  std::vector<std::pair<int, std::string>> threads;  // tid -> track name
  int64_t dropped = 0;
};
Trace trace();  // a copy of the recorded events

// Measured peaks of this machine with `threads` threads (measured once per thread count, ~0.3 s).
struct Peaks {
  double fma_gflops = 0;     // fp32 FMA throughput, the widest vector unit the GEMM uses
  double mem_gbps = 0;       // read bandwidth of a 512 MiB buffer (main memory)
  double cache_gbps = 0;     // read bandwidth of an 8 MiB buffer (caches)
  int threads = 1;
  std::string isa;
};
Peaks peaks(int threads);
// Read bandwidth of a buffer of `bytes` (the bound of a kernel that streams that much, e.g. decode weights).
double read_gbps(size_t bytes, int threads);

// Shape text of a record ("2048x683x256 NT", "8x32x128").
std::string shape_text(const char* name, const int64_t* dims, int ndims, uint32_t flags);

}  // namespace farm::prof
