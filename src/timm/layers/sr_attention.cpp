#include "timm/layers/sr_attention.h"

#include <cmath>

#include "timm/layers/drop_path.h"

namespace smp::timm::layers {

namespace nn = torch::nn;
namespace F = torch::nn::functional;

SrAttentionImpl::SrAttentionImpl(const SrAttentionOptions& o) : options_(o) {
  const auto dim = o.dim();
  q = register_module("q", nn::Linear(dim, dim));
  kv = register_module("kv", nn::Linear(dim, dim * 2));
  proj = register_module("proj", nn::Linear(dim, dim));
  if (o.linear() || o.sr_ratio() > 1) {
    const int64_t k = o.linear() ? 1 : o.sr_ratio();
    sr = register_module("sr", nn::Conv2d(nn::Conv2dOptions(dim, dim, k).stride(k)));
    norm = register_module("norm", nn::LayerNorm(nn::LayerNormOptions({dim}).eps(o.norm_eps())));
  }
}

torch::Tensor SrAttentionImpl::forward(const torch::Tensor& x, int64_t h, int64_t w) {
  const auto b = x.size(0), n = x.size(1), c = x.size(2), heads = options_.heads(), hd = c / heads;
  auto qh = q(x).reshape({b, n, heads, hd}).permute({0, 2, 1, 3});
  auto src = x;
  if (sr) {
    auto grid = x.transpose(1, 2).reshape({b, c, h, w});
    if (options_.linear()) grid = F::adaptive_avg_pool2d(grid, F::AdaptiveAvgPool2dFuncOptions(7));
    src = norm(sr(grid).flatten(2).transpose(1, 2));
    if (options_.linear()) src = torch::gelu(src);
  }
  auto kvh = kv(src).reshape({b, -1, 2, heads, hd}).permute({2, 0, 3, 1, 4});
  auto attn = torch::matmul(qh * std::pow(static_cast<double>(hd), -0.5), kvh[0].transpose(-2, -1)).softmax(-1);
  auto y = proj(torch::matmul(attn, kvh[1]).transpose(1, 2).reshape({b, n, c}));
  return layers::dropout(y, options_.proj_drop(), is_training());
}

}  // namespace smp::timm::layers
