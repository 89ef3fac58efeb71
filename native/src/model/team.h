// A small team of threads for decode steps. A decode step is dozens of short parallel phases (each a few
// microseconds). OpenMP wakes its threads through the kernel once a process holds more threads than cores
// (in Node every worker thread that ran OpenMP code keeps a pool), which cost more than the phases.
// Team workers spin briefly between phases, then yield, then sleep, so an idle session costs nothing.
// Work is claimed in chunks from a shared counter: a member that the OS has descheduled simply takes no
// chunks, instead of holding up the phase until it runs again (2 cores shared with other processes).
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace farm::decode {

class Team {
 public:
  explicit Team(int threads);  // threads >= 1; the caller of split() is a member too
  ~Team();
  Team(const Team&) = delete;
  Team& operator=(const Team&) = delete;
  int size() const { return n_; }
  // Calls body(begin, end) over contiguous chunks covering [0, n), spread over the members; returns when
  // all are done. Which member runs a chunk varies; callers make each chunk's result independent of it.
  // body must not throw.
  void split(int64_t n, const std::function<void(int64_t, int64_t)>& body);

 private:
  void work();
  void drain(uint64_t epoch);
  int n_;
  std::vector<std::thread> threads_;
  const std::function<void(int64_t, int64_t)>* body_ = nullptr;
  int64_t items_ = 0;
  // epoch (24 bits) | chunks (20 bits) | next chunk (20 bits): claiming a chunk is one compare-exchange.
  std::atomic<uint64_t> state_{0};
  std::atomic<int64_t> done_{0};
  std::atomic<int> sleepers_{0};
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable cv_;
};

}  // namespace farm::decode
