// timm's SelectiveKernel convolution (Selective Kernel Networks): parallel conv paths of growing
// receptive field, mixed per channel by a softmax attention over the paths.
#pragma once

#include <torch/torch.h>

#include <vector>

namespace smp::timm::layers {

struct SelectiveKernelOptions {
  SelectiveKernelOptions(int64_t in_channels, int64_t out_channels)
      : in_channels_(in_channels), out_channels_(out_channels) {}
  TORCH_ARG(int64_t, in_channels);
  TORCH_ARG(int64_t, out_channels);
  TORCH_ARG(std::vector<int64_t>, kernel_size) = {3, 5};  // one path per entry, each odd and >= 3
  TORCH_ARG(int64_t, stride) = 1;
  TORCH_ARG(int64_t, dilation) = 1;
  TORCH_ARG(int64_t, groups) = 1;
  // Attention width: rd_channels when > 0, else make_divisible(out_channels * rd_ratio, rd_divisor).
  TORCH_ARG(double, rd_ratio) = 1.0 / 16;
  TORCH_ARG(int64_t, rd_channels) = 0;
  TORCH_ARG(int64_t, rd_divisor) = 8;
  // Every path a 3x3 conv, larger kernels becoming dilation (5x5 -> 3x3 at dilation 2).
  TORCH_ARG(bool, keep_3x3) = true;
  // Each path sees its own slice of the input channels (keeps the parameter count down).
  TORCH_ARG(bool, split_input) = true;
};

// The path weights: the paths' sum, pooled, through a bottleneck (fc_reduce, bn, ReLU, fc_select)
// to one logit per path and channel, softmax over the paths. Input [B, paths, C, H, W].
class SelectiveKernelAttnImpl : public torch::nn::Module {
 public:
  SelectiveKernelAttnImpl(int64_t channels, int64_t num_paths, int64_t attn_channels);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  int64_t num_paths_;
  torch::nn::Conv2d fc_reduce_{nullptr}, fc_select_{nullptr};
  torch::nn::BatchNorm2d bn_{nullptr};
};
TORCH_MODULE(SelectiveKernelAttn);

class SelectiveKernelImpl : public torch::nn::Module {
 public:
  explicit SelectiveKernelImpl(const SelectiveKernelOptions& options);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  int64_t in_channels_;
  bool split_input_;
  torch::nn::ModuleList paths_{nullptr};  // ConvNormAct each
  SelectiveKernelAttn attn_{nullptr};
};
TORCH_MODULE(SelectiveKernel);

}  // namespace smp::timm::layers
