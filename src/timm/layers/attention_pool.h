// timm's AttentionPoolLatent: a learned latent query attends over the tokens (multi-head, q and kv
// projections), then a projection and a pre-norm MLP residual; the pooled vector of ViTs built with
// global_pool='map' (SigLIP and friends).
#pragma once

#include <torch/torch.h>

#include "timm/layers/mlp.h"
#include "timm/layers/token_norm.h"

namespace smp::timm::layers {

class AttentionPoolLatentImpl : public torch::nn::Module {
 public:
  AttentionPoolLatentImpl(int64_t dim, int64_t num_heads, double mlp_ratio, const TokenNormSpec& norm,
                          const std::string& act);
  // Tokens [B, N, dim] -> pooled [B, dim].
  torch::Tensor forward(const torch::Tensor& x);

  torch::Tensor latent;

 private:
  int64_t num_heads_;
  torch::nn::Linear q_{nullptr}, kv_{nullptr}, proj_{nullptr};
  torch::nn::AnyModule norm_;
  Mlp mlp_{nullptr};
};
TORCH_MODULE(AttentionPoolLatent);

}  // namespace smp::timm::layers
