// timm's attention layers for NCHW tensors, as MobileNet-V4 blocks use them.
#pragma once

#include <torch/torch.h>

#include <string>

namespace smp::timm::layers {

struct MultiQueryAttention2dOptions {
  MultiQueryAttention2dOptions(int64_t dim, int64_t dim_out) : dim_(dim), dim_out_(dim_out) {}
  TORCH_ARG(int64_t, dim);
  TORCH_ARG(int64_t, dim_out);
  TORCH_ARG(int64_t, num_heads) = 8;
  TORCH_ARG(int64_t, key_dim) = 64;
  TORCH_ARG(int64_t, value_dim) = 64;
  // > 1: keys and values come from a strided depthwise conv ("down_conv") + BatchNorm ("norm").
  TORCH_ARG(int64_t, kv_stride) = 1;
  TORCH_ARG(int64_t, dw_kernel_size) = 3;
  TORCH_ARG(int64_t, dilation) = 1;
  TORCH_ARG(std::string, padding) = "";  // timm's padding mode of the down_conv
  TORCH_ARG(double, norm_eps) = 1e-5;
  TORCH_ARG(bool, bias) = false;
};

// Multi-query attention: per-head queries ("query.proj"), one shared key ("key") and value ("value")
// projection, output projection "output.proj".
class MultiQueryAttention2dImpl : public torch::nn::Module {
 public:
  explicit MultiQueryAttention2dImpl(const MultiQueryAttention2dOptions& options);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  MultiQueryAttention2dOptions options_;
  torch::nn::Sequential query_, key_, value_, output_;
};
TORCH_MODULE(MultiQueryAttention2d);

// Multi-head self-attention with a fused 1x1 "qkv" projection and a 1x1 "proj".
class Attention2dImpl : public torch::nn::Module {
 public:
  Attention2dImpl(int64_t dim, int64_t dim_out, int64_t num_heads, bool bias = true);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  int64_t num_heads_, dim_head_;
  torch::nn::Conv2d qkv_{nullptr}, proj_{nullptr};
};
TORCH_MODULE(Attention2d);

}  // namespace smp::timm::layers
