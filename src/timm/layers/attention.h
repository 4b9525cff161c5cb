// timm's multi-head self-attention over tokens (layers/attention.py Attention): fused qkv
// projection, optional per-head q/k normalisation, output projection.
#pragma once

#include <torch/torch.h>

#include "timm/layers/token_norm.h"

namespace smp::timm::layers {

struct AttentionOptions {
  AttentionOptions(int64_t dim, int64_t num_heads) : dim_(dim), num_heads_(num_heads) {}
  TORCH_ARG(int64_t, dim);
  TORCH_ARG(int64_t, num_heads);
  TORCH_ARG(bool, qkv_bias) = true;
  TORCH_ARG(bool, qk_norm) = false;
  TORCH_ARG(bool, proj_bias) = true;
  TORCH_ARG(TokenNormSpec, norm) = {};
};

class AttentionImpl : public torch::nn::Module {
 public:
  explicit AttentionImpl(const AttentionOptions& options);
  // x: [B, N, C]
  torch::Tensor forward(const torch::Tensor& x);

 private:
  int64_t num_heads_, head_dim_;
  torch::nn::Linear qkv_{nullptr}, proj_{nullptr};
  torch::nn::AnyModule q_norm_, k_norm_;
};
TORCH_MODULE(Attention);

}  // namespace smp::timm::layers
