#include "timm/layers/attention2d.h"

#include "timm/layers/create_conv2d.h"

namespace smp::timm::layers {

namespace nn = torch::nn;

namespace {
nn::Conv2d pointwise(int64_t in, int64_t out, bool bias) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, 1).bias(bias));
}

// Key or value branch: optional strided depthwise downsampling, then the projection.
nn::Sequential kv_branch(const MultiQueryAttention2dOptions& o, int64_t out) {
  nn::Sequential seq;
  if (o.kv_stride() > 1) {
    seq->push_back("down_conv",
                   create_conv2d_pad(
                       o.dim(), o.dim(), o.dw_kernel_size(),
                       ConvArgs().stride(o.kv_stride()).dilation(o.dilation()).depthwise(true).padding(o.padding())));
    seq->push_back("norm", nn::BatchNorm2d(nn::BatchNormOptions(o.dim()).eps(o.norm_eps())));
  }
  seq->push_back("proj", pointwise(o.dim(), out, o.bias()));
  return seq;
}
}  // namespace

MultiQueryAttention2dImpl::MultiQueryAttention2dImpl(const MultiQueryAttention2dOptions& o) : options_(o) {
  query_ = register_module("query", nn::Sequential());
  query_->push_back("proj", pointwise(o.dim(), o.num_heads() * o.key_dim(), o.bias()));
  key_ = register_module("key", kv_branch(o, o.key_dim()));
  value_ = register_module("value", kv_branch(o, o.value_dim()));
  output_ = register_module("output", nn::Sequential());
  output_->push_back("proj", pointwise(o.value_dim() * o.num_heads(), o.dim_out(), o.bias()));
}

torch::Tensor MultiQueryAttention2dImpl::forward(const torch::Tensor& x) {
  const int64_t b = x.size(0), h = x.size(2), w = x.size(3);
  const int64_t heads = options_.num_heads(), kd = options_.key_dim(), vd = options_.value_dim();
  auto q = query_->forward(x).reshape({b, heads, kd, -1}).transpose(-1, -2);  // [B, heads, HW, kd]
  auto k = key_->forward(x);
  k = k.reshape({b, k.size(1), -1}).transpose(1, 2).unsqueeze(1);  // [B, 1, P, kd]
  auto v = value_->forward(x);
  v = v.reshape({b, v.size(1), -1}).transpose(1, 2).unsqueeze(1);  // [B, 1, P, vd]
  auto attn = torch::matmul(q * std::pow(static_cast<double>(kd), -0.5), k.transpose(-1, -2)).softmax(-1);
  auto o = torch::matmul(attn, v);  // [B, heads, HW, vd]
  o = o.transpose(1, 2).reshape({b, h, w, vd * heads}).permute({0, 3, 1, 2}).contiguous();
  return output_->forward(o);
}

Attention2dImpl::Attention2dImpl(int64_t dim, int64_t dim_out, int64_t num_heads, bool bias)
    : num_heads_(num_heads), dim_head_(dim / num_heads) {
  qkv_ = register_module("qkv", pointwise(dim, dim * 3, bias));
  proj_ = register_module("proj", pointwise(dim, dim_out, bias));
}

torch::Tensor Attention2dImpl::forward(const torch::Tensor& x) {
  const int64_t b = x.size(0), h = x.size(2), w = x.size(3);
  auto qkv = qkv_(x).reshape({b, 3, num_heads_, dim_head_, -1}).unbind(1);
  auto q = qkv[0].transpose(-1, -2), k = qkv[1], v = qkv[2].transpose(-1, -2);
  auto attn = (torch::matmul(q, k) * std::pow(static_cast<double>(dim_head_), -0.5)).softmax(-1);
  return proj_(torch::matmul(attn, v).transpose(-1, -2).reshape({b, -1, h, w}));
}

}  // namespace smp::timm::layers
