// The normalisations transformer blocks apply over the last (channel) dimension of token tensors:
// LayerNorm or RmsNorm, chosen by name as timm's norm_layer arguments do.
#pragma once

#include <torch/torch.h>

#include <string>

namespace smp::timm::layers {

struct TokenNormSpec {
  std::string kind = "layernorm";  // "layernorm" or "rmsnorm"
  double eps = 1e-6;
};

// An AnyModule taking and returning a tensor, with parameters named as timm's ("weight"[, "bias"]).
torch::nn::AnyModule make_token_norm(const TokenNormSpec& spec, int64_t dim);

}  // namespace smp::timm::layers
