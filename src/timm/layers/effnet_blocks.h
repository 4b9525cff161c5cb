// Small blocks of timm's _efficientnet_blocks.py that families outside the EfficientNet builder use
// directly (GhostNet, RepGhostNet): the convolutional squeeze-excite and ConvBnAct.
#pragma once

#include <torch/torch.h>

#include <string>

#include "timm/layers/activations.h"
#include "timm/layers/norm_act.h"

namespace smp::timm::layers {

// "conv_reduce" -> act -> "conv_expand" -> gate, on the spatial mean; both convs biased.
class EffSqueezeExciteImpl : public torch::nn::Module {
 public:
  EffSqueezeExciteImpl(int64_t channels, int64_t rd_channels, const std::string& act = "relu",
                       const std::string& gate = "sigmoid");
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::nn::Conv2d conv_reduce_{nullptr}, conv_expand_{nullptr};
  ActFn act_, gate_;
};
TORCH_MODULE(EffSqueezeExcite);

// "conv" (no bias, padding k // 2, as the families pass it explicitly) -> "bn1" with activation.
class EffConvBnActImpl : public torch::nn::Module {
 public:
  EffConvBnActImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride = 1, int64_t groups = 1,
                   const std::string& act = "relu");
  torch::Tensor forward(const torch::Tensor& x) { return bn1(conv(x)); }
  torch::nn::Conv2d conv{nullptr};
  BatchNormAct2d bn1{nullptr};
};
TORCH_MODULE(EffConvBnAct);

}  // namespace smp::timm::layers
