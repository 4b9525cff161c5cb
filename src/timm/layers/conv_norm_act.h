// timm's ConvNormAct: convolution ("conv", symmetric padding) + fused norm/activation ("bn").
#pragma once

#include <torch/torch.h>

#include <string>

namespace smp::timm::layers {

struct ConvNormActOptions {
  ConvNormActOptions(int64_t in_channels, int64_t out_channels, int64_t kernel_size)
      : in_channels_(in_channels), out_channels_(out_channels), kernel_size_(kernel_size) {}
  TORCH_ARG(int64_t, in_channels);
  TORCH_ARG(int64_t, out_channels);
  TORCH_ARG(int64_t, kernel_size);
  TORCH_ARG(int64_t, stride) = 1;
  TORCH_ARG(int64_t, dilation) = 1;
  TORCH_ARG(int64_t, groups) = 1;
  TORCH_ARG(bool, bias) = false;
  TORCH_ARG(std::string, act) = "relu";     // timm's name; "" = no activation (apply_act=False)
  TORCH_ARG(int64_t, norm_group_size) = 0;  // > 0: GroupNorm of this group size instead of BatchNorm2d
};

class ConvNormActImpl : public torch::nn::Module {
 public:
  explicit ConvNormActImpl(const ConvNormActOptions& options);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::nn::Conv2d conv_{nullptr};
  torch::nn::AnyModule bn_;
};
TORCH_MODULE(ConvNormAct);

}  // namespace smp::timm::layers
