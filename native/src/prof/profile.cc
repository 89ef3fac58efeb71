// The profiler's store: an aggregate table keyed by (kernel, op, shape, threads) and, when tracing, a bounded
// list of events. Records come from a few threads (the native worker, the JS thread), so one mutex suffices;
// when profiling is off nothing here runs.
#include "farm/profile.h"
#include <time.h>
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <unordered_map>
#include "farm/common.h"

namespace farm::prof {
namespace detail {
std::atomic<int> g_mode{0};
thread_local const char* tl_op = nullptr;
thread_local int tl_layer = -1;
}  // namespace detail

namespace {

// About 100 bytes an event: 1M events bound the trace at ~100 MB; later events are counted, not kept.
constexpr size_t kMaxEvents = size_t(1) << 20;

struct Key {
  const char* name;
  const char* op;
  int64_t dims[4];
  uint32_t flags;
  int32_t threads;
  uint8_t cat;
  bool operator==(const Key& o) const {
    return name == o.name && op == o.op && flags == o.flags && threads == o.threads && cat == o.cat &&
           std::memcmp(dims, o.dims, sizeof dims) == 0;
  }
};
struct KeyHash {
  size_t operator()(const Key& k) const {
    uint64_t h = (uint64_t)(uintptr_t)k.name * 0x9E3779B97F4A7C15ull ^ (uint64_t)(uintptr_t)k.op;
    for (int64_t d : k.dims) h = (h ^ (uint64_t)d) * 0x100000001B3ull;
    h ^= ((uint64_t)k.flags << 32) ^ ((uint64_t)k.threads << 8) ^ k.cat;
    return (size_t)(h ^ (h >> 29));
  }
};
struct Agg {
  int ndims = 0;
  int64_t calls = 0;
  double total = 0, min = 0, max = 0, flops = 0, bytes = 0;
};

struct Store {
  std::mutex mu;
  std::unordered_map<Key, Agg, KeyHash> table;
  std::vector<Event> events;
  int64_t dropped = 0;
  int64_t t_reset = 0;
  std::vector<std::pair<int, std::string>> names;
  int next_tid = 1;
};
Store& store() {
  static Store* s = new Store();  // never destroyed: records may arrive during static teardown
  return *s;
}

thread_local int tl_tid = 0;
int my_tid(Store& s) {  // under s.mu
  if (tl_tid == 0) tl_tid = s.next_tid++;
  return tl_tid;
}

void add(const Record& r, int64_t t0, int64_t t1, Category cat, int threads) {
  Store& s = store();
  std::lock_guard<std::mutex> lk(s.mu);
  Key k{r.name, r.op, {r.dims[0], r.dims[1], r.dims[2], r.dims[3]}, r.flags, threads, (uint8_t)cat};
  Agg& a = s.table[k];
  const double dt = (double)(t1 - t0);
  if (a.calls == 0 || dt < a.min) a.min = dt;
  if (dt > a.max) a.max = dt;
  a.ndims = r.ndims;
  a.calls++;
  a.total += dt;
  a.flops += r.flops;
  a.bytes += r.bytes;
  if (detail::g_mode.load(std::memory_order_relaxed) < 2) return;
  if (s.events.size() >= kMaxEvents) { s.dropped++; return; }
  if (s.events.capacity() == s.events.size()) s.events.reserve(std::max<size_t>(4096, s.events.size() * 2));
  Event e;
  e.name = r.name;
  e.op = r.op;
  e.t0 = t0;
  e.t1 = t1;
  std::memcpy(e.dims, r.dims, sizeof e.dims);
  e.flops = r.flops;
  e.bytes = r.bytes;
  e.tid = cat == kAsync ? -1 : my_tid(s);
  e.threads = threads;
  e.layer = detail::tl_layer;
  e.flags = r.flags;
  e.cat = (uint8_t)cat;
  e.ndims = (uint8_t)r.ndims;
  s.events.push_back(e);
}

}  // namespace

int64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void set_mode(bool aggregate, bool trace) {
  int m = trace ? 2 : aggregate ? 1 : 0;
  int was = detail::g_mode.exchange(m);
  if (was == 0 && m != 0) {
    Store& s = store();
    std::lock_guard<std::mutex> lk(s.mu);
    if (s.table.empty() && s.events.empty()) s.t_reset = now_ns();
  }
}
bool tracing() { return detail::g_mode.load(std::memory_order_relaxed) == 2; }

void reset() {
  Store& s = store();
  std::lock_guard<std::mutex> lk(s.mu);
  s.table.clear();
  s.events.clear();
  s.events.shrink_to_fit();
  s.dropped = 0;
  s.t_reset = now_ns();
}

void record(const Record& r, int64_t t0, Category cat) { add(r, t0, now_ns(), cat, num_threads()); }
void record_span(const Record& r, int64_t t0, int64_t t1, Category cat) { add(r, t0, t1, cat, 1); }

void set_thread_name(const char* name) {
  Store& s = store();
  std::lock_guard<std::mutex> lk(s.mu);
  int tid = my_tid(s);
  for (auto& [t, n] : s.names)
    if (t == tid) { n = name; return; }
  s.names.push_back({tid, name});
}

std::string shape_text(const char* name, const int64_t* d, int nd, uint32_t flags) {
  char buf[128];
  if (std::strcmp(name, "gemm") == 0 && nd >= 3) {
    std::snprintf(buf, sizeof buf, "%lldx%lldx%lld %c%c%s", (long long)d[0], (long long)d[1], (long long)d[2],
                  flags & 1 ? 'T' : 'N', flags & 2 ? 'T' : 'N', flags & 4 ? " +=" : "");
    return buf;
  }
  std::string s;
  for (int i = 0; i < nd; i++) {
    if (i) s += 'x';
    s += std::to_string((long long)d[i]);
  }
  if (flags & 8) s += " bf16";
  return s;
}

Snapshot snapshot() {
  Store& s = store();
  std::lock_guard<std::mutex> lk(s.mu);
  Snapshot out;
  out.wall_ns = (double)(now_ns() - s.t_reset);
  out.events = (int64_t)s.events.size();
  out.dropped_events = s.dropped;
  for (auto& [k, a] : s.table) {
    Row r;
    r.name = k.name;
    r.op = k.op ? k.op : "";
    r.shape = shape_text(k.name, k.dims, a.ndims, k.flags);
    r.threads = k.threads;
    r.calls = a.calls;
    r.total_ns = a.total;
    r.min_ns = a.min;
    r.max_ns = a.max;
    r.flops = a.flops;
    r.bytes = a.bytes;
    r.cat = (Category)k.cat;
    out.rows.push_back(std::move(r));
  }
  std::sort(out.rows.begin(), out.rows.end(), [](const Row& a, const Row& b) { return a.total_ns > b.total_ns; });
  return out;
}

Trace trace() {
  Store& s = store();
  std::lock_guard<std::mutex> lk(s.mu);
  Trace t;
  t.events = s.events;
  t.threads = s.names;
  t.dropped = s.dropped;
  return t;
}

}  // namespace farm::prof
