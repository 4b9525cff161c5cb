// Relative position biases of windowed attention (timm's layers/pos_embed_rel.py): a learned table
// indexed by query-key offset (RelPosBias), a small MLP over log-spaced offsets (RelPosMlp), and the
// TensorFlow MaxViT table layout (RelPosBiasTf). Each get_bias() returns [1, heads, N, N].
#pragma once

#include <torch/torch.h>

#include <string>

namespace smp::timm::layers {

// [N, N] index of (query - key) offsets into a (2h-1) x (2w-1) table, N = h * w; with a class token
// one more row/column pointing at the three extra entries after the table.
torch::Tensor relative_position_index(int64_t h, int64_t w, bool class_token = false);

class RelPosBiasImpl : public torch::nn::Module {
 public:
  RelPosBiasImpl(int64_t wh, int64_t ww, int64_t num_heads, int64_t prefix_tokens = 0);
  torch::Tensor get_bias();
  torch::Tensor relative_position_bias_table;

 private:
  int64_t n_;
  torch::Tensor index_;  // non-persistent in timm: not registered
};
TORCH_MODULE(RelPosBias);

class RelPosMlpImpl : public torch::nn::Module {
 public:
  // mode "cr" (log coordinates, identity output) or "swin" (log2 coordinates scaled to +-8,
  // 16 * sigmoid output, no fc2 bias).
  RelPosMlpImpl(int64_t wh, int64_t ww, int64_t num_heads, int64_t hidden_dim = 128, int64_t prefix_tokens = 0,
                const std::string& mode = "cr");
  torch::Tensor get_bias();

 private:
  int64_t heads_, n_, prefix_;
  bool swin_;
  torch::nn::Linear fc1_{nullptr}, fc2_{nullptr};
  torch::Tensor index_, coords_;
};
TORCH_MODULE(RelPosMlp);

class RelPosBiasTfImpl : public torch::nn::Module {
 public:
  RelPosBiasTfImpl(int64_t wh, int64_t ww, int64_t num_heads);
  torch::Tensor get_bias();
  torch::Tensor relative_position_bias_table;  // [heads, 2h-1, 2w-1]

 private:
  int64_t n_;
  torch::Tensor index_;  // (key - query) offsets into the flattened table
};
TORCH_MODULE(RelPosBiasTf);

}  // namespace smp::timm::layers
