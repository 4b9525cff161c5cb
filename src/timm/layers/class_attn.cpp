#include "timm/layers/class_attn.h"

#include <cmath>

namespace smp::timm::layers {

namespace nn = torch::nn;

ClassAttnImpl::ClassAttnImpl(int64_t dim, int64_t num_heads, bool qkv_bias)
    : num_heads_(num_heads), scale_(1.0 / std::sqrt(static_cast<double>(dim / num_heads))) {
  q_ = register_module("q", nn::Linear(nn::LinearOptions(dim, dim).bias(qkv_bias)));
  k_ = register_module("k", nn::Linear(nn::LinearOptions(dim, dim).bias(qkv_bias)));
  v_ = register_module("v", nn::Linear(nn::LinearOptions(dim, dim).bias(qkv_bias)));
  proj_ = register_module("proj", nn::Linear(dim, dim));
}

torch::Tensor ClassAttnImpl::forward(const torch::Tensor& x) {
  const auto B = x.size(0), N = x.size(1), C = x.size(2);
  const auto head_dim = C / num_heads_;
  auto q = q_(x.select(1, 0)).reshape({B, 1, num_heads_, head_dim}).permute({0, 2, 1, 3});
  auto k = k_(x).reshape({B, N, num_heads_, head_dim}).permute({0, 2, 1, 3});
  auto v = v_(x).reshape({B, N, num_heads_, head_dim}).permute({0, 2, 1, 3});
  auto attn = torch::matmul(q * scale_, k.transpose(-2, -1)).softmax(-1);
  auto cls = torch::matmul(attn, v).transpose(1, 2).reshape({B, 1, C});
  return proj_(cls);
}

}  // namespace smp::timm::layers
