// The decoder on the GPU: weights, gradients, AdamW state and activations live in device memory; the host
// Transformer keeps the layout (Hugging Face names, offsets), the seeded initialization and a host mirror of
// weights and gradients for JavaScript views. Host copies happen at API boundaries only: token ids and
// per-position gradients in, per-position log-probs / entropies / values (and logits when asked) out, and
// the mirrors when JavaScript asks for parameter views.
//
// Forward and backward are those of Transformer (native/src/model/transformer.cc), call for call, through the
// CUDA kernel table; the parity tests (test/cuda) hold the two together.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>
#include "farm/model.h"
#include "runtime.h"

namespace farm::cuda {

// Which copy of a host-mirrored buffer is current.
enum class Fresh { Both, Host, Device };

class DeviceModel {
 public:
  // Uploads the host model's weights. Throws when the device is unavailable or the shape is unsupported.
  explicit DeviceModel(std::shared_ptr<Transformer> host);
  ~DeviceModel();
  DeviceModel(const DeviceModel&) = delete;
  DeviceModel& operator=(const DeviceModel&) = delete;

  Transformer& host() const { return *host_; }
  const ModelConfig& config() const { return host_->config(); }
  size_t num_params() const { return n_; }

  // JavaScript gets views of the host mirrors: bring them up to date, and treat them as written afterwards
  // (the next device operation uploads them).
  void pull_weights();
  void pull_grads();
  // Device copies up to date (uploads what JavaScript may have written). Every device operation calls it.
  void push();

  struct Outputs {
    std::vector<float> logp, entropy, values, logits;  // per position; logits [B*T, V] when kept
    std::vector<float> hidden;                         // [B*T, C] final hidden state, when asked for
  };
  void forward(const int32_t* tokens, const int32_t* targets, int B, int T, bool need_backward, bool with_entropy,
               bool keep_logits, Outputs* out, bool want_hidden = false);
  // Host per-position gradients (any may be null), as Transformer::backward (dhidden: [B*T, C]).
  void backward(const float* dlogp, const float* dentropy, const float* dvalues, const float* dhidden = nullptr);
  void zero_grad();
  double grad_norm();
  void scale_grads(float s);

  size_t activation_bytes() const;
  bool backward_ready() const { return have_backward_acts_; }
  int64_t last_positions() const { return (int64_t)B_ * T_; }

  // Device pointers (for the optimizer and decoding). dev(p) maps a host-mirror weight pointer to its device copy.
  float* weights() const { return w_.data(); }
  float* grads() const { return g_.data(); }
  const float* dev(const float* host_weight) const;
  const float* rope_cos() const { return rope_cos_.data(); }
  const float* rope_sin() const { return rope_sin_.data(); }
  const uint32_t* decay_bits() const { return decay_bits_.data(); }
  void weights_changed_on_device() { weights_fresh_ = Fresh::Device; }

 private:
  struct Acts;
  void ensure_acts(int B, int T, bool need_backward);
  float* W(size_t i) const { return w_.data() + host_->params()[i].offset; }
  float* G(size_t i) const { return g_.data() + host_->params()[i].offset; }

  std::shared_ptr<Transformer> host_;
  size_t n_ = 0;
  DeviceArray<float> w_, g_, rope_cos_, rope_sin_;
  DeviceArray<uint32_t> decay_bits_;
  Fresh weights_fresh_ = Fresh::Both, grads_fresh_ = Fresh::Both;
  // parameter indices, found by name in the host layout
  size_t i_embed_ = 0, i_norm_ = 0, i_lm_ = SIZE_MAX, i_score_w_ = SIZE_MAX, i_score_b_ = SIZE_MAX;
  struct LayerIdx { size_t ln1, q, k, v, o, ln2, gate, up, down; };
  std::vector<LayerIdx> layers_;
  std::unique_ptr<Acts> acts_;
  int B_ = 0, T_ = 0;
  bool have_backward_acts_ = false, entropy_done_ = false, head_skipped_ = false;
  std::vector<int32_t> head_rows_;  // rows with a target (empty: all rows)
};

// AdamW (PyTorch semantics, the host AdamW's float math) over a DeviceModel; m and v on the device with
// host mirrors for state() views.
class DeviceAdamW {
 public:
  DeviceAdamW(std::shared_ptr<DeviceModel> model, const AdamWConfig& cfg);
  void step(float lr);
  void pull_state();  // host mirrors up to date; treated as written afterwards
  AdamWConfig cfg;
  int64_t t = 0;
  FloatBufferPtr m_host, v_host;

 private:
  void push_state();
  std::shared_ptr<DeviceModel> model_;
  DeviceArray<float> m_, v_;
  Fresh fresh_ = Fresh::Both;
};

}  // namespace farm::cuda
