// KV-cache generation: a session of cached sequences ("slots") over one decoder's weights. Prompts are
// prefilled once and forked to their samples; every decode step runs all live sequences as one batch
// (rows = sequences) and samples each with a counter-based RNG keyed by (seed, slot stream, position),
// so a sequence's tokens depend neither on the thread count nor on what else is in the batch.
//
// The math is that of Transformer::forward (RMSNorm, rotate-half RoPE at each token's absolute
// position, grouped KV heads, SwiGLU, tied or untied LM head, scalar head on the final norm).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>
#include "farm/model.h"

namespace farm {
namespace decode { class Team; }

// Read-only pointers to a decoder's weights (Hugging Face layout, [out, in]) plus its rotary tables.
struct DecoderWeights {
  ModelConfig cfg;
  struct Layer { const float *ln1, *q, *k, *v, *o, *ln2, *gate, *up, *down; };
  std::vector<Layer> layers;
  const float* embed = nullptr;
  const float* norm = nullptr;
  const float* lm_head = nullptr;  // [V, C]; the embedding when tied; null without an LM head
  const float* score_w = nullptr;  // [C] scalar head, null without one
  const float* score_b = nullptr;  // [1]
  std::vector<float> rope_cos, rope_sin;  // [positions, head_dim/2], computed as Transformer does

  static DecoderWeights of(const Transformer& m);
  // Fills rope_cos/sin for positions [0, positions) (same formula and float math as Transformer).
  void compute_rope(int positions);
};

enum class Finish : int8_t { None = 0, Stop = 1, Length = 2, Context = 3 };
const char* finish_name(Finish f);

struct SampleOptions {
  float temperature = 1.f;  // 0: greedy (argmax, lowest id on ties)
  int top_k = 0;            // 0: off; keeps exactly k tokens (ties at the boundary go to lower ids)
  float top_p = 1.f;        // nucleus mass in (0, 1]; 1: off
  uint64_t seed = 0;
  std::vector<int32_t> stop_tokens;  // EOS included by the caller; a stop token is emitted, then the sequence ends
  int max_new_tokens = 16;           // per sequence, counted from its prompt
  void validate(int vocab) const;    // throws farm::Error
};

// One sampled token. Log-probs of the sampled token under
//   logprob:        the model's distribution (temperature 1, no truncation),
//   scaled_logprob: softmax(logits / temperature), no truncation (what TRL/AlpacaFarm PPO use),
//   sample_logprob: the distribution actually sampled (temperature, then top-k, then top-p, renormalized).
// At temperature 0 the last two are 0 (a point mass). value: scalar head at the position that predicted
// the token (the state before emitting it); 0 without a scalar head.
struct TokenRecord {
  int32_t slot, token;
  float logprob, scaled_logprob, sample_logprob, value;
};

class DecodeSession {
 public:
  // max_slots sequences of at most max_len tokens each (prompt + generated, <= max_position_embeddings).
  // The session decodes with its own copy of the linear weights, packed for the decode kernels at its first
  // run (later changes to the model's weights are not seen): fp32, or with bf16_weights rounded to bf16
  // (half the bytes per step; activations and accumulation stay fp32). bf16_kv: the KV cache holds keys and
  // values rounded to bf16 (half its bytes; scores and sums in fp32).
  DecodeSession(std::shared_ptr<const DecoderWeights> w, int max_slots, int max_len, bool bf16_weights = false,
                bool bf16_kv = false);
  ~DecodeSession();
  DecodeSession(const DecodeSession&) = delete;
  DecodeSession& operator=(const DecodeSession&) = delete;

  const DecoderWeights& weights() const { return *w_; }
  int max_slots() const { return max_slots_; }
  int max_len() const { return max_len_; }
  size_t cache_bytes() const;
  bool bf16_weights() const { return bf16_; }
  bool bf16_kv() const { return kv_bf16_; }
  size_t packed_weight_bytes() const;  // 0 until the first run packs them

  // Prefills each prompt once into a new slot and adds copies - 1 more that read the prompt's cache from it
  // (no copy); streams[p*copies + j] keys the RNG of copy j of prompt p. Returns the slots in that order.
  // Compute runs on the calling thread plus num_threads() - 1 team workers (model/team.h).
  std::vector<int> add_prompts(const std::vector<std::vector<int32_t>>& prompts, int copies,
                               const std::vector<uint64_t>& streams);
  // New slots continuing exactly from parent's state (cache, pending logits, history, finish state); the
  // parent's own cache is copied, a shared prompt stays shared.
  std::vector<int> fork(int parent, const std::vector<uint64_t>& streams);
  // A slot whose prompt other sequences still read keeps its cache (not its id) until they are released.
  void release(int slot);

  // Samples up to `steps` tokens for each listed live slot; records appended in step order.
  void sample(const std::vector<int>& slots, int steps, const SampleOptions& opt, std::vector<TokenRecord>* out);
  // Teacher-forces tokens onto a slot: logprob[i] (temperature 1) and value[i] of tokens[i] given all before.
  void extend(int slot, const int32_t* tokens, int n, float* logprob, float* value);
  // The next-token logits [V] and value of a slot (feeds its last sampled token first).
  const float* next_logits(int slot, float* value);

  struct SlotInfo {
    bool used = false;
    int prompt_len = 0, generated = 0;
    Finish finish = Finish::None;
    uint64_t stream = 0;
    std::vector<int32_t> tokens;  // prompt + generated
  };
  const SlotInfo& info(int slot) const;
  bool in_use(int slot) const { return slot >= 0 && slot < max_slots_ && info_used(slot); }

 private:
  struct Slot;
  struct Workspace;
  struct Packed;
  void pack_weights();
  struct Chunk { int slot; const int32_t* tokens; int n; bool want_all; };
  bool info_used(int s) const;
  Slot& slot(int s);
  int alloc_slot();
  void copy_cache(int dst, int src, int from, int n);  // positions [from, from + n)
  // Runs chunks of tokens through the model at each slot's next positions, appending K/V. Writes logits
  // (and values) of the last row of each chunk, or of every row when want_all, in order, to ws logits.
  int run(const std::vector<Chunk>& chunks);
  void feed_pending(const std::vector<int>& slots);
  int rows_cap() const { return rows_cap_; }
  decode::Team& team();  // the calling thread + num_threads() - 1 workers

  std::shared_ptr<const DecoderWeights> w_;
  int max_slots_, max_len_, rows_cap_;
  std::vector<Slot> slots_;
  std::vector<int> free_;
  std::unique_ptr<Workspace> ws_;
  std::unique_ptr<decode::Team> team_;
  bool bf16_ = false;
  std::unique_ptr<Packed> packed_;
  bool kv_bf16_ = false;
  size_t kv_es() const { return kv_bf16_ ? 2 : 4; }  // bytes of a cache element
  std::shared_ptr<uint8_t> kv_arena_;  // K and V of every layer, one allocation
  std::vector<uint8_t*> kcache_, vcache_;  // per layer [slots, NKV, max_len, HD] (views into kv_arena_)
};

// Samples one token from logits[V] with uniform u in [0, 1) (token -1: non-finite logits). For other
// backends. scratch: V floats; iscratch: V ints.
TokenRecord sample_logits(const float* logits, int V, const SampleOptions& opt, double u, float* scratch,
                          int32_t* iscratch);

}  // namespace farm
