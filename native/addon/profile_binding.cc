// Bindings of the kernel profiler (farm/profile.h): mode, reset, the aggregate table, the trace events
// (columnar, with string tables) and the machine's measured peaks.
#include <napi.h>
#include <map>
#include <memory>
#include "async.h"
#include "checks.h"
#include "farm/profile.h"
#include "registry.h"

namespace farm::addon {
namespace {

const char* category_name(uint8_t c) {
  switch (c) {
    case prof::kKernel: return "kernel";
    case prof::kJob: return "job";
    case prof::kAsync: return "async";
  }
  return "?";
}

// setMode({aggregate, trace}): turns recording on or off (process-wide).
Napi::Value SetMode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = object_arg(info, 0, "profiler mode");
  bool trace = bool_field(o, "trace", false), aggregate = bool_field(o, "aggregate", trace);
  prof::set_mode(aggregate, trace);
  if (aggregate) prof::set_thread_name("JS main thread: synchronous native calls");
  return env.Undefined();
}

Napi::Value Mode(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), prof::tracing() ? "trace" : prof::enabled() ? "aggregate" : "off");
}

Napi::Value Reset(const Napi::CallbackInfo& info) {
  prof::reset();
  return info.Env().Undefined();
}

Napi::Value Now(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), (double)prof::now_ns()); }

// snapshot() -> {rows: [{name, op, shape, threads, calls, totalNs, minNs, maxNs, flops, bytes, category}], wallNs, ...}
Napi::Value Snapshot(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  prof::Snapshot s = prof::snapshot();
  Napi::Array rows = Napi::Array::New(env, s.rows.size());
  for (size_t i = 0; i < s.rows.size(); i++) {
    const prof::Row& r = s.rows[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", r.name);
    o.Set("op", r.op);
    o.Set("shape", r.shape);
    o.Set("threads", r.threads);
    o.Set("calls", (double)r.calls);
    o.Set("totalNs", r.total_ns);
    o.Set("minNs", r.min_ns);
    o.Set("maxNs", r.max_ns);
    o.Set("flops", r.flops);
    o.Set("bytes", r.bytes);
    o.Set("category", category_name(r.cat));
    rows.Set((uint32_t)i, o);
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("rows", rows);
  out.Set("wallNs", s.wall_ns);
  out.Set("events", (double)s.events);
  out.Set("droppedEvents", (double)s.dropped_events);
  return out;
}

// trace() -> columnar events: strings[], name/op/shape (indices into strings, op -1 when none), category,
// t0/t1 (ns, monotonic clock), tid (-1: async span), threads, layer, flops, bytes; plus track names.
Napi::Value Trace(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  prof::Trace t = prof::trace();
  const size_t n = t.events.size();
  std::map<std::string, int> ids;
  std::vector<std::string> strings;
  auto id = [&](const std::string& s) {
    auto it = ids.find(s);
    if (it != ids.end()) return it->second;
    int k = (int)strings.size();
    strings.push_back(s);
    ids.emplace(s, k);
    return k;
  };
  auto name = Napi::Int32Array::New(env, n), op = Napi::Int32Array::New(env, n), shape = Napi::Int32Array::New(env, n);
  auto cat = Napi::Uint8Array::New(env, n);
  auto t0 = Napi::Float64Array::New(env, n), t1 = Napi::Float64Array::New(env, n);
  auto tid = Napi::Int32Array::New(env, n), threads = Napi::Int32Array::New(env, n), layer = Napi::Int32Array::New(env, n);
  auto flops = Napi::Float64Array::New(env, n), bytes = Napi::Float64Array::New(env, n);
  for (size_t i = 0; i < n; i++) {
    const prof::Event& e = t.events[i];
    name[i] = id(e.name);
    op[i] = e.op ? id(e.op) : -1;
    shape[i] = id(prof::shape_text(e.name, e.dims, e.ndims, e.flags));
    cat[i] = e.cat;
    t0[i] = (double)e.t0;
    t1[i] = (double)e.t1;
    tid[i] = e.tid;
    threads[i] = e.threads;
    layer[i] = e.layer;
    flops[i] = e.flops;
    bytes[i] = e.bytes;
  }
  Napi::Array str = Napi::Array::New(env, strings.size());
  for (size_t i = 0; i < strings.size(); i++) str.Set((uint32_t)i, strings[i]);
  Napi::Array tracks = Napi::Array::New(env, t.threads.size());
  for (size_t i = 0; i < t.threads.size(); i++) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("tid", t.threads[i].first);
    o.Set("name", t.threads[i].second);
    tracks.Set((uint32_t)i, o);
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("strings", str);
  out.Set("name", name); out.Set("op", op); out.Set("shape", shape); out.Set("category", cat);
  out.Set("t0", t0); out.Set("t1", t1); out.Set("tid", tid); out.Set("threads", threads); out.Set("layer", layer);
  out.Set("flops", flops); out.Set("bytes", bytes);
  out.Set("tracks", tracks);
  out.Set("dropped", (double)t.dropped);
  return out;
}

// peaks({threads, sync?}) -> Promise<{fmaGflops, memGbps, cacheGbps, threads, isa}> (measured once per thread count);
// with sync: true the object itself (blocks the JS thread).
Napi::Value Peaks(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = object_arg(info, 0, "peaks options");
  int threads = (int)int_field(o, "threads", 1, false, 1, 1024);
  auto out = std::make_shared<prof::Peaks>();
  auto result = [out](Napi::Env env) -> Napi::Value {
    Napi::Object r = Napi::Object::New(env);
    r.Set("fmaGflops", out->fma_gflops);
    r.Set("memGbps", out->mem_gbps);
    r.Set("cacheGbps", out->cache_gbps);
    r.Set("threads", out->threads);
    r.Set("isa", out->isa);
    return r;
  };
  if (bool_field(o, "sync", false)) {  // at process exit, where no Promise can settle
    try {
      NativeExecutor::get().run([out, threads] { set_num_threads(threads); *out = prof::peaks(threads); });
    } catch (const std::exception& e) {
      throw error(env, e.what());
    }
    return result(env);
  }
  return PromiseTask::Start(env, threads, [out, threads] { *out = prof::peaks(threads); }, result, nullptr, "profiler.peaks");
}

// readGbps({bytes, threads}) -> Promise<number>: read bandwidth of a buffer of that size.
Napi::Value ReadGbps(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = object_arg(info, 0, "readGbps options");
  int64_t bytes = int_field(o, "bytes", 0, true, 4096, int64_t(8) << 30);
  int threads = (int)int_field(o, "threads", 1, false, 1, 1024);
  auto out = std::make_shared<double>(0);
  return PromiseTask::Start(
      env, threads, [out, bytes, threads] { *out = prof::read_gbps((size_t)bytes, threads); },
      [out](Napi::Env env) -> Napi::Value { return Napi::Number::New(env, *out); }, nullptr, "profiler.readGbps");
}

}  // namespace

void RegisterProfile(Napi::Env env, Napi::Object exports) {
  Napi::Object p = Napi::Object::New(env);
  p.Set("setMode", Napi::Function::New(env, SetMode));
  p.Set("mode", Napi::Function::New(env, Mode));
  p.Set("reset", Napi::Function::New(env, Reset));
  p.Set("now", Napi::Function::New(env, Now));
  p.Set("snapshot", Napi::Function::New(env, Snapshot));
  p.Set("trace", Napi::Function::New(env, Trace));
  p.Set("peaks", Napi::Function::New(env, Peaks));
  p.Set("readGbps", Napi::Function::New(env, ReadGbps));
  exports.Set("profiler", p);
}

}  // namespace farm::addon
