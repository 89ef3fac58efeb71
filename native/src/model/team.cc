#include "team.h"
#include <immintrin.h>
#include <algorithm>
#include <chrono>

namespace farm::decode {
namespace {
// Waiting: spin for 200 us (the gaps between phases of a step are microseconds), then yield until 2 ms,
// then sleep (workers) or keep yielding (the caller). Time-based, as PAUSE lasts 10 to 150 cycles by CPU.
using Clock = std::chrono::steady_clock;
constexpr auto kSpinFor = std::chrono::microseconds(200), kYieldUntil = std::chrono::microseconds(2000);
struct Waiter {
  Clock::time_point start = Clock::now();
  int n = 0;
  bool pause() {  // false once the waiter should sleep
    if ((++n & 63) != 0) { _mm_pause(); return true; }
    auto dt = Clock::now() - start;
    if (dt < kSpinFor) { _mm_pause(); return true; }
    std::this_thread::yield();
    return dt < kYieldUntil;
  }
};
constexpr int kChunkBits = 20;
constexpr uint64_t kMask = (1u << kChunkBits) - 1;
inline uint64_t epoch_of(uint64_t s) { return s >> (2 * kChunkBits); }
inline uint64_t chunks_of(uint64_t s) { return (s >> kChunkBits) & kMask; }
inline uint64_t next_of(uint64_t s) { return s & kMask; }
}  // namespace

Team::Team(int threads) : n_(threads < 1 ? 1 : threads) {
  for (int m = 1; m < n_; m++) threads_.emplace_back([this] { work(); });
}

Team::~Team() {
  stop_.store(true);
  {
    std::lock_guard<std::mutex> lk(mu_);
    cv_.notify_all();
  }
  for (auto& t : threads_) t.join();
}

// Claims and runs chunks of the phase `epoch` until none is left (or a later phase began).
void Team::drain(uint64_t epoch) {
  uint64_t s = state_.load();
  for (;;) {
    if (epoch_of(s) != epoch || next_of(s) >= chunks_of(s)) return;
    if (!state_.compare_exchange_weak(s, s + 1)) continue;
    // Claimed: the phase cannot end before this chunk is done, so body_ and items_ are stable.
    const int64_t k = (int64_t)next_of(s), c = (int64_t)chunks_of(s);
    const int64_t b = items_ * k / c, e = items_ * (k + 1) / c;
    if (b < e) (*body_)(b, e);
    done_.fetch_add(1);
    s = state_.load();
  }
}

void Team::work() {
  uint64_t seen = 0;
  for (;;) {
    Waiter w;
    uint64_t e;
    while ((e = epoch_of(state_.load())) == seen) {
      if (stop_.load()) return;
      if (!w.pause()) {
        // Sleep; split() notifies when it sees a sleeper (sequentially consistent: either split() sees
        // this increment, or this wait sees its new epoch).
        std::unique_lock<std::mutex> lk(mu_);
        sleepers_.fetch_add(1);
        cv_.wait(lk, [&] { return epoch_of(state_.load()) != seen || stop_.load(); });
        sleepers_.fetch_sub(1);
        w = Waiter();
      }
    }
    if (stop_.load()) return;
    seen = e;
    drain(e);
  }
}

void Team::split(int64_t n, const std::function<void(int64_t, int64_t)>& body) {
  if (n <= 0) return;
  if (n_ == 1 || n == 1) {
    body(0, n);
    return;
  }
  // A few chunks per member, so that a late or descheduled member leaves its share to the others.
  const uint64_t chunks = (uint64_t)std::min<int64_t>(n, std::min<int64_t>(4 * n_, (int64_t)kMask));
  body_ = &body;
  items_ = n;
  done_.store(0);
  const uint64_t epoch = (epoch_of(state_.load()) + 1) & ((1u << 24) - 1);
  state_.store((epoch << (2 * kChunkBits)) | (chunks << kChunkBits));
  if (sleepers_.load() > 0) {
    std::lock_guard<std::mutex> lk(mu_);
    cv_.notify_all();
  }
  drain(epoch);
  Waiter w;
  while (done_.load() < (int64_t)chunks) w.pause();
}

}  // namespace farm::decode
