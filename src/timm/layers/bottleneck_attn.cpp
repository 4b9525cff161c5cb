#include "timm/layers/bottleneck_attn.h"

#include <cmath>
#include <stdexcept>

#include "timm/layers/halo_attn.h"
#include "timm/layers/helpers.h"

namespace smp::timm::layers {

namespace nn = torch::nn;

BottleneckAttnImpl::BottleneckAttnImpl(const BottleneckAttnOptions& o)
    : heads_(o.num_heads()), feat_h_(o.feat_h()), feat_w_(o.feat_w()), stride_(o.stride()) {
  const int64_t dim = o.dim();
  if (dim % heads_ != 0) throw std::invalid_argument("BottleneckAttn: channels not divisible by heads");
  if (feat_h_ <= 0 || feat_w_ <= 0) throw std::invalid_argument("BottleneckAttn needs a fixed feature size");
  dim_head_qk_ = o.dim_head() > 0 ? o.dim_head() : make_divisible(static_cast<double>(dim) * o.qk_ratio(), 8) / heads_;
  dim_head_v_ = dim / heads_;
  scale_ = 1.0 / std::sqrt(static_cast<double>(dim_head_qk_));
  qkv_ = register_module("qkv", nn::Conv2d(nn::Conv2dOptions(dim, heads_ * (2 * dim_head_qk_ + dim_head_v_), 1).bias(false)));
  auto pos = register_module("pos_embed", std::make_shared<nn::Module>());
  height_rel_ = pos->register_parameter("height_rel", torch::zeros({2 * feat_h_ - 1, dim_head_qk_}));
  width_rel_ = pos->register_parameter("width_rel", torch::zeros({2 * feat_w_ - 1, dim_head_qk_}));
}

torch::Tensor BottleneckAttnImpl::forward(const torch::Tensor& x) {
  const int64_t b = x.size(0), h = x.size(2), w = x.size(3);
  if (h != feat_h_ || w != feat_w_)
    throw std::invalid_argument("BottleneckAttn: input " + std::to_string(h) + "x" + std::to_string(w) +
                                " differs from the fixed size " + std::to_string(feat_h_) + "x" +
                                std::to_string(feat_w_) + " (a fixed input size model)");
  const int64_t qk = heads_ * dim_head_qk_, v_ch = heads_ * dim_head_v_;
  auto parts = torch::split_with_sizes(qkv_(x), {qk, qk, v_ch}, 1);
  auto q = parts[0].reshape({b * heads_, dim_head_qk_, -1}).transpose(-1, -2);  // [B*heads, HW, d]
  auto k = parts[1].reshape({b * heads_, dim_head_qk_, -1});
  auto v = parts[2].reshape({b * heads_, dim_head_v_, -1}).transpose(-1, -2);
  auto qs = q.reshape({-1, h, w, dim_head_qk_});
  auto rel_w = rel_logits_1d(qs, width_rel_, h, {0, 1, 3, 2, 4});
  auto rel_h = rel_logits_1d(qs.transpose(1, 2), height_rel_, w, {0, 3, 1, 4, 2});
  auto pos = (rel_h + rel_w).reshape({b * heads_, h * w, h * w});
  auto attn = torch::softmax(torch::matmul(q, k) * scale_ + pos, -1);
  auto out = torch::matmul(attn, v).transpose(-1, -2).reshape({b, v_ch, h, w});
  if (stride_ == 2) out = torch::avg_pool2d(out, {2, 2}, {2, 2});
  return out;
}

}  // namespace smp::timm::layers
