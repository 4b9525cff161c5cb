#include "timm/layers/lambda_layer.h"

#include <stdexcept>

namespace smp::timm::layers {

namespace nn = torch::nn;

LambdaLayerImpl::LambdaLayerImpl(const LambdaLayerOptions& o)
    : heads_(o.num_heads()), dim_qk_(o.dim_head()), stride_(o.stride()) {
  const int64_t dim = o.dim();
  if (dim % heads_ != 0) throw std::invalid_argument("LambdaLayer: channels not divisible by heads");
  dim_v_ = dim / heads_;
  qkv_ = register_module("qkv", nn::Conv2d(nn::Conv2dOptions(dim, heads_ * dim_qk_ + dim_qk_ + dim_v_, 1).bias(false)));
  norm_q_ = register_module("norm_q", nn::BatchNorm2d(heads_ * dim_qk_));
  norm_v_ = register_module("norm_v", nn::BatchNorm2d(dim_v_));
  if (o.r() > 0) {
    const int64_t r = o.r();
    conv_lambda_ = register_module(
        "conv_lambda", nn::Conv3d(nn::Conv3dOptions(1, dim_qk_, {r, r, 1}).padding({r / 2, r / 2, 0})));
  } else {
    feat_h_ = o.feat_h();
    feat_w_ = o.feat_w();
    if (feat_h_ <= 0 || feat_w_ <= 0) throw std::invalid_argument("LambdaLayer without r needs a fixed feature size");
    pos_emb_ = register_parameter("pos_emb", torch::zeros({2 * feat_h_ - 1, 2 * feat_w_ - 1, dim_qk_}));
    // Offset (key - query) of every pair, shifted to be non-negative, as one flat index into the
    // (2H-1) x (2W-1) table (timm keeps it as a non-persistent buffer, so it is no state here).
    auto ys = torch::arange(feat_h_).repeat_interleave(feat_w_);
    auto xs = torch::arange(feat_w_).repeat(feat_h_);
    auto dy = ys.unsqueeze(0) - ys.unsqueeze(1) + (feat_h_ - 1);
    auto dx = xs.unsqueeze(0) - xs.unsqueeze(1) + (feat_w_ - 1);
    rel_index_ = dy * (2 * feat_w_ - 1) + dx;  // [M, M]
  }
}

torch::Tensor LambdaLayerImpl::forward(const torch::Tensor& x) {
  const int64_t b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3), m = h * w;
  auto parts = torch::split_with_sizes(qkv_(x), {heads_ * dim_qk_, dim_qk_, dim_v_}, 1);
  auto q = norm_q_(parts[0]).reshape({b, heads_, dim_qk_, m}).transpose(-1, -2);  // [B, heads, M, K]
  auto v = norm_v_(parts[2]).reshape({b, dim_v_, m}).transpose(-1, -2);           // [B, M, V]
  auto k = torch::softmax(parts[1].reshape({b, dim_qk_, m}), -1);                 // [B, K, M]
  auto content = torch::matmul(q, torch::matmul(k, v).unsqueeze(1));             // [B, heads, M, V]
  torch::Tensor position_lam;                                                     // [B, 1, M, K, V]
  if (conv_lambda_) {
    position_lam = conv_lambda_(v.reshape({b, 1, h, w, dim_v_}))
                       .reshape({b, 1, dim_qk_, m, dim_v_})
                       .transpose(2, 3);
  } else {
    if (h != feat_h_ || w != feat_w_)
      throw std::invalid_argument("LambdaLayer: input size differs from its fixed feature size");
    auto emb = pos_emb_.reshape({-1, dim_qk_}).index_select(0, rel_index_.to(x.device()).flatten())
                   .reshape({m, m, dim_qk_});
    position_lam = torch::matmul(emb.transpose(-1, -2).unsqueeze(0), v.unsqueeze(1)).unsqueeze(1);
  }
  auto position = torch::matmul(q.unsqueeze(-2), position_lam).squeeze(-2);  // [B, heads, M, V]
  auto out = (content + position).transpose(-1, -2).reshape({b, c, h, w});
  if (stride_ == 2) out = torch::avg_pool2d(out, {2, 2}, {2, 2});
  return out;
}

}  // namespace smp::timm::layers
