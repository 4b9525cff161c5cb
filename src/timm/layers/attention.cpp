#include "timm/layers/attention.h"

#include <cmath>

namespace smp::timm::layers {

AttentionImpl::AttentionImpl(const AttentionOptions& o) : num_heads_(o.num_heads()), head_dim_(o.dim() / o.num_heads()) {
  if (o.dim() % o.num_heads() != 0)
    throw std::invalid_argument("attention dim " + std::to_string(o.dim()) + " is not divisible by num_heads " +
                                std::to_string(o.num_heads()));
  qkv_ = register_module("qkv", torch::nn::Linear(torch::nn::LinearOptions(o.dim(), o.dim() * 3).bias(o.qkv_bias())));
  if (o.qk_norm()) {
    q_norm_ = make_token_norm(o.norm(), head_dim_);
    k_norm_ = make_token_norm(o.norm(), head_dim_);
    register_module("q_norm", q_norm_.ptr());
    register_module("k_norm", k_norm_.ptr());
  }
  proj_ = register_module("proj", torch::nn::Linear(torch::nn::LinearOptions(o.dim(), o.dim()).bias(o.proj_bias())));
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x) {
  const auto b = x.size(0), n = x.size(1), c = x.size(2);
  auto qkv = qkv_(x).reshape({b, n, 3, num_heads_, head_dim_}).permute({2, 0, 3, 1, 4});
  auto q = qkv[0], k = qkv[1], v = qkv[2];
  if (!q_norm_.is_empty()) {
    q = q_norm_.forward(q);
    k = k_norm_.forward(k);
  }
  auto attn = torch::matmul(q * std::pow(static_cast<double>(head_dim_), -0.5), k.transpose(-2, -1)).softmax(-1);
  return proj_(torch::matmul(attn, v).transpose(1, 2).reshape({b, n, c}));
}

}  // namespace smp::timm::layers
