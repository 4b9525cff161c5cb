#include "timm/layers/attention_pool.h"

#include <cmath>

namespace smp::timm::layers {

namespace nn = torch::nn;

AttentionPoolLatentImpl::AttentionPoolLatentImpl(int64_t dim, int64_t num_heads, double mlp_ratio,
                                                 const TokenNormSpec& norm, const std::string& act)
    : num_heads_(num_heads) {
  if (dim % num_heads != 0)
    throw std::invalid_argument("attention pooling: dim " + std::to_string(dim) + " is not divisible by " +
                                std::to_string(num_heads) + " heads");
  latent = register_parameter("latent", torch::zeros({1, 1, dim}));
  q_ = register_module("q", nn::Linear(dim, dim));
  kv_ = register_module("kv", nn::Linear(dim, dim * 2));
  proj_ = register_module("proj", nn::Linear(dim, dim));
  norm_ = make_token_norm(norm, dim);
  register_module("norm", norm_.ptr());
  mlp_ = register_module(
      "mlp", Mlp(MlpOptions(dim, static_cast<int64_t>(static_cast<double>(dim) * mlp_ratio)).act(act)));
}

torch::Tensor AttentionPoolLatentImpl::forward(const torch::Tensor& x) {
  const auto b = x.size(0), n = x.size(1), c = x.size(2), head_dim = c / num_heads_;
  auto q = q_(latent.expand({b, -1, -1})).reshape({b, 1, num_heads_, head_dim}).transpose(1, 2);
  auto kv = kv_(x).reshape({b, n, 2, num_heads_, head_dim}).permute({2, 0, 3, 1, 4});
  auto attn = torch::softmax(torch::matmul(q * (1.0 / std::sqrt(static_cast<double>(head_dim))), kv[0].transpose(-2, -1)), -1);
  auto y = proj_(torch::matmul(attn, kv[1]).transpose(1, 2).reshape({b, 1, c}));
  y = y + mlp_(norm_.forward(y));
  return y.select(1, 0);
}

}  // namespace smp::timm::layers
