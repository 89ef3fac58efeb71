// farm-bench: the engine's workloads without Node, for perf, valgrind (callgrind, cachegrind) and Nsight.
// Built beside the addon by `npm run build:bench` (build/Release/farm-bench). Prints one JSON line per
// figure; --profile adds the kernel table, --trace FILE a Chrome trace of the timed repetitions.
//
//   farm-bench train-step [--batch 8 --seq 256]      forward + backward + AdamW, as engine.sftStep
//   farm-bench forward    [--batch 8 --seq 256]      forward only, log-probs of targets (no logits kept)
//   farm-bench decode     [--batch 8 --prompt 32 --new 128 --bf16]   KV-cache sampling, as engine.generate
//                         (--bf16: weights and KV cache in bf16, --bf16-weights: the weights only)
//   farm-bench gemm M N K [--ta --tb]                 one sgemm
//   farm-bench linear M N K [--bf16]                  one decode linear (packed weights): M rows, W [N, K]
// Model: --vocab 4096 --hidden 256 --intermediate 683 --layers 4 --heads 4 --kv-heads 4 (the benches' model).
// Common: --threads 2 --reps 10 --warmup 2 --gemm auto|avx2|avx512|portable|blas; --profile: the kernel table on
// stderr; --trace FILE: a Chrome trace; --record: the profiler on, nothing printed (its own cost, with callgrind)
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>
#include "farm/common.h"
#include "farm/gemm.h"
#include "farm/generate.h"
#include "farm/model.h"
#include "farm/profile.h"
#include "model/decode_kernels.h"
#include "model/team.h"

using namespace farm;

namespace {

struct Args {
  std::string workload;
  std::vector<std::string> pos;
  std::map<std::string, std::string> kv;
  bool has(const std::string& k) const { return kv.count(k) > 0; }
  long num(const std::string& k, long def) const {
    auto it = kv.find(k);
    if (it == kv.end()) return def;
    char* end = nullptr;
    long v = std::strtol(it->second.c_str(), &end, 10);
    if (!end || *end) fail("--", k, " needs an integer, got '", it->second, "'");
    return v;
  }
  std::string str(const std::string& k, const std::string& def) const {
    auto it = kv.find(k);
    return it == kv.end() ? def : it->second;
  }
};

const char* kFlags[] = {"--ta", "--tb", "--bf16", "--bf16-weights", "--profile", "--record"};  // flags without a value

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; i++) {
    std::string s = argv[i];
    if (s.rfind("--", 0) == 0) {
      bool bare = std::find(std::begin(kFlags), std::end(kFlags), s) != std::end(kFlags);
      if (bare) { a.kv[s.substr(2)] = "1"; continue; }
      if (i + 1 >= argc) fail(s, " needs a value");
      a.kv[s.substr(2)] = argv[++i];
    } else if (a.workload.empty()) {
      a.workload = s;
    } else {
      a.pos.push_back(s);
    }
  }
  return a;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

// Times fn over reps after warmup; the profiler records the timed repetitions only.
std::vector<double> timed(const Args& a, const std::function<void()>& fn) {
  const int reps = (int)a.num("reps", 10), warmup = (int)a.num("warmup", 2);
  FARM_CHECK(reps >= 1 && warmup >= 0, "--reps must be >= 1 and --warmup >= 0");
  for (int i = 0; i < warmup; i++) fn();
  prof::reset();
  std::vector<double> ms;
  for (int i = 0; i < reps; i++) {
    int64_t t0 = prof::now_ns();
    fn();
    ms.push_back((prof::now_ns() - t0) / 1e6);
  }
  return ms;
}

ModelConfig model_config(const Args& a, int max_pos) {
  ModelConfig c;
  c.vocab_size = (int)a.num("vocab", 4096);
  c.hidden_size = (int)a.num("hidden", 256);
  c.intermediate_size = (int)a.num("intermediate", 683);
  c.num_hidden_layers = (int)a.num("layers", 4);
  c.num_attention_heads = (int)a.num("heads", 4);
  c.num_key_value_heads = (int)a.num("kv-heads", c.num_attention_heads);
  c.max_position_embeddings = max_pos;
  c.validate();
  return c;
}

std::string config_json(const ModelConfig& c, int threads) {
  char b[512];
  std::snprintf(b, sizeof b,
                "{\"vocab\":%d,\"hidden\":%d,\"intermediate\":%d,\"layers\":%d,\"heads\":%d,\"kv_heads\":%d,\"threads\":%d,"
                "\"gemm\":\"%s\"}",
                c.vocab_size, c.hidden_size, c.intermediate_size, c.num_hidden_layers, c.num_attention_heads,
                c.num_key_value_heads, threads, gemm_impl_name(gemm_impl()));
  return b;
}

void figure(const char* workload, const char* name, double value, const char* unit, const std::string& config) {
  std::printf("{\"bench\":\"farm-bench\",\"workload\":\"%s\",\"figure\":\"%s\",\"value\":%.6g,\"unit\":\"%s\",\"config\":%s}\n",
              workload, name, value, unit, config.c_str());
}

void print_table(int threads) {
  prof::Snapshot s = prof::snapshot();
  prof::Peaks pk = prof::peaks(threads);
  double total = 0;
  for (auto& r : s.rows)
    if (r.cat == prof::kKernel) total += r.total_ns;
  std::fprintf(stderr, "%-22s %-14s %-22s %6s %10s %9s %6s %8s %6s %7s\n", "kernel", "op", "shape", "calls", "total ms",
               "mean ms", "share", "GFLOP/s", "%peak", "GB/s");
  for (auto& r : s.rows) {
    if (r.cat != prof::kKernel) continue;
    double gf = r.flops / r.total_ns, gb = r.bytes / r.total_ns;
    std::fprintf(stderr, "%-22s %-14s %-22s %6lld %10.2f %9.3f %5.1f%% %8.1f %5.1f%% %7.1f\n", r.name.c_str(),
                 r.op.empty() ? "-" : r.op.c_str(), r.shape.c_str(), (long long)r.calls, r.total_ns / 1e6,
                 r.total_ns / 1e6 / r.calls, 100 * r.total_ns / total, gf, 100 * gf / (pk.fma_gflops / pk.threads * r.threads), gb);
  }
  std::fprintf(stderr, "kernels %.1f ms; peaks (%d threads, %s): FMA %.0f GFLOP/s, memory %.1f GB/s, caches %.1f GB/s\n",
               total / 1e6, pk.threads, pk.isa.c_str(), pk.fma_gflops, pk.mem_gbps, pk.cache_gbps);
}

void write_trace(const std::string& path) {
  prof::Trace t = prof::trace();
  std::ofstream f(path);
  FARM_CHECK(f.good(), "cannot write ", path);
  int64_t origin = t.events.empty() ? 0 : t.events.front().t0;
  for (auto& e : t.events) origin = std::min(origin, e.t0);
  f << "{\"traceEvents\":[{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":1,\"args\":{\"name\":\"farm-bench\"}}";
  for (auto& [tid, name] : t.threads)
    f << ",{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":" << tid << ",\"args\":{\"name\":\"" << name << "\"}}";
  char buf[512];
  for (auto& e : t.events) {
    std::string shape = prof::shape_text(e.name, e.dims, e.ndims, e.flags);
    std::snprintf(buf, sizeof buf,
                  ",{\"name\":\"%s%s%s\",\"ph\":\"X\",\"cat\":\"%s\",\"ts\":%.3f,\"dur\":%.3f,\"pid\":1,\"tid\":%d,"
                  "\"args\":{\"shape\":\"%s\",\"layer\":%d,\"gflop\":%.6g,\"mb\":%.6g}}",
                  e.name, e.op ? " " : "", e.op ? e.op : "", e.cat == prof::kKernel ? "kernel" : "job",
                  (e.t0 - origin) / 1e3, (e.t1 - e.t0) / 1e3, e.tid, shape.c_str(), e.layer, e.flops / 1e9, e.bytes / 1e6);
    f << buf;
  }
  f << "],\"displayTimeUnit\":\"ms\"}\n";
}

void train_step(const Args& a, bool backward) {
  const int B = (int)a.num("batch", 8), T = (int)a.num("seq", 256), threads = (int)a.num("threads", 2);
  ModelConfig c = model_config(a, T);
  Transformer m(c, 1, 0.02f);
  AdamWConfig oc;
  oc.weight_decay = 0.1f;
  AdamW opt(m, oc);
  std::vector<int32_t> tok(B * T), tgt(B * T);
  for (int i = 0; i < B * T; i++) {
    tok[i] = (int32_t)(((uint64_t)i * 2654435761u) % c.vocab_size);
    tgt[i] = (tok[i] * 7 + 3) % c.vocab_size;
  }
  std::vector<float> dl(B * T, -1.0f / (B * T));
  auto step = [&] {
    if (backward) {
      m.zero_grad();
      m.forward(tok.data(), tgt.data(), B, T, true, false, false);
      m.backward(dl.data(), nullptr, nullptr);
      double n = m.grad_norm();
      if (n > 1.0) m.scale_grads((float)(1.0 / (n + 1e-6)));
      opt.step(m, 1e-4f);
    } else {
      m.forward(tok.data(), tgt.data(), B, T, false, false, false);
    }
  };
  std::vector<double> ms = timed(a, step);
  const char* w = backward ? "train-step" : "forward";
  std::string cfg = config_json(c, threads);
  figure(w, "median_ms", median(ms), "ms", cfg);
  figure(w, "tokens_per_s", B * T / (median(ms) / 1e3), "tokens/s", cfg);
}

void decode_bench(const Args& a) {
  const int B = (int)a.num("batch", 8), T = (int)a.num("prompt", 32), NEW = (int)a.num("new", 128),
            threads = (int)a.num("threads", 2);
  ModelConfig c = model_config(a, (int)a.num("max-pos", 512));
  FARM_CHECK(T + NEW <= c.max_position_embeddings, "--prompt + --new exceeds --max-pos");
  Transformer m(c, 1, 0.02f);
  auto w = std::make_shared<DecoderWeights>(DecoderWeights::of(m));
  // --bf16: weights and KV cache in bf16 (decodePrecision 'bf16'); --bf16-weights: the weights only
  const bool bf16 = a.has("bf16") || a.has("bf16-weights"), bf16_kv = a.has("bf16");
  std::vector<std::vector<int32_t>> prompts(B, std::vector<int32_t>(T));
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++) prompts[b][t] = (b * 131 + t * 17 + 1) % c.vocab_size;
  std::vector<uint64_t> streams(B);
  for (int b = 0; b < B; b++) streams[b] = b;
  SampleOptions opt;
  opt.max_new_tokens = NEW;
  opt.seed = 1;
  std::vector<double> prefill_ms, decode_ms;
  auto gen = [&] {
    DecodeSession s(w, B, T + NEW, bf16, bf16_kv);
    int64_t t0 = prof::now_ns();
    std::vector<int> slots = s.add_prompts(prompts, 1, streams);
    int64_t t1 = prof::now_ns();
    std::vector<TokenRecord> out;
    s.sample(slots, NEW, opt, &out);
    prefill_ms.push_back((t1 - t0) / 1e6);
    decode_ms.push_back((prof::now_ns() - t1) / 1e6);
  };
  std::vector<double> ms = timed(a, gen);
  const int warm = (int)a.num("warmup", 2);
  prefill_ms.erase(prefill_ms.begin(), prefill_ms.begin() + warm);
  decode_ms.erase(decode_ms.begin(), decode_ms.begin() + warm);
  std::string cfg = config_json(c, threads);
  cfg.insert(cfg.size() - 1, std::string(",\"batch\":") + std::to_string(B) + ",\"prompt\":" + std::to_string(T) +
                                 ",\"new\":" + std::to_string(NEW) + ",\"weights\":\"" + (bf16 ? "bf16" : "fp32") + "\",\"kv_cache\":\"" + (bf16_kv ? "bf16" : "fp32") + "\"");
  figure("decode", "new_tokens_per_s", B * NEW / (median(ms) / 1e3), "tokens/s", cfg);
  figure("decode", "decode_only_tokens_per_s", B * NEW / (median(decode_ms) / 1e3), "tokens/s", cfg);
  figure("decode", "prefill_ms", median(prefill_ms), "ms", cfg);
  // The weight-streaming bound: every step reads all linear weights once at the bandwidth of a buffer that size.
  double wbytes = 0;
  for (auto& p : m.params())
    if (p.shape.size() == 2 && p.name != "model.embed_tokens.weight") wbytes += (double)p.size * 4;
  if (c.tie_word_embeddings) wbytes += (double)c.vocab_size * c.hidden_size * 4;
  const double bw = prof::read_gbps((size_t)wbytes, threads);
  const double bound = B / (wbytes / (bw * 1e9));
  figure("decode", "weight_bytes_fp32", wbytes, "bytes", cfg);
  figure("decode", "read_gbps_weight_sized", bw, "GB/s", cfg);
  figure("decode", "share_of_fp32_streaming_bound", B * NEW / (median(decode_ms) / 1e3) / bound, "x", cfg);
}

void gemm_bench(const Args& a) {
  FARM_CHECK(a.pos.size() == 3, "gemm needs M N K");
  const int M = std::atoi(a.pos[0].c_str()), N = std::atoi(a.pos[1].c_str()), K = std::atoi(a.pos[2].c_str());
  FARM_CHECK(M > 0 && N > 0 && K > 0, "M N K must be positive");
  const bool ta = a.has("ta"), tb = a.has("tb");
  std::vector<float> A((size_t)M * K, 0.01f), Bm((size_t)K * N, 0.02f), C((size_t)M * N);
  std::vector<double> ms = timed(a, [&] { sgemm(ta, tb, M, N, K, A.data(), ta ? M : K, Bm.data(), tb ? K : N, 0.f, C.data(), N); });
  char cfg[256];
  std::snprintf(cfg, sizeof cfg, "{\"M\":%d,\"N\":%d,\"K\":%d,\"transA\":%s,\"transB\":%s,\"threads\":%ld,\"gemm\":\"%s\"}", M,
                N, K, ta ? "true" : "false", tb ? "true" : "false", a.num("threads", 2), gemm_impl_name(gemm_impl()));
  figure("gemm", "gflops", 2.0 * M * N * K / (median(ms) / 1e3) / 1e9, "GFLOP/s", cfg);
}

void linear_bench(const Args& a) {
  FARM_CHECK(a.pos.size() == 3, "linear needs M N K");
  const int M = std::atoi(a.pos[0].c_str()), N = std::atoi(a.pos[1].c_str()), K = std::atoi(a.pos[2].c_str());
  FARM_CHECK(M > 0 && N > 0 && K > 0, "M N K must be positive");
  const int threads = (int)a.num("threads", 2);
  const bool bf16 = a.has("bf16");
  std::vector<float> W((size_t)N * K), x((size_t)M * K), out((size_t)M * N);
  for (size_t i = 0; i < W.size(); i++) W[i] = 0.01f * (float)((i * 7919) % 101) - 0.5f;
  for (size_t i = 0; i < x.size(); i++) x[i] = 0.02f * (float)((i * 104729) % 37) - 0.3f;
  decode::Team team(threads);
  decode::PackedMatrix P;
  P.pack(W.data(), N, K, bf16 ? decode::WeightType::BF16 : decode::WeightType::F32, &team);
  const decode::PackedSeg seg{&P, out.data(), N};
  std::vector<double> ms = timed(a, [&] { decode::linear(x.data(), K, M, &seg, 1, false, &team); });
  char cfg[256];
  std::snprintf(cfg, sizeof cfg, "{\"M\":%d,\"N\":%d,\"K\":%d,\"weights\":\"%s\",\"threads\":%d,\"kernels\":\"%s\"}", M, N, K,
                bf16 ? "bf16" : "fp32", threads, decode::impl_name());
  const double t = *std::min_element(ms.begin(), ms.end()) / 1e3;
  figure("linear", "gflops_best", 2.0 * M * N * K / t / 1e9, "GFLOP/s", cfg);
  figure("linear", "weight_gbps_best", (double)P.bytes() / t / 1e9, "GB/s", cfg);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    Args a = parse(argc, argv);
    if (a.workload.empty() || a.workload == "help" || a.has("help")) {
      std::fprintf(stderr, "usage: farm-bench train-step|forward|decode|gemm M N K|linear M N K [options]\n"
                           "  model: --vocab --hidden --intermediate --layers --heads --kv-heads\n"
                           "  train-step/forward: --batch 8 --seq 256; decode: --batch 8 --prompt 32 --new 128 --bf16\n"
                           "  gemm: --ta --tb; common: --threads 2 --reps 10 --warmup 2 --gemm NAME --profile --record --trace FILE\n");
      return a.workload.empty() ? 2 : 0;
    }
    const int threads = (int)a.num("threads", 2);
    set_num_threads(threads);
    if (a.has("gemm")) {
      std::string g = a.str("gemm", "auto");
      bool ok = false;
      for (GemmImpl i : {GemmImpl::Auto, GemmImpl::Portable, GemmImpl::Avx2, GemmImpl::Avx512, GemmImpl::Blas})
        if (g == gemm_impl_name(i)) { set_gemm_impl(i); ok = true; }
      FARM_CHECK(ok, "unknown --gemm ", g);
    }
    // --record: the profiler on and nothing printed (to measure the profiler's own cost)
    const bool trace = a.has("trace");
    if (a.has("profile") || a.has("record") || trace) prof::set_mode(true, trace);
    prof::set_thread_name("main");
    if (a.workload == "train-step") train_step(a, true);
    else if (a.workload == "forward") train_step(a, false);
    else if (a.workload == "decode") decode_bench(a);
    else if (a.workload == "gemm") gemm_bench(a);
    else if (a.workload == "linear") linear_bench(a);
    else fail("unknown workload '", a.workload, "' (train-step, forward, decode, gemm)");
    if (a.has("profile")) print_table(threads);
    if (trace) {
      write_trace(a.str("trace", "trace.json"));
      std::fprintf(stderr, "trace written to %s\n", a.str("trace", "trace.json").c_str());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "farm-bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
