// Runs native work off the event loop and settles a Promise: `work` runs on the addon's one native worker
// thread (farm::Error and std::exception become a rejected Error), `done` builds the result on the JS thread.
#pragma once
#include <napi.h>
#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include "farm/common.h"
#include "farm/profile.h"

namespace farm::addon {

// Every compute job runs on one long-lived native thread. OpenMP keeps a thread pool per calling thread, so
// jobs spread over libuv's pool would create several pools on 2 cores that wake and spin against each other;
// one caller means one pool, warm between jobs. The libuv thread of an AsyncWorker only waits here.
class NativeExecutor {
 public:
  static NativeExecutor& get() {
    static NativeExecutor* ex = new NativeExecutor();  // never destroyed: the worker may outlive static teardown
    return *ex;
  }
  // Runs f on the worker thread and waits; rethrows what f threw.
  void run(const std::function<void()>& f) {
    Job job{&f};
    {
      std::lock_guard<std::mutex> lk(mu_);
      queue_.push_back(&job);
    }
    cv_.notify_one();
    std::unique_lock<std::mutex> lk(mu_);
    job_done_.wait(lk, [&] { return job.done; });
    if (job.error) std::rethrow_exception(job.error);
  }

 private:
  struct Job {
    const std::function<void()>* f;
    bool done = false;
    std::exception_ptr error;
  };
  NativeExecutor() { std::thread([this] { loop(); }).detach(); }
  void loop() {
    prof::set_thread_name("native worker thread: jobs and kernels");
    for (;;) {
      Job* job;
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return !queue_.empty(); });
        job = queue_.front();
        queue_.pop_front();
      }
      std::exception_ptr err;
      try {
        (*job->f)();
      } catch (...) {
        err = std::current_exception();
      }
      {
        std::lock_guard<std::mutex> lk(mu_);
        job->error = err;
        job->done = true;
      }
      job_done_.notify_all();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_, job_done_;
  std::deque<Job*> queue_;
};

class PromiseTask : public Napi::AsyncWorker {
 public:
  using Work = std::function<void()>;
  using Done = std::function<Napi::Value(Napi::Env)>;
  using Release = std::function<void()>;

  // name: what the profiler's trace calls the job (a string literal).
  static Napi::Promise Start(Napi::Env env, int threads, Work work, Done done, Release release = nullptr,
                             const char* name = "native job") {
    auto* t = new PromiseTask(env, threads, std::move(work), std::move(done), std::move(release));
    t->name_ = name;
    Napi::Promise p = t->deferred_.Promise();
    t->Queue();
    return p;
  }

 protected:
  void Execute() override {
    try {
      NativeExecutor::get().run([this] {
        set_num_threads(threads_);
        prof::Scope job(name_, 0, 0, prof::kJob);
        work_();
      });
    } catch (const std::exception& e) {
      SetError(e.what());
    } catch (...) {
      SetError("unknown native error");
    }
  }
  void OnOK() override {
    settled();
    if (release_) release_();
    try {
      deferred_.Resolve(done_ ? done_(Env()) : Env().Undefined());
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
  }
  void OnError(const Napi::Error& e) override {
    settled();
    if (release_) release_();
    deferred_.Reject(e.Value());
  }

 private:
  PromiseTask(Napi::Env env, int threads, Work w, Done d, Release r)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), threads_(threads), work_(std::move(w)),
        done_(std::move(d)), release_(std::move(r)), queued_ns_(prof::enabled() ? prof::now_ns() : 0) {}
  // The async span: from the call on the JS thread to the settling of its Promise.
  void settled() {
    if (!queued_ns_ || !prof::enabled()) return;
    prof::Record r;
    r.name = name_;
    prof::record_span(r, queued_ns_, prof::now_ns(), prof::kAsync);
  }
  Napi::Promise::Deferred deferred_;
  int threads_;
  Work work_;
  Done done_;
  Release release_;
  int64_t queued_ns_;
  const char* name_ = "native job";
};

}  // namespace farm::addon
