// The LLaMA-style decoder: config, parameters (one allocation), activations (one allocation per batch
// shape), explicit forward and backward. The math is the contract of transformers' LlamaForCausalLM.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace farm {

// Fields named as in Hugging Face LlamaConfig; lm_head / scalar_head are ours (which heads exist).
struct ModelConfig {
  int vocab_size = 0;
  int hidden_size = 0;
  int intermediate_size = 0;
  int num_hidden_layers = 0;
  int num_attention_heads = 0;
  int num_key_value_heads = 0;
  int max_position_embeddings = 0;
  float rms_norm_eps = 1e-6f;
  float rope_theta = 10000.f;
  bool tie_word_embeddings = false;
  bool lm_head = true;       // next-token head (policy); reward/value models may go without
  bool scalar_head = false;  // value/reward head: hidden -> 1 (+ bias) at every position
  int head_dim() const { return hidden_size / num_attention_heads; }
  void validate() const;     // throws farm::Error naming the bad field
};

struct ParamInfo {
  std::string name;            // Hugging Face tensor name, e.g. model.layers.0.self_attn.q_proj.weight
  std::vector<int64_t> shape;  // [out, in] for linear weights
  size_t offset = 0;           // in floats, into the parameter buffer
  size_t size = 0;             // in floats
  bool decay = true;           // AdamW weight decay applies (not to norms and biases)
};

// 64-byte aligned float buffer shared with JavaScript views (the views keep it alive).
struct FloatBuffer {
  float* data = nullptr;
  size_t size = 0;
  explicit FloatBuffer(size_t n);
  ~FloatBuffer();
  FloatBuffer(const FloatBuffer&) = delete;
  FloatBuffer& operator=(const FloatBuffer&) = delete;
};
using FloatBufferPtr = std::shared_ptr<FloatBuffer>;

// Per-position outputs of a forward pass (pointers into the activations; valid until the next forward).
struct ForwardOutputs {
  const float* logits = nullptr;   // [B*T, V] when kept
  const float* logp = nullptr;     // [B*T] log-prob of the target token (0 where target < 0)
  const float* entropy = nullptr;  // [B*T] entropy of the next-token distribution
  const float* values = nullptr;   // [B*T] scalar head
  const float* hidden = nullptr;   // [B*T, C] final hidden state (after the final norm): what the heads read
};

class Transformer {
 public:
  Transformer(const ModelConfig& cfg, uint64_t seed, float init_std);
  ~Transformer();
  const ModelConfig& config() const { return cfg_; }
  const std::vector<ParamInfo>& params() const { return params_; }
  size_t num_params() const { return n_params_; }
  FloatBufferPtr param_buffer() const { return weights_; }
  FloatBufferPtr grad_buffer() const { return grads_; }

  // tokens/targets: [B,T] row-major; targets[i] < 0 means "no target" (padding / prompt).
  // need_backward keeps what backward needs; with_entropy computes the entropy per position.
  // With targets and without keep_logits, the LM head runs on the rows that have a target only: logp and
  // entropy are 0 on the other rows (prompt and padding cost no vocabulary-sized work).
  ForwardOutputs forward(const int32_t* tokens, const int32_t* targets, int B, int T, bool need_backward,
                         bool with_entropy, bool keep_logits);
  // Accumulates parameter gradients of L, given dL/dlogp, dL/dentropy, dL/dvalue per position and
  // dL/dhidden [B*T, C] on the final hidden state (a loss computed outside the model, e.g. on an encoder of
  // the hidden state); any may be null. Uses the activations of the last forward(need_backward = true).
  void backward(const float* dlogp, const float* dentropy, const float* dvalues, const float* dhidden = nullptr);
  void zero_grad();
  double grad_norm() const;         // global L2 norm of the gradients
  void scale_grads(float s);

  size_t activation_bytes() const;  // bytes held by activations (for memory reports)
  bool backward_ready() const { return have_backward_acts_; }
  int64_t last_positions() const { return (int64_t)B_ * T_; }

  // Read-only weight views for code that runs the model another way (KV-cache decoding, other backends).
  struct LayerWeights { const float *ln1, *q, *k, *v, *o, *ln2, *gate, *up, *down; };
  LayerWeights layer_weights(int l) const {
    const LayerIdx& L = layers_[l];
    return {p(L.ln1), p(L.q), p(L.k), p(L.v), p(L.o), p(L.ln2), p(L.gate), p(L.up), p(L.down)};
  }
  const float* embed_weight() const { return p(i_embed_); }
  const float* final_norm_weight() const { return p(i_norm_); }
  // [V, C]; the embedding when tied; null without an LM head.
  const float* lm_head_weight() const {
    if (!cfg_.lm_head) return nullptr;
    return cfg_.tie_word_embeddings ? p(i_embed_) : p(i_lm_);
  }
  const float* score_weight() const { return cfg_.scalar_head ? p(i_score_w_) : nullptr; }  // [C]
  const float* score_bias() const { return cfg_.scalar_head ? p(i_score_b_) : nullptr; }    // [1]
  const float* rope_cos() const { return rope_cos_.data(); }  // [max_pos, head_dim/2]
  const float* rope_sin() const { return rope_sin_.data(); }

 private:
  struct Acts;
  void ensure_acts(int B, int T, bool need_backward, bool keep_logits);
  static void add_hidden_grad(float* dxnf, const float* dhidden, size_t n);
  float* p(size_t i) const { return weights_->data + params_[i].offset; }
  float* g(size_t i) const { return grads_->data + params_[i].offset; }

  ModelConfig cfg_;
  std::vector<ParamInfo> params_;
  size_t n_params_ = 0;
  FloatBufferPtr weights_, grads_;
  std::vector<float> rope_cos_, rope_sin_;  // [max_pos, head_dim/2]
  // parameter indices
  size_t i_embed_ = 0, i_norm_ = 0, i_lm_ = SIZE_MAX, i_score_w_ = SIZE_MAX, i_score_b_ = SIZE_MAX;
  struct LayerIdx { size_t ln1, q, k, v, o, ln2, gate, up, down; };
  std::vector<LayerIdx> layers_;
  std::unique_ptr<Acts> acts_;
  int B_ = 0, T_ = 0;
  bool have_backward_acts_ = false, entropy_done_ = false;
  std::vector<int32_t> last_tokens_, last_targets_;
  // LM head over target rows only (training and scoring never need the other rows' logits).
  std::vector<int32_t> head_rows_, head_targets_;  // rows with a target (empty: all rows)
  bool head_skipped_ = false;                     // no row had a target: the LM head did not run
  std::vector<float> head_x_, head_lse_, head_logp_, head_entropy_, head_grad_;
};

// AdamW with decoupled weight decay (PyTorch semantics), state m, v in fp32.
struct AdamWConfig {
  float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, weight_decay = 0.0f;
};
class AdamW {
 public:
  AdamW(const Transformer& model, const AdamWConfig& cfg);
  void step(Transformer& model, float lr);
  AdamWConfig cfg;
  int64_t t = 0;  // steps taken
  FloatBufferPtr m, v;
 private:
  std::vector<std::pair<size_t, size_t>> decay_ranges_, nodecay_ranges_;
};

}  // namespace farm
