// KV-cache decoding on the GPU: the DecodeSession of farm/generate.h over a DeviceModel's weights, with the
// cache, the activations, the pending next-token logits of every sequence and the sampling on the device.
// The host keeps the bookkeeping (slots, shared prompt prefixes, finish states) and gets back, per decode
// step, only the sampled token records (24 bytes per sequence): it needs the tokens to decide what stops.
// The random numbers are the CPU session's: u = rand_uniform_d(seed, stream, position), drawn on the host.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>
#include "farm/generate.h"
#include "model.h"
#include "runtime.h"

namespace farm::cuda {

// Samples one token from each listed row of logits (device, [*, V]) with uniforms u (host, one per row), as
// farm::sample_logits does: temperature, then top-k, then top-p, ties to lower ids. values: device, one per
// logits row, or null. Writes host records (slot = row id). Token -1: non-finite logits.
void sample_rows(const float* logits, int V, const int32_t* host_rows, int R, const float* values, const SampleOptions& opt,
                 const double* u, TokenRecord* out);

// Decoding kernels (sample.cu). Kc/Vc: one layer's cache [slots, NKV, max_len, HD]; per-row int arrays on the device.
void rope_rows(float* x, const int32_t* pos, const float* cosv, const float* sinv, int R, int H, int HD);
void kv_write(float* Kc, float* Vc, const float* k, const float* v, const int32_t* slot, const int32_t* pos, int R, int NKV,
              int HD, int max_len);
// Every layer of the whole cache [L, slots, NKV, max_len, HD]: positions [from, from + n) of slot src to dst.
void kv_copy(float* Kc, float* Vc, int L, int slots, int NKV, int max_len, int HD, int dst, int src, int from, int n);
// Attention of each row over positions [0, pos] of its slot; the first plen of them from slot pslot (when >= 0).
void decode_attention(float* out, const float* q, const float* Kc, const float* Vc, const int32_t* slot, const int32_t* pos,
                      const int32_t* pslot, const int32_t* plen, int R, int NH, int NKV, int HD, int max_len);

class DeviceDecodeSession {
 public:
  DeviceDecodeSession(std::shared_ptr<DeviceModel> model, int max_slots, int max_len);
  ~DeviceDecodeSession();
  DeviceDecodeSession(const DeviceDecodeSession&) = delete;
  DeviceDecodeSession& operator=(const DeviceDecodeSession&) = delete;

  const ModelConfig& config() const { return model_->config(); }
  int max_slots() const { return max_slots_; }
  int max_len() const { return max_len_; }
  size_t cache_bytes() const;

  // The operations of farm::DecodeSession, with the same semantics.
  std::vector<int> add_prompts(const std::vector<std::vector<int32_t>>& prompts, int copies,
                               const std::vector<uint64_t>& streams);
  std::vector<int> fork(int parent, const std::vector<uint64_t>& streams);
  void release(int slot);
  void sample(const std::vector<int>& slots, int steps, const SampleOptions& opt, std::vector<TokenRecord>* out);
  void extend(int slot, const int32_t* tokens, int n, float* logprob, float* value);
  // Host copy of the next-token logits [V] (empty without an LM head) and the value of a slot.
  std::vector<float> next_logits(int slot, float* value);

  using SlotInfo = DecodeSession::SlotInfo;
  const SlotInfo& info(int slot) const;
  bool in_use(int slot) const { return slot >= 0 && slot < max_slots_ && slots_[slot].info.used; }

 private:
  struct Slot {
    SlotInfo info;
    int len = 0;
    int32_t unfed = -1;
    bool pending = false;  // its next-token logits / value sit in the pending buffers
    int prefix_slot = -1, prefix_len = 0, dependents = 0;
    bool zombie = false;
  };
  struct Chunk { int slot; const int32_t* tokens; int n; bool want_all; };
  Slot& slot(int s);
  int alloc_slot();
  // Runs chunks through the model; the head rows (last of each chunk, or all when want_all) land, in order,
  // in logits_ / values_ rows [0, returned count).
  int run(const std::vector<Chunk>& chunks);
  // Copies head rows [0, n) of the last run to the pending buffers of the given slots.
  void keep_pending(const std::vector<int>& slot_of_row, int n);
  void copy_pending(int dst, int src);
  void feed_pending(const std::vector<int>& slots);
  void copy_cache(int dst, int src, int from, int n);

  std::shared_ptr<DeviceModel> model_;
  int max_slots_, max_len_, rows_cap_;
  std::vector<Slot> slots_;
  std::vector<int> free_;
  DeviceArray<float> kcache_, vcache_;        // [L, slots, NKV, max_len, HD]
  DeviceArray<float> pending_, pending_val_;  // [slots, V], [slots]
  DeviceArray<float> ws_;                     // run workspace (rows_cap rows)
  float *x_ = nullptr, *xn_ = nullptr, *xh_ = nullptr, *q_ = nullptr, *k_ = nullptr, *v_ = nullptr, *att_ = nullptr,
        *gate_ = nullptr, *up_ = nullptr, *rstd_ = nullptr, *logits_ = nullptr, *values_ = nullptr, *lse_ = nullptr,
        *lp_ = nullptr;
  DeviceArray<int32_t> ibuf_;  // per-run row data: tokens, slot, pos, prefix slot, prefix len, head rows, targets
};

}  // namespace farm::cuda
