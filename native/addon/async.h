// Runs native work on the libuv thread pool and settles a Promise: `work` runs off the event loop
// (farm::Error and std::exception become a rejected Error), `done` builds the result on the JS thread.
#pragma once
#include <napi.h>
#include <exception>
#include <functional>
#include <string>
#include "farm/common.h"

namespace farm::addon {

class PromiseTask : public Napi::AsyncWorker {
 public:
  using Work = std::function<void()>;
  using Done = std::function<Napi::Value(Napi::Env)>;
  using Release = std::function<void()>;

  static Napi::Promise Start(Napi::Env env, int threads, Work work, Done done, Release release = nullptr) {
    auto* t = new PromiseTask(env, threads, std::move(work), std::move(done), std::move(release));
    Napi::Promise p = t->deferred_.Promise();
    t->Queue();
    return p;
  }

 protected:
  void Execute() override {
    try {
      set_num_threads(threads_);
      work_();
    } catch (const std::exception& e) {
      SetError(e.what());
    } catch (...) {
      SetError("unknown native error");
    }
  }
  void OnOK() override {
    if (release_) release_();
    try {
      deferred_.Resolve(done_ ? done_(Env()) : Env().Undefined());
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
  }
  void OnError(const Napi::Error& e) override {
    if (release_) release_();
    deferred_.Reject(e.Value());
  }

 private:
  PromiseTask(Napi::Env env, int threads, Work w, Done d, Release r)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), threads_(threads), work_(std::move(w)),
        done_(std::move(d)), release_(std::move(r)) {}
  Napi::Promise::Deferred deferred_;
  int threads_;
  Work work_;
  Done done_;
  Release release_;
};

}  // namespace farm::addon
