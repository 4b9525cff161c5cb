// timm's SplitAttn (ResNeSt's split-attention conv): a grouped conv producing `radix` branches per
// group, weighted per channel by an attention over the branches (softmax; sigmoid for one branch).
#pragma once

#include <torch/torch.h>

namespace smp::timm::layers {

struct SplitAttnOptions {
  SplitAttnOptions(int64_t in_channels, int64_t out_channels) : in_channels_(in_channels), out_channels_(out_channels) {}
  TORCH_ARG(int64_t, in_channels);
  TORCH_ARG(int64_t, out_channels);
  TORCH_ARG(int64_t, kernel_size) = 3;
  TORCH_ARG(int64_t, stride) = 1;
  TORCH_ARG(int64_t, padding) = 1;
  TORCH_ARG(int64_t, dilation) = 1;
  TORCH_ARG(int64_t, groups) = 1;
  TORCH_ARG(int64_t, radix) = 2;
  // Attention width: make_divisible(in_channels * radix * rd_ratio, rd_divisor), at least 32.
  TORCH_ARG(double, rd_ratio) = 0.25;
  TORCH_ARG(int64_t, rd_divisor) = 8;
};

class SplitAttnImpl : public torch::nn::Module {
 public:
  explicit SplitAttnImpl(const SplitAttnOptions& options);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  int64_t radix_, groups_;
  torch::nn::Conv2d conv_{nullptr}, fc1_{nullptr}, fc2_{nullptr};
  torch::nn::BatchNorm2d bn0_{nullptr}, bn1_{nullptr};
};
TORCH_MODULE(SplitAttn);

}  // namespace smp::timm::layers
